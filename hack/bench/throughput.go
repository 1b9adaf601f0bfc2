package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	problemhookv1alpha1 "github.com/problemhook/problemhook/api/v1alpha1"
	"github.com/problemhook/problemhook/internal/managerproc"
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

	b.logf("Starting the manager")
	if b.mgr, err = managerproc.New(b.o.manager, b.kubeconfig, filepath.Join(b.o.out, "manager.log")); err != nil {
		return err
	}
	if err := b.mgr.Start(ctx); err != nil {
		return err
	}
	row := 0
	for _, kind := range kinds {
		for _, c := range concurrencies {
			ns, err := b.namespace(ctx, "receiver-"+kind.name)
			if err != nil {
				return err
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
				err = profile(b.mgr, filepath.Join(b.o.out, "receiver-rich-c64.cpu.pprof"), work)
			} else {
				err = work()
			}
			if err != nil {
				return err
			}
			t := &b.results.Throughput[row]
			row++
			t.RecvPerSec = float64(b.o.n-failed) / elapsed.Seconds()
			t.Ratio, t.Failed = t.RecvPerSec/t.RawPerSec, failed
			b.logf("receiver %s c=%d: %.0f/s (%.0f%% of raw), %d failed", kind.name, c, t.RecvPerSec, 100*t.Ratio, failed)
			// The events' reconciles are part of what the manager does
			// with a notification; the next cell starts when they are done.
			if err := b.waitIdle(ctx); err != nil {
				return err
			}
			if err := b.k8s.DeleteAllOf(ctx, &problemhookv1alpha1.ProblemEvent{}, client.InNamespace(ns)); err != nil {
				return err
			}
		}
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
