//go:build linux

package main

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/http"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/watch"
	"sigs.k8s.io/controller-runtime/pkg/client"

	problemhookv1alpha1 "github.com/problemhook/problemhook/api/v1alpha1"
	"github.com/problemhook/problemhook/internal/dynatrace"
	"github.com/problemhook/problemhook/test/harness/managerproc"
	"github.com/problemhook/problemhook/test/harness/node"
)

// burst delivers the notifications from workers senders at about rate a
// second, each as deliver does, and returns every attempt per
// notification. during runs alongside, from the first post on.
func burst(ctx context.Context, senders func(i int) sender, ns []notification, workers int, rate float64, during func()) map[string][]outcome {
	var (
		mu      sync.Mutex
		results = map[string][]outcome{}
		wg      sync.WaitGroup
		queue   = make(chan notification)
	)
	for w := range workers {
		wg.Go(func() {
			s := senders(w)
			for n := range queue {
				attempts := s.deliver(ctx, n, time.Now().Add(90*time.Second))
				mu.Lock()
				results[n.key()] = append(results[n.key()], attempts...)
				mu.Unlock()
			}
		})
	}
	var side sync.WaitGroup
	if during != nil {
		side.Go(during)
	}
	tick := time.NewTicker(time.Duration(float64(time.Second) / rate))
	defer tick.Stop()
	for _, n := range ns {
		<-tick.C
		queue <- n
	}
	close(queue)
	wg.Wait()
	side.Wait()
	return results
}

func problems(prefix string, n int) []notification {
	out := make([]notification, n)
	for i := range out {
		out[i] = notification{PID: fmt.Sprintf("%s-%04d_1700000000000V2", prefix, i), State: "OPEN", Display: fmt.Sprint(10000 + i)}
	}
	return out
}

// storedOnce checks that every notification of ns is stored once, as one
// ProblemEvent of its (problem, state), and nothing else is.
func (d *drills) storedOnce(ctx context.Context, namespace string, ns []notification) (int, []string) {
	evs, err := d.events(ctx, namespace)
	if err != nil {
		return 0, []string{"listing the events: " + err.Error()}
	}
	var failures []string
	want := map[string]bool{}
	for _, n := range ns {
		want[n.key()] = true
	}
	for k := range want {
		if evs[k] == nil {
			failures = append(failures, "notification "+k+" was not stored")
		}
	}
	for k := range evs {
		if !want[k] {
			failures = append(failures, "an event nobody sent: "+k)
		}
	}
	return len(evs), failures
}

// apiServerDown kills kube-apiserver one second into a burst and starts it
// again four seconds later. Every answer is 2xx after the event is stored,
// or 503 with Retry-After; a sender that retries as told ends with every
// notification stored once.
func (d *drills) apiServerDown(ctx context.Context) result {
	var r result
	ns, err := d.namespace(ctx, "api-server-down", false, "")
	if err != nil {
		r.Failures = append(r.Failures, err.Error())
		return r
	}
	notes := problems("apidown", 400)
	var downFor time.Duration
	results := burst(ctx, func(int) sender { return d.sender(d.mgr, ns) }, notes, 8, 100, func() {
		time.Sleep(time.Second)
		start := time.Now()
		if err := node.StopProgram(d.dir, "kube-apiserver", true); err != nil {
			r.Failures = append(r.Failures, "killing kube-apiserver: "+err.Error())
			return
		}
		time.Sleep(4 * time.Second)
		if err := node.StartProgram(ctx, d.dir, "kube-apiserver"); err != nil {
			r.Failures = append(r.Failures, "starting kube-apiserver: "+err.Error())
		}
		downFor = time.Since(start)
	})
	var t tally
	var slowest time.Duration
	for key, attempts := range results {
		for _, o := range attempts {
			t.add(kind(o))
			slowest = max(slowest, o.done.Sub(o.sent))
			if !o.stored() && (o.status != http.StatusServiceUnavailable || o.retryAfter == "") {
				r.Failures = append(r.Failures, fmt.Sprintf("%s: answered %s (%v), not 2xx nor 503 with Retry-After", key, kind(o), o.err))
			}
		}
		if !attempts[len(attempts)-1].stored() {
			r.Failures = append(r.Failures, key+": not stored after 90 s of retries")
		}
	}
	stored, failures := d.storedOnce(ctx, ns, notes)
	r.Failures = append(r.Failures, failures...)
	r.Counts = fmt.Sprintf("%d notifications, API server down %.1fs: %d 202 created, %d 200 duplicate, %d 503 + Retry-After, slowest answer %dms; %d stored once",
		len(notes), downFor.Seconds(), t.get("202 created"), t.get("200 duplicate"), t.get("503"), slowest.Milliseconds(), stored)
	return r
}

