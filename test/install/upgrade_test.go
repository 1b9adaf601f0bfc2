//go:build e2e

package install

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/controller-runtime/pkg/client"

	problemhookv1alpha1 "github.com/problemhook/problemhook/api/v1alpha1"
	"github.com/problemhook/problemhook/test/harness/controlplane"
	"github.com/problemhook/problemhook/test/harness/fixtures"
	"github.com/problemhook/problemhook/test/harness/manifests"
	"github.com/problemhook/problemhook/test/harness/node"
)

// A user who runs the previous release (hack/previous-release, built by
// hack/previous-release.sh into the directory E2E_PREVIOUS) upgrades to
// this commit as docs/install.md says: the new image imported, the new
// dist/install.yaml applied. Jobs are running and messages are waiting
// for their retries across the upgrade, and notifications stream in
// during the rollout. Nothing is lost or done twice: every acknowledged
// notification is stored once, each event has one Job and one delivered
// message, the statuses the previous release settled are kept as they
// were, and the new manager settles what the previous one left running,
// commenting once on each problem.
func TestUpgradeFromPreviousRelease(t *testing.T) {
	previous := os.Getenv("E2E_PREVIOUS")
	if previous == "" {
		t.Fatal("E2E_PREVIOUS (the directory hack/previous-release.sh prints) must be set: run this with `make e2e`")
	}
	s := connect(t)
	u := &upgrade{previous: previous, pager: newPager(t, s.nodeDir)}
	s.importImage(filepath.Join(previous, "image.tar"))
	if err := manifests.Apply(context.Background(), s.cfg, u.decode(t, filepath.Join(previous, "install.yaml"))); err != nil {
		t.Fatalf("applying the previous release's install.yaml: %v", err)
	}
	s.addTarget()
	s.addStreamTarget()
	// Each OPEN problem of the tenant's target runs a Job, which ends at
	// once for the problems settled before the upgrade and runs across it
	// for the others, and pages through the stand-in.
	s.apply(fixtures.JobRoute{Name: "sleeper", Image: node.BusyboxImage,
		Script: `case "$PROBLEM_DISPLAY_ID" in *91??) exit 0;; esac; sleep 60`}.Manifest())
	s.apply(fmt.Sprintf(`
apiVersion: problemhook.io/v1alpha1
kind: IntegrationRoute
metadata: {name: pager}
spec:
  targets: [%s]
  match: {states: [OPEN]}
  retry: {limit: 20, backoff: 1s}
  actions:
  - name: page
    http:
      url: %s/page
      body: '{"problem": {{json .ProblemID}}}'
`, fixtures.TargetName, u.pager.url))
	s.run([]step{
		{"the previous release is 2/2 Available", (*suite).available},
		{"the previous release settles events", u.settleBefore},
		{"Jobs run and messages wait for a retry", u.pendingAcross},
		{"the upgrade rolls out while notifications stream in", u.upgrade},
		{"the new release is 2/2 Available", (*suite).available},
		{"the new manager settles what the previous one left", u.settledAfter},
		{"nothing was run or sent twice, nothing settled changed", u.nothingTwice},
	})
}

// upgrade is what the upgrade test's steps share.
type upgrade struct {
	// previous is the directory of the previous release's image.tar and
	// install.yaml.
	previous string
	pager    *pager
	// settled are the events the previous release settled, by problem,
	// with their status as it left it; across those it left running.
	settled map[string]*problemhookv1alpha1.ProblemEvent
	across  []string
	// oldImages are the image IDs the previous release's Pods ran.
	oldImages []string
}

// decode reads a YAML stream of manifests.
func (u *upgrade) decode(t *testing.T, path string) []*unstructured.Unstructured {
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	objs, err := manifests.Decode(b)
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	return objs
}

