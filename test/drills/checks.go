//go:build linux

package drills

import (
	"context"
	"fmt"
	"strings"
	"time"

	"sigs.k8s.io/controller-runtime/pkg/client"

	problemhookv1alpha1 "github.com/problemhook/problemhook/api/v1alpha1"
)

// events lists a namespace's ProblemEvents by (problem, state).
func (d *drills) events(ctx context.Context, ns string) (map[string]*problemhookv1alpha1.ProblemEvent, error) {
	var list problemhookv1alpha1.ProblemEventList
	if err := d.kube.List(ctx, &list, client.InNamespace(ns)); err != nil {
		return nil, err
	}
	byKey := map[string]*problemhookv1alpha1.ProblemEvent{}
	for i := range list.Items {
		ev := &list.Items[i]
		if ev.Spec.Test {
			continue
		}
		byKey[ev.Spec.ProblemID+"/"+string(ev.Spec.State)] = ev
	}
	return byKey, nil
}

// settle waits until every event of ns has left Pending and Running.
func (d *drills) settle(ctx context.Context, ns string, want int, timeout time.Duration) (map[string]*problemhookv1alpha1.ProblemEvent, error) {
	deadline := time.Now().Add(timeout)
	for {
		evs, err := d.events(ctx, ns)
		if err == nil {
			busy := 0
			for _, ev := range evs {
				if !ev.Status.Phase.Done() {
					busy++
				}
			}
			if busy == 0 && len(evs) >= want {
				return evs, nil
			}
			if time.Now().After(deadline) {
				return evs, fmt.Errorf("after %s, %d of %d events not settled", timeout, busy, len(evs))
			}
		} else if time.Now().After(deadline) {
			return nil, err
		}
		time.Sleep(250 * time.Millisecond)
	}
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

// eachEventOnce waits until the events of ns settle and checks that each
// notification was stored once, no Job was created twice and each event's
// HTTP action was called once, or not at all where its run says it was
// stopped because the problem resolved first. It returns the events, how
// many were stored and how many HTTP calls were stopped.
func (d *drills) eachEventOnce(ctx context.Context, r *result, ns string, notes []notification, jc *jobController) (map[string]*problemhookv1alpha1.ProblemEvent, int, int) {
	evs, err := d.settle(ctx, ns, len(notes), 2*time.Minute)
	if err != nil {
		r.Failures = append(r.Failures, err.Error())
	}
	stored, failures := d.storedOnce(ctx, ns, notes)
	r.Failures = append(r.Failures, failures...)
	r.Failures = append(r.Failures, jc.twice()...)
	calls := d.hook.calls()
	stopped := 0
	for _, ev := range evs {
		want := 1
		for _, a := range ev.Status.Actions {
			if a.Type == problemhookv1alpha1.ActionTypeHTTP && a.State == problemhookv1alpha1.ActionStopped {
				want = 0
				stopped++
			}
		}
		if calls[ev.Name] != want {
			r.Failures = append(r.Failures, fmt.Sprintf("%s: HTTP action called %d times, want %d", ev.Name, calls[ev.Name], want))
		}
	}
	return evs, stored, stopped
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
