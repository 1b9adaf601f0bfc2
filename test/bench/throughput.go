package bench

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	problemhookv1alpha1 "github.com/problemhook/problemhook/api/v1alpha1"
	"github.com/problemhook/problemhook/internal/payload"
)

var concurrencies = []int{1, 8, 32, 64}

// payloads builds the i-th distinct notification of a kind: the minimal
// payload of the old Python sample, or a rich one with every placeholder
// and the problem's v2 details.
type payloads struct {
	name string
	body func(i int) []byte
}

func (b *bench) payloads() ([]payloads, error) {
	data, err := os.ReadFile(filepath.Join(b.o.root, "internal", "payload", "testdata", "dynatrace-rich.json"))
	if err != nil {
		return nil, err
	}
	var rich map[string]any
	if err := json.Unmarshal(data, &rich); err != nil {
		return nil, err
	}
	var mu sync.Mutex
	return []payloads{
		{"rich", func(i int) []byte {
			mu.Lock()
			defer mu.Unlock()
			rich["PID"], rich["ProblemID"] = fmt.Sprintf("-%d_1669823466223V2", i), fmt.Sprint(i)
			body, _ := json.Marshal(rich)
			return body
		}},
		{"minimal", func(i int) []byte {
			return fmt.Appendf(nil, `{"State":"OPEN","ProblemID":"%d","PID":"-%d_1669823466223V2"}`, i, i)
		}},
	}, nil
}

// parallel runs f(0..n-1) on c workers and returns how long it took and
// how many calls failed.
func parallel(c, n int, f func(i int) error) (time.Duration, int, error) {
	var next, failed atomic.Int64
	var firstErr atomic.Value
	start := time.Now()
	var wg sync.WaitGroup
	for range c {
		wg.Go(func() {
			for {
				i := int(next.Add(1)) - 1
				if i >= n {
					return
				}
				if err := f(i); err != nil {
					failed.Add(1)
					firstErr.CompareAndSwap(nil, err)
				}
			}
		})
	}
	wg.Wait()
	err, _ := firstErr.Load().(error)
	return time.Since(start), int(failed.Load()), err
}