// settleBefore has the previous release run and settle two events: their
// Jobs exit 0 and their messages are delivered.
func (u *upgrade) settleBefore(s *suite) {
	u.settled = map[string]*problemhookv1alpha1.ProblemEvent{}
	addr := s.serviceAddr()
	for _, id := range []string{"P-9101", "P-9102"} {
		pid := s.problem(id)
		s.notify(addr, pid, id)
		s.eventually(id+" settles", 2*time.Minute, func() error {
			ev, err := s.event(pid)
			if err != nil {
				return err
			}
			if ev.Status.Phase != problemhookv1alpha1.PhaseSucceeded || ev.Status.Comment == nil || !ev.Status.Comment.Posted {
				return fmt.Errorf("phase %q, actions %+v, comment %+v", ev.Status.Phase, ev.Status.Actions, ev.Status.Comment)
			}
			u.settled[pid] = ev
			return nil
		})
	}
	for _, p := range s.managerPods() {
		for _, c := range p.Status.ContainerStatuses {
			u.oldImages = append(u.oldImages, c.ImageID)
		}
	}
}

// pendingAcross holds the pager at 503 with Retry-After and notifies four
// problems: the upgrade starts while their Jobs run and their messages
// wait for a retry.
func (u *upgrade) pendingAcross(s *suite) {
	u.pager.hold.Store(true)
	addr := s.serviceAddr()
	for _, id := range []string{"P-9201", "P-9202", "P-9203", "P-9204"} {
		pid := s.problem(id)
		s.notify(addr, pid, id)
		u.across = append(u.across, pid)
	}
	for _, pid := range u.across {
		s.eventually("the Job runs and the message waits for "+pid, 2*time.Minute, func() error {
			ev, err := s.event(pid)
			if err != nil {
				return err
			}
			job, msg := actions(ev)
			if job == nil || job.State != problemhookv1alpha1.ActionRunning || job.Job == "" {
				return fmt.Errorf("the Job action is %+v", job)
			}
			if msg == nil || msg.Attempts < 1 || msg.State.Settled() {
				return fmt.Errorf("the message action is %+v", msg)
			}
			return nil
		})
	}
}

// upgrade imports this commit's image and applies its dist/install.yaml,
// as docs/install.md says, two seconds into a stream of 400 notifications
// at 20/s, and waits for the rollout. The pager then answers again.
//
// A release's install.yaml pins its own image, so applying it changes
// the Deployment. This commit's dist/install.yaml may name the image as
// the previous release's did (VERSION moves on only at a release); the
// new image is then named apart, as the next release's would be, and the
// previous release's put back under its own name, so that the upgrade
// rolls out as a release's does.
func (u *upgrade) upgrade(s *suite) {
	ctx := context.Background()
	objs := u.decode(s.t, filepath.Join(controlplane.RepoRoot(), "dist", "install.yaml"))
	oldName := u.image(s.t, u.decode(s.t, filepath.Join(u.previous, "install.yaml")))
	name := u.image(s.t, objs)
	s.importImage(newImage(s.t))
	if name == oldName {
		name += "-next"
		if err := node.TagImage(ctx, s.nodeDir, oldName, name); err != nil {
			s.t.Fatal(err)
		}
		s.importImage(filepath.Join(u.previous, "image.tar"))
		u.setImage(s.t, objs, name)
	}
	s.streamDuring(400, 9500, func(ctx context.Context) error {
		if err := manifests.Apply(ctx, s.cfg, objs); err != nil {
			return fmt.Errorf("applying dist/install.yaml: %w", err)
		}
		var d unstructured.Unstructured
		d.SetAPIVersion("apps/v1")
		d.SetKind("Deployment")
		if err := s.kube.Get(ctx, client.ObjectKey{Namespace: systemNamespace, Name: deployment}, &d); err != nil {
			return err
		}
		return s.rolledOut(ctx, d.GetGeneration())
	})
	// What the previous release left running is the new one's to settle.
	var running int
	for _, pid := range u.across {
		ev, err := s.event(pid)
		if err != nil {
			s.t.Fatal(err)
		}
		job, msg := actions(ev)
		if msg == nil || msg.State.Settled() {
			s.t.Errorf("%s: the message action settled while the pager refused it: %+v", pid, msg)
		}
		if job != nil && job.State == problemhookv1alpha1.ActionRunning {
			running++
		}
	}
	s.t.Logf("rolled out with %d of %d Jobs still running and their messages waiting", running, len(u.across))
	u.pager.hold.Store(false)
	for _, p := range s.managerPods() {
		for _, c := range p.Status.ContainerStatuses {
			if slices.Contains(u.oldImages, c.ImageID) {
				s.t.Errorf("Pod %s still runs the previous release's image %s", p.Name, c.ImageID)
			}
		}
	}
}