// actionsRoute runs, for each OPEN problem, a Job, then an SMS, then an
// HTTP call, and comments on the problem.
const actionsRoute = `
apiVersion: problemhook.io/v1alpha1
kind: IntegrationRoute
metadata: {name: act}
spec:
  targets: [dynatrace]
  match: {states: [OPEN]}
  actions:
  - name: job
    job:
      template:
        spec:
          backoffLimit: 0
          template:
            spec:
              restartPolicy: Never
              securityContext: {runAsUser: 65534}
              containers: [{name: run, image: busybox:1.36, command: [echo, $(PROBLEM_DISPLAY_ID)]}]
  - name: sms
    twilio:
      credentialsSecretRef: {name: twilio}
      apiURL: %[2]s
      from: "+15005550006"
      to: ["` + phoneNumber + `"]
      body: "{{.Event}}: {{.Title}}"
  - name: hook
    http:
      url: %[3]s
      headersSecretRef: {name: http-headers}
      body: '{"event": {{json .Event}}}'
  retry: {limit: 1, backoff: 1s}
`

// namespaceWithJobs is namespace with a jobController following its Jobs.
func (d *drills) namespaceWithJobs(ctx context.Context, name string, dynatraceAPI bool, manifest string) (string, *jobController, error) {
	ns, err := d.namespace(ctx, name, dynatraceAPI, manifest)
	if err != nil {
		return "", nil, err
	}
	jc, err := d.startJobController(ctx, ns)
	return ns, jc, err
}

// eachEventOnce waits until the events of ns settle and checks that each
// notification was stored once, no Job was created twice and each event's
// HTTP action was called once. It returns the events and how many were stored.
func (d *drills) eachEventOnce(ctx context.Context, r *result, ns string, notes []notification, jc *jobController) (map[string]*problemhookv1alpha1.ProblemEvent, int) {
	evs, err := d.settle(ctx, ns, len(notes), 2*time.Minute)
	if err != nil {
		r.Failures = append(r.Failures, err.Error())
	}
	stored, failures := d.storedOnce(ctx, ns, notes)
	r.Failures = append(r.Failures, failures...)
	r.Failures = append(r.Failures, jc.twice()...)
	calls := d.hook.calls()
	for _, ev := range evs {
		if calls[ev.Name] != 1 {
			r.Failures = append(r.Failures, fmt.Sprintf("%s: HTTP action called %d times", ev.Name, calls[ev.Name]))
		}
	}
	return evs, stored
}

// jobController plays the Job controller of a cluster with no node: it
// marks each Job of the namespace Complete a moment after it appears, and
// counts how often each Job name was created.
type jobController struct {
	mu      sync.Mutex
	created map[string]int
	stop    func()
}

func (d *drills) startJobController(ctx context.Context, ns string) (*jobController, error) {
	w, err := d.cs.BatchV1().Jobs(ns).Watch(ctx, metav1.ListOptions{})
	if err != nil {
		return nil, err
	}
	jc := &jobController{created: map[string]int{}, stop: w.Stop}
	go func() {
		for ev := range w.ResultChan() {
			job, ok := ev.Object.(*batchv1.Job)
			if !ok || ev.Type != watch.Added {
				continue
			}
			jc.mu.Lock()
			jc.created[job.Name]++
			jc.mu.Unlock()
			go d.completeJob(ctx, job, 300*time.Millisecond)
		}
	}()
	return jc, nil
}