// throughput measures, for each payload and concurrency, raw creates of
// the ProblemEvents the receiver would create, then the receiver storing
// the same notifications over HTTP, one right after the other, so that
// both meet the API server and etcd in the same state. First the manager
// is a standby replica, as all but one are: its receiver alone. Then it
// leads, and its reconcilers route every event, created raw or received,
// on the same API server.
func (b *bench) throughput(ctx context.Context) error {
	kinds, err := b.payloads()
	if err != nil {
		return err
	}
	for _, kind := range kinds {
		for _, c := range concurrencies {
			b.results.Throughput = append(b.results.Throughput, Throughput{Payload: kind.name, Concurrency: c, N: b.o.n})
		}
	}
	// The API server with no manager at all, for scale: a manager's
	// informers watch every event, and the watch costs CPU too.
	seq, row := 0, 0
	for _, kind := range kinds {
		for _, c := range concurrencies {
			raw, err := b.rawCell(ctx, kind, c, seq)
			if err != nil {
				return err
			}
			seq += b.o.n
			b.results.Throughput[row].RawNoManagerPerSec = raw
			row++
			b.logf("no manager, %s c=%d: raw %.0f/s", kind.name, c, raw)
		}
	}
	b.logf("Starting the manager, a standby replica while the bench holds the leader Lease")
	if err := b.holdLease(ctx); err != nil {
		return err
	}
	b.standby = true
	if err := b.startManager(ctx); err != nil {
		return err
	}
	seq, err = b.cells(ctx, kinds, seq, "alone", b.rawCell, func(t *Throughput, raw float64, r cellResult) {
		t.RawPerSec, t.AlonePerSec, t.AloneRatio = raw, r.acked, r.acked/raw
	})
	if err != nil {
		return err
	}
	// The same rate as raw creates, then through the receiver: the
	// receiver's latency against the API server's own.
	if err := b.rawLatency(ctx, 200, 50_000_000, "raw create, 200/s"); err != nil {
		return err
	}
	if err := b.ackLatency(ctx, latencyClient(), 200, 40_000_000, unlimited, "ack, 200/s, receiver alone"); err != nil {
		return err
	}
	b.logf("Releasing the Lease: the manager becomes the leader")
	if err := b.releaseLease(ctx); err != nil {
		return err
	}
	b.standby = false
	// What the leader writes for a notification of each kind, to do the
	// same in its pipeline cells.
	ns, err := b.namespace(ctx, "routed")
	if err != nil {
		return err
	}
	statuses := map[string]*problemhookv1alpha1.ProblemEventStatus{}
	for _, kind := range kinds {
		ev, err := b.leaderStatus(ctx, ns, string(kind.body(seq)), routed)
		if err != nil {
			return err
		}
		seq++
		statuses[kind.name] = &ev.Status
		if err := b.k8s.Delete(ctx, ev); err != nil {
			return err
		}
	}
	var pipelinePatchMs float64
	pipeline := func(ctx context.Context, kind payloads, c, base int) (perSec float64, err error) {
		err = b.withoutManager(ctx, func() error {
			perSec, pipelinePatchMs, err = b.pipelineCell(ctx, kind, c, base, statuses[kind.name])
			return err
		})
		return perSec, err
	}
	if _, err := b.cells(ctx, kinds, seq, "with reconcilers", pipeline, func(t *Throughput, pipeline float64, r cellResult) {
		t.RecvPerSec, t.Ratio = r.acked, r.acked/t.RawPerSec
		t.RoutedPerSec, t.PipelinePerSec, t.PipelineRatio = r.routed, pipeline, r.routed/pipeline
		t.Where = r.where
		if t.Where != nil {
			t.Where.PipelinePatchMs = pipelinePatchMs
		}
	}); err != nil {
		return err
	}
	return b.waitIdle(ctx)
}

// cells measures the receiver for each payload and concurrency, each
// cell right after its baseline (raw creates, or the leader's pipeline)
// of the same, records each cell with record, and returns the next
// sequence number. A CPU profile of the manager and the API server is
// taken afterwards, of the receiver at concurrency 64, apart from the
// figures: profiling costs CPU.
func (b *bench) cells(ctx context.Context, kinds []payloads, seq int, label string, baseline cell, record func(t *Throughput, baseline float64, r cellResult)) (int, error) {
	row := 0
	for _, kind := range kinds {
		for _, c := range concurrencies {
			base, err := baseline(ctx, kind, c, seq)
			if err != nil {
				return seq, err
			}
			seq += b.o.n
			r, err := b.receiverCell(ctx, kind, c, seq)
			if err != nil {
				return seq, err
			}
			seq += b.o.n
			t := &b.results.Throughput[row]
			row++
			t.Failed += r.failed
			record(t, base, r)
			b.logf("%s, %s c=%d: baseline %.0f/s, receiver %.0f/s, routed %.0f/s, %d failed", label, kind.name, c, base, r.acked, r.routed, r.failed)
		}
	}
	err := b.profiled("receiver-"+kinds[0].name+"-c64-"+strings.ReplaceAll(label, " ", "-"), func() error {
		_, err := b.receiverCell(ctx, kinds[0], 64, seq)
		return err
	})
	return seq + b.o.n, err
}

// cell measures n writes of a kind on c workers, numbered from base, and
// returns how many a second.
type cell func(ctx context.Context, kind payloads, c, base int) (float64, error)

// rawCell creates n ProblemEvents of a kind directly, as the receiver
// would create them, on c workers, and returns how many a second.
func (b *bench) rawCell(ctx context.Context, kind payloads, c, base int) (float64, error) {
	ns, target, err := b.rawNamespace(ctx, "raw-"+kind.name)
	if err != nil {
		return 0, err
	}
	elapsed, failed, firstErr := parallel(c, b.o.n, func(i int) error {
		return b.createRaw(ctx, target, kind.body(base+i))
	})
	if failed > 0 {
		return 0, fmt.Errorf("raw creates: %d failed, first: %w", failed, firstErr)
	}
	return float64(b.o.n) / elapsed.Seconds(), b.settle(ctx, ns)
}