// image is the manager's image that install.yaml's Deployment names.
func (u *upgrade) image(t *testing.T, objs []*unstructured.Unstructured) string {
	for _, c := range u.containers(t, objs) {
		if c["name"] == "manager" {
			return c["image"].(string)
		}
	}
	t.Fatal("install.yaml has no Deployment with a manager container")
	return ""
}

// setImage names image as the manager's in install.yaml's Deployment.
func (u *upgrade) setImage(t *testing.T, objs []*unstructured.Unstructured, image string) {
	for _, o := range objs {
		if o.GetKind() != "Deployment" {
			continue
		}
		cs := u.containers(t, []*unstructured.Unstructured{o})
		for _, c := range cs {
			if c["name"] == "manager" {
				c["image"] = image
			}
		}
		list := make([]any, len(cs))
		for i, c := range cs {
			list[i] = c
		}
		if err := unstructured.SetNestedSlice(o.Object, list, "spec", "template", "spec", "containers"); err != nil {
			t.Fatal(err)
		}
	}
}

// containers are the containers of install.yaml's Deployment.
func (u *upgrade) containers(t *testing.T, objs []*unstructured.Unstructured) []map[string]any {
	var out []map[string]any
	for _, o := range objs {
		if o.GetKind() != "Deployment" || o.GetName() != deployment {
			continue
		}
		list, _, err := unstructured.NestedSlice(o.Object, "spec", "template", "spec", "containers")
		if err != nil {
			t.Fatal(err)
		}
		for _, c := range list {
			out = append(out, c.(map[string]any))
		}
	}
	return out
}

// settledAfter waits for the new manager to settle the events the
// previous one left running: the Job ended well, the message delivered
// once the pager answered, and one comment on each problem.
func (u *upgrade) settledAfter(s *suite) {
	for _, pid := range u.across {
		s.eventually(pid+" settles", 4*time.Minute, func() error {
			ev, err := s.event(pid)
			if err != nil {
				return err
			}
			if ev.Status.Phase != problemhookv1alpha1.PhaseSucceeded || ev.Status.Comment == nil || !ev.Status.Comment.Posted {
				return fmt.Errorf("phase %q, actions %+v, comment %+v", ev.Status.Phase, ev.Status.Actions, ev.Status.Comment)
			}
			return nil
		})
	}
}

// nothingTwice checks every event of the tenant's target: one Job each,
// its message delivered once, one comment, and the statuses the previous
// release settled still hold every value it wrote.
func (u *upgrade) nothingTwice(s *suite) {
	ctx := context.Background()
	var jobs batchv1.JobList
	if err := s.kube.List(ctx, &jobs, client.InNamespace(s.ns)); err != nil {
		s.t.Fatal(err)
	}
	perEvent := map[string][]string{}
	for _, j := range jobs.Items {
		ev := j.Labels[problemhookv1alpha1.LabelEvent]
		perEvent[ev] = append(perEvent[ev], j.Name)
	}
	pids := append(slices.Sorted(maps.Keys(u.settled)), u.across...)
	for _, pid := range pids {
		ev, err := s.event(pid)
		if err != nil {
			s.t.Error(err)
			continue
		}
		if got := perEvent[ev.Name]; len(got) != 1 {
			s.t.Errorf("%s: %d Jobs %v, want one", pid, len(got), got)
		}
		if n := u.pager.delivered(pid); n != 1 {
			s.t.Errorf("%s: the pager took its message %d times, want once", pid, n)
		}
		if n := len(s.dt.Comments(pid)); n != 1 {
			s.t.Errorf("%s: %d comments on the problem, want one", pid, n)
		}
		if before, ok := u.settled[pid]; ok {
			if err := kept(before.Status, ev.Status); err != nil {
				s.t.Errorf("%s: the status the previous release settled changed: %v", pid, err)
			}
		}
	}
	s.t.Logf("%d events, %d Jobs, the pager answered %d times", len(pids), len(jobs.Items), u.pager.requests.Load())
}

