//go:build linux

package drills

import (
	"context"
	"fmt"
	"net/http"
	"time"

	"github.com/problemhook/problemhook/test/harness/node"
)

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
