package bench

import (
	"context"
	"fmt"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	problemhookv1alpha1 "github.com/problemhook/problemhook/api/v1alpha1"
)

// latency offers distinct notifications at fixed rates, open loop: each
// is sent on schedule whether or not the earlier ones were answered, so
// that queueing shows in the latencies. Each is offered to a target with no
// effective rate limit, and 200/s also to one with the default limit, so
// that the limit's cost is measured against none in the same run. Then the
// same notification again and again, as Dynatrace's merges and retries do.
func (b *bench) latency(ctx context.Context) error {
	hc := latencyClient()
	for i, rate := range []int{50, 200, 500} {
		if err := b.ackLatency(ctx, hc, rate, 10_000_000*(i+1), unlimited, fmt.Sprintf("ack, %d/s", rate)); err != nil {
			return err
		}
	}
	limited := fmt.Sprintf("ack, 200/s, limit %d/s burst %d", defaultLimit.PerSecond, defaultLimit.Burst)
	if err := b.ackLatency(ctx, hc, 200, 60_000_000, defaultLimit, limited); err != nil {
		return err
	}
	b.results.Latency[len(b.results.Latency)-1].Baseline = "ack, 200/s"

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
// second for the run's duration, open loop, to a target with the rate
// limit limit, and records their acks' latencies under name. Then it sends
// each refused one again, as a sender that honours Retry-After would, until
// it is stored, and counts the events: every notification is stored exactly
// once, or the run fails.
func (b *bench) ackLatency(ctx context.Context, hc *http.Client, rate, base int, limit *problemhookv1alpha1.RateLimit, name string) error {
	ns, err := b.limitedNamespace(ctx, fmt.Sprintf("latency-%d", rate), limit)
	if err != nil {
		return err
	}
	n := int(float64(rate) * b.o.duration.Seconds())
	body := func(i int) string {
		return fmt.Sprintf(`{"State":"OPEN","ProblemID":"%d","PID":"-%d_1669823466223V2"}`, base+i, base+i)
	}
	// The writes counted are those of the notifications and of their
	// reconciles, which end when the manager's queue is idle.
	var l Latency
	err = b.measureWrites(ctx, name, n, func() error {
		l = b.openLoop(ctx, rate, n, func(i int) (int, error) { return b.post(ctx, hc, ns, body(i)) }, http.StatusAccepted)
		l.Name = name
		return b.waitIdle(ctx)
	})
	if err != nil {
		return err
	}
	if l.Resent, err = b.resend(ctx, hc, ns, l.refused, body); err != nil {
		return err
	}
	stored, err := b.countEvents(ctx, ns)
	if err != nil {
		return err
	}
	lost := n - stored
	l.Lost = &lost
	b.results.Latency = append(b.results.Latency, l)
	b.logf("%s: p50 %.1f ms, p99 %.1f ms, max %.1f ms, refused %s, %d resent, %d of %d stored",
		l.Name, l.P50, l.P99, l.Max, l.refusals(), l.Resent, stored, n)
	if stored != n {
		return fmt.Errorf("%s: %d notifications offered, %d events stored after every refused one was stored on a resend", name, n, stored)
	}
	return b.settle(ctx, ns)
}

// resend sends each notification numbered in refused again until the
// receiver stores it (202, or 200 for one it had stored after all), waiting
// as each answer's Retry-After says, on a few connections: a sender catching
// up, not a second storm. It returns how many sends it took.
func (b *bench) resend(ctx context.Context, hc *http.Client, ns string, refused []int, body func(int) string) (int, error) {
	if len(refused) == 0 {
		return 0, nil
	}
	const senders = 8
	ctx, cancel := context.WithTimeout(ctx, 5*time.Minute)
	defer cancel()
	var sends atomic.Int64
	work := make(chan int)
	errs := make(chan error, senders)
	var wg sync.WaitGroup
	for range senders {
		wg.Go(func() {
			for i := range work {
				for {
					sends.Add(1)
					r, err := b.send(ctx, hc, ns, body(i))
					if err == nil && (r.status == http.StatusAccepted || r.status == http.StatusOK) {
						break
					}
					if ctx.Err() != nil {
						errs <- fmt.Errorf("notification %d still not stored 5 minutes after the load: last answer %d: %w", i, r.status, err)
						return
					}
					wait := r.retryAfter
					if wait <= 0 {
						wait = time.Second
					}
					time.Sleep(wait)
				}
			}
		})
	}
	for _, i := range refused {
		select {
		case work <- i:
		case err := <-errs:
			close(work)
			wg.Wait()
			return int(sends.Load()), err
		}
	}
	close(work)
	wg.Wait()
	select {
	case err := <-errs:
		return int(sends.Load()), err
	default:
		return int(sends.Load()), nil
	}
}

// countEvents counts the ProblemEvents in ns but for the test
// notification's, which tells when the target is served.
func (b *bench) countEvents(ctx context.Context, ns string) (int, error) {
	var l metav1.PartialObjectMetadataList
	l.SetGroupVersionKind(problemhookv1alpha1.GroupVersion.WithKind("ProblemEventList"))
	if err := b.k8s.List(ctx, &l, client.InNamespace(ns)); err != nil {
		return 0, err
	}
	test := problemhookv1alpha1.EventName("dynatrace", "99999", problemhookv1alpha1.StateOpen)
	n := 0
	for _, ev := range l.Items {
		if ev.Name != test {
			n++
		}
	}
	return n, nil
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
		mu      sync.Mutex
		lat     []time.Duration
		failed  int
		refused []int
		byCode  = map[string]int{}
		wg      sync.WaitGroup
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
				refused = append(refused, i)
				code := strconv.Itoa(status)
				if err != nil {
					code = "error"
				}
				byCode[code]++
				return
			}
			lat = append(lat, d)
		})
	}
	wg.Wait()
	l := latencies("", lat, time.Since(start), failed)
	l.Offered = float64(rate)
	l.refused = refused
	if len(byCode) > 0 {
		l.Refused = byCode
	}
	return l
}