// kept is nil when every value of before, in its JSON form, is in after:
// a newer release may add fields, but not change or drop one.
func kept(before, after problemhookv1alpha1.ProblemEventStatus) error {
	var b, a any
	for _, x := range []struct {
		in  any
		out *any
	}{{before, &b}, {after, &a}} {
		raw, err := json.Marshal(x.in)
		if err != nil {
			return err
		}
		if err := json.Unmarshal(raw, x.out); err != nil {
			return err
		}
	}
	return subset("status", b, a)
}

// subset is nil when before's values are all in after, at path.
func subset(path string, before, after any) error {
	switch b := before.(type) {
	case map[string]any:
		a, ok := after.(map[string]any)
		if !ok {
			return fmt.Errorf("%s: was %v, is %v", path, before, after)
		}
		for k, v := range b {
			if err := subset(path+"."+k, v, a[k]); err != nil {
				return err
			}
		}
	case []any:
		a, ok := after.([]any)
		if !ok || len(a) != len(b) {
			return fmt.Errorf("%s: was %v, is %v", path, before, after)
		}
		for i := range b {
			if err := subset(fmt.Sprintf("%s[%d]", path, i), b[i], a[i]); err != nil {
				return err
			}
		}
	default:
		if !reflect.DeepEqual(before, after) {
			return fmt.Errorf("%s: was %v, is %v", path, before, after)
		}
	}
	return nil
}

// actions are the event's Job action and message action.
func actions(ev *problemhookv1alpha1.ProblemEvent) (job, msg *problemhookv1alpha1.ActionStatus) {
	for i := range ev.Status.Actions {
		a := &ev.Status.Actions[i]
		switch a.Route {
		case "sleeper":
			job = a
		case "pager":
			msg = a
		}
	}
	return job, msg
}

// serviceAddr is the receiver Service's address inside the node.
func (s *suite) serviceAddr() string {
	var addr string
	s.eventually("the receiver's Service", 30*time.Second, func() error {
		svc, err := s.cs.CoreV1().Services(systemNamespace).Get(context.Background(), receiverService, metav1.GetOptions{})
		if err != nil {
			return err
		}
		addr = net.JoinHostPort(svc.Spec.ClusterIP, receiverPort)
		return nil
	})
	return addr
}

// pager stands in for a paging service inside the node's network: while
// held it answers 503 with Retry-After, then 200, and counts the messages
// it took for each problem.
type pager struct {
	url      string
	hold     atomic.Bool
	requests atomic.Int64
	mu       sync.Mutex
	took     map[string]int
}

func newPager(t *testing.T, nodeDir string) *pager {
	l, err := node.Listen(nodeDir, "tcp", net.JoinHostPort(node.NodeIP, "0"))
	if err != nil {
		t.Fatal(err)
	}
	p := &pager{url: "http://" + l.Addr().String(), took: map[string]int{}}
	srv := &http.Server{Handler: p, ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = srv.Serve(l) }()
	t.Cleanup(func() { _ = srv.Close() })
	return p
}

func (p *pager) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	p.requests.Add(1)
	var msg struct {
		Problem string `json:"problem"`
	}
	body, _ := io.ReadAll(http.MaxBytesReader(w, r.Body, 1<<16))
	if r.URL.Path != "/page" || json.Unmarshal(body, &msg) != nil || msg.Problem == "" {
		http.Error(w, "want a JSON body naming the problem at /page", http.StatusBadRequest)
		return
	}
	if p.hold.Load() {
		w.Header().Set("Retry-After", "2")
		http.Error(w, "busy", http.StatusServiceUnavailable)
		return
	}
	p.mu.Lock()
	p.took[msg.Problem]++
	p.mu.Unlock()
	w.WriteHeader(http.StatusOK)
}

// delivered is how many messages of the problem pid the pager took.
func (p *pager) delivered(pid string) int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.took[pid]
}
