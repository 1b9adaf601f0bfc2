package bench

import (
	"context"
	"fmt"
	"net/http"
	"sync"
	"time"
)

// latency offers distinct notifications at fixed rates, open loop: each
// is sent on schedule whether or not the earlier ones were answered, so
// that queueing shows in the latencies. Then the same notification again
// and again, as Dynatrace's merges and retries do.
func (b *bench) latency(ctx context.Context) error {
	hc := latencyClient()
	for i, rate := range []int{50, 200, 500} {
		if err := b.ackLatency(ctx, hc, rate, 10_000_000*(i+1), fmt.Sprintf("ack, %d/s", rate)); err != nil {
			return err
		}
	}

	ns, err := b.namespace(ctx, "duplicates")
	if err != nil {
		return err
	}
	body := `{"State":"OPEN","ProblemID":"4242","PID":"-4242_1669823466223V2"}`
	if status, err := b.post(ctx, hc, ns, body); err != nil || status != http.StatusAccepted {
		return fmt.Errorf("first delivery answered %d: %w", status, err)
	}
	l := b.openLoop(ctx, 200, int(200*b.o.duration.Seconds()), func(int) (int, error) { return b.post(ctx, hc, ns, body) }, http.StatusOK)
	l.Name = "duplicate, 200/s"
	b.results.Latency = append(b.results.Latency, l)
	b.logf("%s: p50 %.1f ms, p99 %.1f ms, max %.1f ms, %d failed", l.Name, l.P50, l.P99, l.Max, l.Failed)
	return b.waitIdle(ctx)
}

func latencyClient() *http.Client {
	return &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 512}}
}

// ackLatency offers distinct notifications, numbered from base, at rate a
// second for the run's duration, open loop, and records their acks'
// latencies under name.
func (b *bench) ackLatency(ctx context.Context, hc *http.Client, rate, base int, name string) error {
	ns, err := b.namespace(ctx, fmt.Sprintf("latency-%d", rate))
	if err != nil {
		return err
	}
	n := int(float64(rate) * b.o.duration.Seconds())
	// The writes counted are those of the notifications and of their
	// reconciles, which end when the manager's queue is idle.
	err = b.measureWrites(ctx, name, n, func() error {
		l := b.openLoop(ctx, rate, n, func(i int) (int, error) {
			return b.post(ctx, hc, ns, fmt.Sprintf(`{"State":"OPEN","ProblemID":"%d","PID":"-%d_1669823466223V2"}`, base+i, base+i))
		}, http.StatusAccepted)
		l.Name = name
		b.results.Latency = append(b.results.Latency, l)
		b.logf("%s: p50 %.1f ms, p99 %.1f ms, max %.1f ms, %d failed", l.Name, l.P50, l.P99, l.Max, l.Failed)
		return b.waitIdle(ctx)
	})
	if err != nil {
		return err
	}
	return b.settle(ctx, ns)
}

// rawLatency creates distinct ProblemEvents, numbered from base, straight
// through the API at rate a second for the run's duration, open loop, and
// records their latencies under name.
func (b *bench) rawLatency(ctx context.Context, rate, base int, name string) error {
	ns, target, err := b.rawNamespace(ctx, fmt.Sprintf("raw-latency-%d", rate))
	if err != nil {
		return err
	}
	n := int(float64(rate) * b.o.duration.Seconds())
	l := b.openLoop(ctx, rate, n, func(i int) (int, error) {
		if err := b.createRaw(ctx, target, fmt.Appendf(nil, `{"State":"OPEN","ProblemID":"%d","PID":"-%d_1669823466223V2"}`, base+i, base+i)); err != nil {
			return 0, err
		}
		return http.StatusCreated, nil
	}, http.StatusCreated)
	l.Name = name
	b.results.Latency = append(b.results.Latency, l)
	b.logf("%s: p50 %.1f ms, p99 %.1f ms, max %.1f ms, %d failed", l.Name, l.P50, l.P99, l.Max, l.Failed)
	return b.settle(ctx, ns)
}

// openLoop calls send n times at rate per second, each in its own
// goroutine at its scheduled time, and summarises the latencies of the
// calls answered with want.
func (b *bench) openLoop(ctx context.Context, rate, n int, send func(i int) (int, error), want int) Latency {
	var (
		mu     sync.Mutex
		lat    []time.Duration
		failed int
		wg     sync.WaitGroup
	)
	interval := time.Second / time.Duration(rate)
	start := time.Now()
	for i := range n {
		if d := time.Until(start.Add(time.Duration(i) * interval)); d > 0 {
			time.Sleep(d)
		}
		if ctx.Err() != nil {
			break
		}
		wg.Go(func() {
			t0 := time.Now()
			status, err := send(i)
			d := time.Since(t0)
			mu.Lock()
			defer mu.Unlock()
			if err != nil || status != want {
				failed++
				return
			}
			lat = append(lat, d)
		})
	}
	wg.Wait()
	l := latencies("", lat, time.Since(start), failed)
	l.Offered = float64(rate)
	return l
}
