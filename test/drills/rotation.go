//go:build linux

package drills

import (
	"context"
	"fmt"
	"net/http"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/problemhook/problemhook/test/harness/fixtures"
)

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
			err := d.kube.Get(ctx, client.ObjectKey{Namespace: ns, Name: fixtures.AuthSecret}, &secret)
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
