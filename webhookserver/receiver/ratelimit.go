package receiver

import (
	"net/http"
	"strconv"
	"sync"
	"time"

	"golang.org/x/time/rate"
	"k8s.io/apimachinery/pkg/types"

	problemhookv1alpha1 "github.com/problemhook/problemhook/api/v1alpha1"
	"github.com/problemhook/problemhook/internal/metrics"
)

// limiters holds a token bucket per target, made from its spec.rateLimit
// and made again when that changes or the target is recreated.
type limiters struct {
	mu      sync.Mutex
	buckets map[types.NamespacedName]*bucket
}

type bucket struct {
	uid     types.UID
	limit   problemhookv1alpha1.RateLimit
	limiter *rate.Limiter
	// used is when the bucket last took a notification, for sweep.
	used time.Time
}

// allow takes one notification for target at now from its bucket, or says
// how long until the bucket holds one again.
func (l *limiters) allow(target *problemhookv1alpha1.NotificationTarget, now time.Time) (bool, time.Duration) {
	limit := rateLimitOf(target)
	key := types.NamespacedName{Namespace: target.Namespace, Name: target.Name}
	l.mu.Lock()
	defer l.mu.Unlock()
	b := l.buckets[key]
	if b == nil || b.uid != target.UID || b.limit != limit {
		b = &bucket{uid: target.UID, limit: limit, limiter: rate.NewLimiter(rate.Limit(limit.PerSecond), int(limit.Burst))}
		if l.buckets == nil {
			l.buckets = map[types.NamespacedName]*bucket{}
		}
		l.buckets[key] = b
	}
	b.used = now
	if b.limiter.AllowN(now, 1) {
		return true, 0
	}
	r := b.limiter.ReserveN(now, 1)
	wait := r.DelayFrom(now)
	r.CancelAt(now)
	return false, wait
}

// sweep forgets the buckets that have been idle long enough to be full
// again: a new bucket is full, so forgetting one grants nothing a sender
// would not have had by waiting, and targets gone quiet or deleted cost no
// memory.
func (l *limiters) sweep(now time.Time) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for key, b := range l.buckets {
		refill := time.Duration(float64(b.limit.Burst) / float64(b.limit.PerSecond) * float64(time.Second))
		if now.Sub(b.used) >= refill {
			delete(l.buckets, key)
		}
	}
}

// rateLimitOf is the target's rate limit, with the CRD's defaults where
// it gives none (an object stored before the field existed).
func rateLimitOf(target *problemhookv1alpha1.NotificationTarget) problemhookv1alpha1.RateLimit {
	limit := problemhookv1alpha1.RateLimit{PerSecond: problemhookv1alpha1.DefaultRateLimitPerSecond, Burst: problemhookv1alpha1.DefaultRateLimitBurst}
	if rl := target.Spec.RateLimit; rl != nil {
		if rl.PerSecond > 0 {
			limit.PerSecond = rl.PerSecond
		}
		if rl.Burst > 0 {
			limit.Burst = rl.Burst
		}
	}
	return limit
}

// throttle refuses a notification past the target's rate limit, telling
// the sender when the bucket holds one again (in whole seconds, at least 1).
func throttle(target *problemhookv1alpha1.NotificationTarget, wait time.Duration) *refusal {
	limit := rateLimitOf(target)
	secs := max(int((wait+time.Second-1)/time.Second), 1)
	ref := refuse(http.StatusTooManyRequests, "NotificationTarget %s/%s takes at most %d notifications a second (burst %d) on this replica: retry after %d s",
		target.Namespace, target.Name, limit.PerSecond, limit.Burst, secs)
	ref.header = http.Header{"Retry-After": {strconv.Itoa(secs)}}
	ref.result = metrics.ResultThrottled
	return ref
}