// createRaw creates the ProblemEvent the receiver would create for a
// Dynatrace notification to target, straight through the API.
func (b *bench) createRaw(ctx context.Context, target *problemhookv1alpha1.NotificationTarget, body []byte) error {
	spec, err := payload.Parse(problemhookv1alpha1.FormatDynatrace, body)
	if err != nil {
		return err
	}
	spec.ReceivedAt = metav1.Now()
	return b.k8s.Create(ctx, problemhookv1alpha1.NewProblemEvent(target, spec))
}

// receiverCell posts n notifications of a kind to the manager's receiver
// on c connections, and returns how many were stored a second, how many
// were not, and, when the manager leads, how many a second it routed:
// from the first POST until a watch saw the last event's status written.
// The leader acknowledges before it routes, so at the end of a cell its
// writes may lag behind its acknowledgements.
func (b *bench) receiverCell(ctx context.Context, kind payloads, c, base int) (cellResult, error) {
	ns, err := b.namespace(ctx, "receiver-"+kind.name)
	if err != nil {
		return cellResult{}, err
	}
	var routedAt *firstSeen
	if !b.standby {
		if routedAt, err = b.watchRouted(ctx, ns); err != nil {
			return cellResult{}, err
		}
		defer routedAt.stop()
	}
	var before managerTimes
	if routedAt != nil {
		if before, err = b.managerTimes(); err != nil {
			return cellResult{}, err
		}
	}
	hc := &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: c, MaxConnsPerHost: c}}
	start := time.Now()
	elapsed, failed, _ := parallel(c, b.o.n, func(i int) error {
		status, err := b.post(ctx, hc, ns, string(kind.body(base+i)))
		if err != nil {
			return err
		}
		if status != http.StatusAccepted {
			return fmt.Errorf("answered %d", status)
		}
		return nil
	})
	r := cellResult{acked: float64(b.o.n-failed) / elapsed.Seconds(), failed: failed}
	if routedAt != nil {
		last, err := routedAt.done(ctx, b.o.n-failed)
		if err != nil {
			return r, fmt.Errorf("routing the events of %s: %w", ns, err)
		}
		r.routed = float64(b.o.n-failed) / last.Sub(start).Seconds()
		after, err := b.managerTimes()
		if err != nil {
			return r, err
		}
		r.where = after.since(before)
	}
	return r, b.settle(ctx, ns)
}

// cellResult is what a receiver cell measured.
type cellResult struct {
	// acked and routed are notifications a second: acknowledged, and
	// routed by the leader (zero for a standby replica).
	acked, routed float64
	failed        int
	// where is where the leader's time went.
	where *Where
}

// watchRouted watches the events of ns for their first status write.
func (b *bench) watchRouted(ctx context.Context, ns string) (*firstSeen, error) {
	return b.watchFirst(ctx, ns, &problemhookv1alpha1.ProblemEventList{}, func(o client.Object) (string, bool) {
		ev, ok := o.(*problemhookv1alpha1.ProblemEvent)
		return o.GetName(), ok && ev.Status.Phase != "" && !ev.Spec.Test
	})
}

// settle waits until the manager has reconciled a cell's events, which is
// part of what it does with them, then deletes them and waits until they
// are gone: the next cell starts on a quiet API server.
func (b *bench) settle(ctx context.Context, ns string) error {
	if err := b.waitIdle(ctx); err != nil {
		return err
	}
	if err := b.k8s.DeleteAllOf(ctx, &problemhookv1alpha1.ProblemEvent{}, client.InNamespace(ns)); err != nil {
		return err
	}
	return b.waitGone(ctx, ns, &problemhookv1alpha1.ProblemEventList{}, "events")
}

