package main

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
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	problemhookv1alpha1 "github.com/problemhook/problemhook/api/v1alpha1"
	"github.com/problemhook/problemhook/internal/payload"
	"github.com/problemhook/problemhook/webhookserver"
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
// the ProblemEvents the receiver would create, with the manager stopped;
// then the manager's receiver storing the same notifications over HTTP.
func (b *bench) throughput(ctx context.Context) error {
	kinds, err := b.payloads()
	if err != nil {
		return err
	}
	seq := 0
	for _, kind := range kinds {
		for _, c := range concurrencies {
			ns, target, err := b.rawNamespace(ctx, "raw-"+kind.name)
			if err != nil {
				return err
			}
			base := seq
			seq += b.o.n
			elapsed, failed, firstErr := parallel(c, b.o.n, func(i int) error {
				spec, err := payload.Parse(problemhookv1alpha1.FormatDynatrace, kind.body(base+i))
				if err != nil {
					return err
				}
				spec.ReceivedAt = metav1.Now()
				return b.k8s.Create(ctx, webhookserver.NewProblemEvent(target, spec))
			})
			if failed > 0 {
				return fmt.Errorf("raw creates: %d failed, first: %w", failed, firstErr)
			}
			b.results.Throughput = append(b.results.Throughput, Throughput{
				Payload: kind.name, Concurrency: c, N: b.o.n, RawPerSec: float64(b.o.n) / elapsed.Seconds(),
			})
			b.logf("raw %s c=%d: %.0f/s", kind.name, c, float64(b.o.n)/elapsed.Seconds())
			if err := b.k8s.DeleteAllOf(ctx, &problemhookv1alpha1.ProblemEvent{}, client.InNamespace(ns)); err != nil {
				return err
			}
		}
	}

	// First as a replica that is not the leader, as all but one are: its
	// receiver alone, against the API server's own create rate. Then as
	// the leader, whose reconcilers work on the same API server.
	b.logf("Starting the manager, a standby replica while the bench holds the leader Lease")
	if err := b.holdLease(ctx); err != nil {
		return err
	}
	b.standby = true
	if err := b.startManager(ctx); err != nil {
		return err
	}
	seq, err = b.receiverCells(ctx, kinds, seq, "alone", func(t *Throughput, perSec float64, failed int) {
		t.AlonePerSec, t.AloneRatio, t.Failed = perSec, perSec/t.RawPerSec, t.Failed+failed
	})
	if err != nil {
		return err
	}
	if err := b.ackLatency(ctx, latencyClient(), 200, 40_000_000, "ack, 200/s, receiver alone"); err != nil {
		return err
	}
	b.logf("Releasing the Lease: the manager becomes the leader")
	if err := b.releaseLease(ctx); err != nil {
		return err
	}
	b.standby = false
	if _, err := b.receiverCells(ctx, kinds, seq, "with reconcilers", func(t *Throughput, perSec float64, failed int) {
		t.RecvPerSec, t.Ratio, t.Failed = perSec, perSec/t.RawPerSec, t.Failed+failed
	}); err != nil {
		return err
	}
	return b.waitIdle(ctx)
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
		Spec: problemhookv1alpha1.NotificationTargetSpec{Format: problemhookv1alpha1.FormatDynatrace,
			Auth: problemhookv1alpha1.WebhookAuth{None: &problemhookv1alpha1.NoAuth{}}},
	}
	return name, target, b.k8s.Create(ctx, target)
}

// waitIdle waits until the manager's ProblemEvent workqueue is empty.
func (b *bench) waitIdle(ctx context.Context) error {
	deadline := time.Now().Add(10 * time.Minute)
	idle := 0
	for {
		depth, err := b.mgr.Metric("workqueue_depth", `name="problemevent"`)
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
			return fmt.Errorf("the manager's ProblemEvent queue is still %v deep after 10 minutes", depth)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(250 * time.Millisecond):
		}
	}
}

// receiverCells posts n notifications per payload and concurrency to the
// manager's receiver, records each cell with record, and returns the next
// sequence number.
func (b *bench) receiverCells(ctx context.Context, kinds []payloads, seq int, label string, record func(t *Throughput, perSec float64, failed int)) (int, error) {
	row := 0
	for _, kind := range kinds {
		for _, c := range concurrencies {
			ns, err := b.namespace(ctx, "receiver-"+kind.name)
			if err != nil {
				return seq, err
			}
			base := seq
			seq += b.o.n
			hc := &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: c, MaxConnsPerHost: c}}
			var elapsed time.Duration
			var failed int
			work := func() error {
				elapsed, failed, _ = parallel(c, b.o.n, func(i int) error {
					status, err := b.post(ctx, hc, ns, string(kind.body(base+i)))
					if err != nil {
						return err
					}
					if status != http.StatusAccepted {
						return fmt.Errorf("answered %d", status)
					}
					return nil
				})
				return nil
			}
			if kind.name == "rich" && c == 64 {
				err = b.profiled("receiver-rich-c64-"+strings.ReplaceAll(label, " ", "-"), work)
			} else {
				err = work()
			}
			if err != nil {
				return seq, err
			}
			t := &b.results.Throughput[row]
			row++
			perSec := float64(b.o.n-failed) / elapsed.Seconds()
			record(t, perSec, failed)
			b.logf("receiver %s, %s c=%d: %.0f/s (%.0f%% of raw), %d failed", label, kind.name, c, perSec, 100*perSec/t.RawPerSec, failed)
			// The events' reconciles are part of what the manager does
			// with a notification; the next cell starts when they are done.
			if err := b.waitIdle(ctx); err != nil {
				return seq, err
			}
			if err := b.k8s.DeleteAllOf(ctx, &problemhookv1alpha1.ProblemEvent{}, client.InNamespace(ns)); err != nil {
				return seq, err
			}
		}
	}
	return seq, nil
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
		time.Sleep(200 * time.Millisecond)
	}
}