func (jc *jobController) twice() []string {
	jc.mu.Lock()
	defer jc.mu.Unlock()
	var out []string
	for name, n := range jc.created {
		if n > 1 {
			out = append(out, fmt.Sprintf("Job %s created %d times", name, n))
		}
	}
	return out
}

func (jc *jobController) count() int {
	jc.mu.Lock()
	defer jc.mu.Unlock()
	return len(jc.created)
}

// completeJob marks a Job Complete as the Job controller would after its
// Pod exited 0.
func (d *drills) completeJob(ctx context.Context, job *batchv1.Job, after time.Duration) {
	time.Sleep(after)
	for range 20 {
		var current batchv1.Job
		if err := d.kube.Get(ctx, client.ObjectKeyFromObject(job), &current); err != nil {
			return
		}
		now := metav1.Now()
		current.Status.StartTime = &now
		current.Status.CompletionTime = &now
		current.Status.Succeeded = 1
		current.Status.Conditions = []batchv1.JobCondition{
			{Type: batchv1.JobSuccessCriteriaMet, Status: corev1.ConditionTrue, Reason: "CompletionsReached", LastTransitionTime: now},
			{Type: batchv1.JobComplete, Status: corev1.ConditionTrue, Reason: "CompletionsReached", LastTransitionTime: now},
		}
		if err := d.kube.Status().Update(ctx, &current); err == nil {
			return
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// addProblems gives the fake Dynatrace the problems of ns, so that their
// events are enriched and commented on.
func (d *drills) addProblems(ns []notification) {
	for _, n := range ns {
		d.dt.AddProblem(dynatrace.Problem{
			ProblemID: n.PID, DisplayID: "P-" + n.Display, Title: "Drill problem " + n.Display, Status: "OPEN",
			SeverityLevel: "AVAILABILITY", ImpactLevel: "INFRASTRUCTURE", StartTime: time.Now().UnixMilli(), EndTime: -1,
		})
	}
}

// onceEach checks that each event's Job, SMS, HTTP call and comment
// happened at most once, and exactly once where its status says it did.
func (d *drills) onceEach(evs map[string]*problemhookv1alpha1.ProblemEvent, smsBefore int) (done int, lost int, failures []string) {
	sms := map[string]int{}
	for _, m := range d.twilio.Messages()[smsBefore:] {
		event, _, _ := strings.Cut(m.Body, ":")
		sms[event]++
	}
	calls := d.hook.calls()
	for _, ev := range evs {
		comments := len(d.dt.Comments(ev.Spec.ProblemID))
		if comments > 1 || ev.Status.Comment != nil && ev.Status.Comment.Posted && comments != 1 {
			failures = append(failures, fmt.Sprintf("%s: %d comments", ev.Name, comments))
		}
		for _, a := range ev.Status.Actions {
			var n int
			switch a.Type {
			case problemhookv1alpha1.ActionTypeTwilio:
				n = sms[ev.Name]
			case problemhookv1alpha1.ActionTypeHTTP:
				n = calls[ev.Name]
			default:
				continue
			}
			switch {
			case n > 1:
				failures = append(failures, fmt.Sprintf("%s: %s action %s sent %d times", ev.Name, a.Type, a.Action, n))
			case a.State == problemhookv1alpha1.ActionSucceeded && n != 1:
				failures = append(failures, fmt.Sprintf("%s: %s action %s recorded Succeeded, sent %d times", ev.Name, a.Type, a.Action, n))
			case a.State == problemhookv1alpha1.ActionSucceeded:
				done++
			default:
				lost++
			}
		}
	}
	return done, lost, failures
}

// managerKilled kills the manager (SIGKILL) three times: mid-burst, while
// Jobs run, and while messages are being sent, starting it again each
// time. Every stored event's actions finish, no Job is created twice, and
// no SMS, HTTP call or comment is sent twice.
func (d *drills) managerKilled(ctx context.Context) result {
	var r result
	ns, jc, err := d.namespaceWithJobs(ctx, "manager-killed", true, actionsRoute)
	if err != nil {
		r.Failures = append(r.Failures, err.Error())
		return r
	}
	defer jc.stop()
	notes := problems("killed", 120)
	d.addProblems(notes)
	smsBefore := len(d.twilio.Messages())
	kill := func(why string) {
		d.mgr.Kill()
		if err := d.mgr.Start(ctx); err != nil {
			r.Failures = append(r.Failures, "restarting the manager after killing it "+why+": "+err.Error())
		}
	}
	kills := 0
	results := burst(ctx, func(int) sender { return d.sender(d.mgr, ns) }, notes, 4, 40, func() {
		time.Sleep(time.Second)
		kill("mid-burst")
		kills++
	})
	var t tally
	for key, attempts := range results {
		for _, o := range attempts {
			t.add(kind(o))
		}
		if !attempts[len(attempts)-1].stored() {
			r.Failures = append(r.Failures, key+": not stored")
		}
	}
	// While Jobs run, and while messages go out.
	for _, at := range []struct {
		why  string
		when func() bool
	}{
		{"while Jobs run", func() bool { return jc.count() > len(notes)/3 }},
		{"while messages are sent", func() bool { return len(d.twilio.Messages())-smsBefore > len(notes)/3 }},
	} {
		deadline := time.Now().Add(time.Minute)
		for !at.when() && time.Now().Before(deadline) {
			time.Sleep(20 * time.Millisecond)
		}
		kill(at.why)
		kills++
	}
	evs, err := d.settle(ctx, ns, len(notes), 3*time.Minute)
	if err != nil {
		r.Failures = append(r.Failures, err.Error())
	}
	stored, failures := d.storedOnce(ctx, ns, notes)
	r.Failures = append(r.Failures, failures...)
	r.Failures = append(r.Failures, jc.twice()...)
	done, lost, failures := d.onceEach(evs, smsBefore)
	r.Failures = append(r.Failures, failures...)
	comments := 0
	for _, ev := range evs {
		comments += len(d.dt.Comments(ev.Spec.ProblemID))
	}
	r.Counts = fmt.Sprintf("%d notifications, %d kills (%d deliveries refused while down, sent again): %d stored once, %d Jobs created once, %d messages sent once, %d in flight at a kill and not sent again, %d comments, none twice",
		len(notes), kills, t.get("connection error"), stored, jc.count(), done, lost, comments)
	return r
}

// everyStateRoute runs a Job for OPEN problems and calls the HTTP endpoint
// for every event (hookOnlyRoute).
const everyStateRoute = `
apiVersion: problemhook.io/v1alpha1
kind: IntegrationRoute
metadata: {name: open-job}
spec:
  targets: [dynatrace]
  match: {states: [OPEN]}
  actions:
  - name: job
    job:
      template:
        spec:
          template:
            spec:
              restartPolicy: Never
              securityContext: {runAsUser: 65534}
              containers: [{name: run, image: busybox:1.36, command: [echo, $(PROBLEM_STATE)]}]
---` + hookOnlyRoute

// duplicatesAndReordering delivers the OPEN and RESOLVED notification of
// each problem 1 to 10 times each, shuffled (so RESOLVED often comes
// first), from 16 connections at once: one event per (problem, state),
// each event's HTTP call made once, no Job twice.
func (d *drills) duplicatesAndReordering(ctx context.Context) result {
	var r result
	ns, jc, err := d.namespaceWithJobs(ctx, "duplicates", false, everyStateRoute)
	if err != nil {
		r.Failures = append(r.Failures, err.Error())
		return r
	}
	defer jc.stop()
	rng := rand.New(rand.NewPCG(8, 8))
	var distinct, deliveries []notification
	resolvedFirst := 0
	for _, n := range problems("dup", 60) {
		resolved := n
		resolved.State = "RESOLVED"
		distinct = append(distinct, n, resolved)
		for _, x := range []notification{n, resolved} {
			for range 1 + rng.IntN(10) {
				deliveries = append(deliveries, x)
			}
		}
	}
	rng.Shuffle(len(deliveries), func(i, j int) { deliveries[i], deliveries[j] = deliveries[j], deliveries[i] })
	seen := map[string]bool{}
	for _, n := range deliveries {
		if n.State == "RESOLVED" && !seen[n.PID+"/OPEN"] && !seen[n.key()] {
			resolvedFirst++
		}
		seen[n.key()] = true
	}
	results := burst(ctx, func(int) sender { return d.sender(d.mgr, ns) }, deliveries, 16, 400, nil)
	created := 0
	for key, attempts := range results {
		c := 0
		for _, o := range attempts {
			if o.stored() && o.result == "created" {
				c++
			}
		}
		if c != 1 {
			r.Failures = append(r.Failures, fmt.Sprintf("%s answered created %d times", key, c))
		}
		created += c
		if !attempts[len(attempts)-1].stored() {
			r.Failures = append(r.Failures, key+": last delivery not stored")
		}
	}
	evs, stored := d.eachEventOnce(ctx, &r, ns, distinct, jc)
	r.Counts = fmt.Sprintf("%d deliveries of %d notifications (%d RESOLVED before their OPEN), 16 connections: %d answered created, %d stored once, %d HTTP calls, one per event, %d Jobs, none twice",
		len(deliveries), len(distinct), resolvedFirst, created, stored, len(evs), jc.count())
	return r
}

// twoReceivers runs two replicas with leader election against one API
// server and sends each notification to both, twice: one event each, the
// actions run once, by the leader.
func (d *drills) twoReceivers(ctx context.Context) result {
	var r result
	ns, jc, err := d.namespaceWithJobs(ctx, "two-receivers", false, everyStateRoute)
	if err != nil {
		r.Failures = append(r.Failures, err.Error())
		return r
	}
	defer jc.stop()
	d.mgr.Stop()
	defer func() {
		if err := d.mgr.Start(ctx); err != nil {
			r.Failures = append(r.Failures, "restarting the drills' manager: "+err.Error())
		}
	}()
	var replicas []*managerproc.Process
	for _, name := range []string{"replica-a", "replica-b"} {
		m, err := d.newManager(name+".log", "--leader-elect")
		if err == nil {
			err = m.Start(ctx)
		}
		if err != nil {
			r.Failures = append(r.Failures, "starting "+name+": "+err.Error())
			return r
		}
		defer m.Stop()
		replicas = append(replicas, m)
	}
	notes := problems("replicas", 80)
	var deliveries []notification
	for _, n := range notes {
		deliveries = append(deliveries, n, n, n, n)
	}
	results := burst(ctx, func(i int) sender { return d.sender(replicas[i%2], ns) }, deliveries, 8, 200, nil)
	for key, attempts := range results {
		if !attempts[len(attempts)-1].stored() {
			r.Failures = append(r.Failures, key+": not stored")
		}
	}
	evs, stored := d.eachEventOnce(ctx, &r, ns, notes, jc)
	var received []string
	for i, m := range replicas {
		created, err1 := m.Metric("problemhook_receiver_notifications_total", `namespace="`+ns+`"`, `result="created"`)
		duplicate, err2 := m.Metric("problemhook_receiver_notifications_total", `namespace="`+ns+`"`, `result="duplicate"`)
		if err := errors.Join(err1, err2); err != nil {
			r.Failures = append(r.Failures, "reading a replica's metrics: "+err.Error())
		}
		received = append(received, fmt.Sprintf("%s created %.0f and answered %.0f duplicates", []string{"a", "b"}[i], created, duplicate))
	}
	r.Counts = fmt.Sprintf("%d notifications, each sent 4 times across 2 replicas (%s): %d stored once, %d HTTP calls, one per event, %d Jobs, none twice",
		len(notes), strings.Join(received, ", "), stored, len(evs), jc.count())
	return r
}

// secretRotated changes the target's password mid-burst. Senders switch
// to the new one when the old one is refused. From the first refusal on,
// the old password never gets in again and the new one always does; no
// notification is lost.
func (d *drills) secretRotated(ctx context.Context) result {
	var r result
	ns, err := d.namespace(ctx, "secret-rotated", false, "")
	if err != nil {
		r.Failures = append(r.Failures, err.Error())
		return r
	}
	type attempt struct {
		password string
		o        outcome
	}
	var (
		mu       sync.Mutex
		attempts []attempt
		current  atomic.Value
		rotated  time.Time
	)
	current.Store(oldPassword)
	notes := problems("rotated", 300)
	queue := make(chan notification)
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			s := d.sender(d.mgr, ns)
			for n := range queue {
				for try := 0; try < 20; try++ {
					pw := current.Load().(string)
					o := s.postAs(ctx, n, pw)
					mu.Lock()
					attempts = append(attempts, attempt{pw, o})
					mu.Unlock()
					if o.stored() {
						break
					}
					if o.status == http.StatusUnauthorized && pw == oldPassword {
						current.Store(newPassword)
					}
				}
			}
		})
	}
	tick := time.NewTicker(10 * time.Millisecond)
	for i, n := range notes {
		<-tick.C
		if i == 100 {
			rotated = time.Now()
			var secret corev1.Secret
			err := d.kube.Get(ctx, client.ObjectKey{Namespace: ns, Name: "webhook-auth"}, &secret)
			if err == nil {
				secret.Data["password"] = []byte(newPassword)
				err = d.kube.Update(ctx, &secret)
			}
			if err != nil {
				r.Failures = append(r.Failures, "rotating the Secret: "+err.Error())
			}
		}
		queue <- n
	}
	tick.Stop()
	close(queue)
	wg.Wait()

	slices.SortFunc(attempts, func(a, b attempt) int { return a.o.sent.Compare(b.o.sent) })
	var firstRefusal time.Time
	for _, a := range attempts {
		if a.password == oldPassword && a.o.status == http.StatusUnauthorized {
			firstRefusal = a.o.done
			break
		}
	}
	var oldIn, newIn, newOut, other int
	for _, a := range attempts {
		switch {
		case a.o.stored() && a.password == oldPassword:
			oldIn++
			if !firstRefusal.IsZero() && a.o.sent.After(firstRefusal) {
				r.Failures = append(r.Failures, fmt.Sprintf("the old password got in at %s, after it was first refused at %s", a.o.sent.Format(time.StampMilli), firstRefusal.Format(time.StampMilli)))
			}
		case a.o.stored():
			newIn++
		case a.o.status == http.StatusUnauthorized && a.password == newPassword:
			newOut++
			if a.o.sent.After(firstRefusal) {
				r.Failures = append(r.Failures, fmt.Sprintf("the new password was refused at %s, after the old one was", a.o.sent.Format(time.StampMilli)))
			}
		case a.o.status != http.StatusUnauthorized:
			other++
			r.Failures = append(r.Failures, fmt.Sprintf("%s: answered %s (%v)", a.o.result, kind(a.o), a.o.err))
		}
	}
	if firstRefusal.IsZero() {
		r.Failures = append(r.Failures, "the old password was never refused")
	}
	stored, failures := d.storedOnce(ctx, ns, notes)
	r.Failures = append(r.Failures, failures...)
	r.Counts = fmt.Sprintf("%d notifications, Secret rotated after 100: old password refused %dms after the rotation began; %d in with the old, %d with the new, %d new refused, %d other answers; %d stored once",
		len(notes), firstRefusal.Sub(rotated).Milliseconds(), oldIn, newIn, newOut, other, stored)
	return r
}