// waitGone waits until ns holds no object of list's kind, named what: a
// deletion is done once its objects are gone.
func (b *bench) waitGone(ctx context.Context, ns string, list client.ObjectList, what string) error {
	deadline := time.Now().Add(2 * time.Minute)
	for {
		if err := b.k8s.List(ctx, list, client.InNamespace(ns), client.Limit(1)); err != nil {
			return err
		}
		if meta.LenList(list) == 0 {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("the %s of %s are still there 2 minutes after their deletion", what, ns)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// rawNamespace is a namespace with a target whose events are created
// directly, as the receiver would create them.
func (b *bench) rawNamespace(ctx context.Context, prefix string) (string, *problemhookv1alpha1.NotificationTarget, error) {
	name, err := b.createNamespace(ctx, prefix)
	if err != nil {
		return "", nil, err
	}
	target := &problemhookv1alpha1.NotificationTarget{
		ObjectMeta: metav1.ObjectMeta{Namespace: name, Name: "dynatrace"},
		Spec: problemhookv1alpha1.NotificationTargetSpec{Format: problemhookv1alpha1.FormatDynatrace, RateLimit: unlimited,
			Auth: problemhookv1alpha1.WebhookAuth{None: &problemhookv1alpha1.NoAuth{}}},
	}
	return name, target, b.k8s.Create(ctx, target)
}

// waitIdle waits until the manager's workqueues are empty.
func (b *bench) waitIdle(ctx context.Context) error {
	if b.mgr == nil || b.stopped {
		return nil
	}
	deadline := time.Now().Add(10 * time.Minute)
	idle := 0
	for {
		depth, err := b.mgr.Metric("workqueue_depth")
		if err != nil {
			return err
		}
		if depth == 0 {
			// Twice in a row: a queue between two items is empty too.
			if idle++; idle == 2 {
				return nil
			}
		} else {
			idle = 0
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("the manager's queues are still %v deep after 10 minutes", depth)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(250 * time.Millisecond):
		}
	}
}

// The manager's leader election (main.go): its Lease, in its namespace.
const (
	leaseNamespace = "problemhook-system"
	leaseName      = "problemhook.problemhook.io"
)

// holdLease makes the bench the leader for an hour, so that a manager
// started now is a standby replica: its receiver runs, its reconcilers wait.
func (b *bench) holdLease(ctx context.Context) error {
	if err := b.leaseNamespace(ctx); err != nil {
		return err
	}
	now := metav1.NewMicroTime(time.Now())
	return b.k8s.Create(ctx, &coordinationv1.Lease{
		ObjectMeta: metav1.ObjectMeta{Namespace: leaseNamespace, Name: leaseName},
		Spec: coordinationv1.LeaseSpec{
			HolderIdentity: new("problemhook-bench"), LeaseDurationSeconds: new(int32(3600)),
			AcquireTime: &now, RenewTime: &now,
		},
	})
}

// leaseNamespace creates the namespace of the manager's Lease.
func (b *bench) leaseNamespace(ctx context.Context) error {
	err := b.k8s.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: leaseNamespace}})
	if apierrors.IsAlreadyExists(err) {
		return nil
	}
	return err
}

// releaseLease gives the Lease up and waits until the manager leads.
func (b *bench) releaseLease(ctx context.Context) error {
	lease := &coordinationv1.Lease{ObjectMeta: metav1.ObjectMeta{Namespace: leaseNamespace, Name: leaseName}}
	if err := b.k8s.Delete(ctx, lease); err != nil {
		return err
	}
	return b.waitLeading(ctx)
}

// waitLeading waits until the manager leads.
func (b *bench) waitLeading(ctx context.Context) error {
	deadline := time.Now().Add(time.Minute)
	for {
		leading, err := b.mgr.Metric("leader_election_master_status", `name="`+leaseName+`"`)
		switch {
		case err == nil && leading == 1:
			return nil
		case time.Now().After(deadline) && err != nil:
			return fmt.Errorf("the manager did not become the leader within a minute: %w", err)
		case time.Now().After(deadline):
			return errors.New("the manager did not become the leader within a minute")
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
	}
}
