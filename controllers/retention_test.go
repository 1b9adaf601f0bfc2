package controllers_test

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	problemhookv1alpha1 "github.com/problemhook/problemhook/api/v1alpha1"
)

// TestRetention: a target keeps at most maxEvents events, none older than
// maxAge, deleting the oldest first, and never one whose actions still run.
func TestRetention(t *testing.T) {
	g := NewWithT(t)
	ctx := context.Background()
	ns := newNamespace(t)
	g.Expect(k8s.Create(ctx, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "webhook-auth"},
		Data: map[string][]byte{"username": []byte("u"), "password": []byte("p")}})).To(Succeed())
	nt := basicTarget(ns)
	g.Expect(k8s.Create(ctx, nt)).To(Succeed())

	now := time.Now()
	// Received 5h, 4h, ... 1h ago; the oldest still runs.
	var names []string
	for i := range 5 {
		spec := &problemhookv1alpha1.ProblemEventSpec{
			Source: problemhookv1alpha1.FormatDynatrace, ProblemID: fmt.Sprintf("P%d", i), State: problemhookv1alpha1.StateOpen,
			ReceivedAt: metav1.NewTime(now.Add(-time.Duration(5-i) * time.Hour)),
		}
		ev := problemhookv1alpha1.NewProblemEvent(nt, spec)
		g.Expect(k8s.Create(ctx, ev)).To(Succeed())
		ev.Status.Phase = problemhookv1alpha1.PhaseSucceeded
		if i == 0 {
			ev.Status.Phase = problemhookv1alpha1.PhaseRunning
		}
		g.Expect(k8s.Status().Update(ctx, ev)).To(Succeed())
		names = append(names, ev.Name)
	}
	remaining := func(g Gomega) []string {
		var list problemhookv1alpha1.ProblemEventList
		g.Expect(k8s.List(ctx, &list, client.InNamespace(ns))).To(Succeed())
		var out []string
		for _, ev := range list.Items {
			out = append(out, ev.Name)
		}
		return out
	}
	setRetention := func(r *problemhookv1alpha1.Retention) {
		t.Helper()
		// A merge patch carries no resourceVersion: the controller's own
		// status writes cannot make it conflict.
		base := nt.DeepCopy()
		nt.Spec.Retention = r
		g.Expect(k8s.Patch(ctx, nt, client.MergeFrom(base))).To(Succeed())
	}

	// At most 3: the two oldest settled ones go; the running one stays.
	setRetention(&problemhookv1alpha1.Retention{MaxEvents: new(int32(3))})
	g.Eventually(remaining).Should(ConsistOf(names[0], names[3], names[4]))

	// Nothing older than 90 minutes: only the newest stays, and the running one,
	// once it has settled, goes too.
	setRetention(&problemhookv1alpha1.Retention{MaxAge: &metav1.Duration{Duration: 90 * time.Minute}})
	g.Eventually(remaining).Should(ConsistOf(names[0], names[4]))
	var running problemhookv1alpha1.ProblemEvent
	g.Expect(k8s.Get(ctx, client.ObjectKey{Namespace: ns, Name: names[0]}, &running)).To(Succeed())
	base := running.DeepCopy()
	running.Status.Phase = problemhookv1alpha1.PhaseFailed
	g.Expect(k8s.Status().Patch(ctx, &running, client.MergeFrom(base))).To(Succeed())
	g.Eventually(remaining).Should(ConsistOf(names[4]))

	// A new event brings retention back: with at most 1, the older one goes.
	setRetention(&problemhookv1alpha1.Retention{MaxEvents: new(int32(1))})
	fresh := problemhookv1alpha1.NewProblemEvent(nt, &problemhookv1alpha1.ProblemEventSpec{
		Source: problemhookv1alpha1.FormatDynatrace, ProblemID: "new", State: problemhookv1alpha1.StateOpen, ReceivedAt: metav1.Now(),
	})
	g.Expect(k8s.Create(ctx, fresh)).To(Succeed())
	fresh.Status.Phase = problemhookv1alpha1.PhaseSkipped
	g.Expect(k8s.Status().Update(ctx, fresh)).To(Succeed())
	g.Eventually(remaining).Should(ConsistOf(fresh.Name))
}

// Retention is on by default: the API server fills in maxEvents, so that
// `kubectl get -o yaml` shows the bound a target works under.
func TestRetentionDefault(t *testing.T) {
	g := NewWithT(t)
	ctx := context.Background()
	ns := newNamespace(t)
	silent := basicTarget(ns)
	g.Expect(k8s.Create(ctx, silent)).To(Succeed())
	g.Expect(silent.Spec.Retention).To(Equal(&problemhookv1alpha1.Retention{
		MaxEvents: new(int32(problemhookv1alpha1.DefaultMaxEvents)),
		MaxBytes:  new(resource.MustParse("64Mi")),
	}))
	g.Expect(silent.Spec.Retention.MaxBytes.Value()).To(Equal(int64(problemhookv1alpha1.DefaultMaxBytes)))

	ageOnly := basicTarget(ns)
	ageOnly.Name = "age-only"
	ageOnly.Spec.Retention = &problemhookv1alpha1.Retention{MaxAge: &metav1.Duration{Duration: 720 * time.Hour}}
	g.Expect(k8s.Create(ctx, ageOnly)).To(Succeed())
	g.Expect(*ageOnly.Spec.Retention.MaxEvents).To(Equal(int32(10000)))
	g.Expect(ageOnly.Spec.Retention.MaxBytes.String()).To(Equal("64Mi"))

	for _, q := range []string{"1023Ki", "9Gi", "0"} {
		bad := basicTarget(ns)
		bad.Name = "bad-" + strings.ToLower(q)
		bad.Spec.Retention = &problemhookv1alpha1.Retention{MaxBytes: new(resource.MustParse(q))}
		g.Expect(k8s.Create(ctx, bad)).To(MatchError(ContainSubstring("maxBytes must be between 1Mi and 8Gi")), q)
	}
}

// TestRetentionMaxBytes: past maxBytes, counted from the events as they
// are stored, the oldest settled events go until the rest fit.
func TestRetentionMaxBytes(t *testing.T) {
	g := NewWithT(t)
	ctx := context.Background()
	ns := newNamespace(t)
	g.Expect(k8s.Create(ctx, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "webhook-auth"},
		Data: map[string][]byte{"username": []byte("u"), "password": []byte("p")}})).To(Succeed())
	nt := basicTarget(ns)
	nt.Spec.Retention = &problemhookv1alpha1.Retention{MaxBytes: new(resource.MustParse("1Mi"))}
	g.Expect(k8s.Create(ctx, nt)).To(Succeed())

	now := time.Now()
	const events = 24
	var newest string
	for i := range events {
		spec := &problemhookv1alpha1.ProblemEventSpec{
			Source: problemhookv1alpha1.FormatDynatrace, ProblemID: fmt.Sprintf("P%d", i), State: problemhookv1alpha1.StateOpen,
			ReceivedAt: metav1.NewTime(now.Add(-time.Duration(events-i) * time.Minute)),
			Payload:    strings.Repeat("x", problemhookv1alpha1.MaxPayloadBytes),
		}
		ev := problemhookv1alpha1.NewProblemEvent(nt, spec)
		g.Expect(k8s.Create(ctx, ev)).To(Succeed())
		ev.Status.Phase = problemhookv1alpha1.PhaseSucceeded
		g.Expect(k8s.Status().Update(ctx, ev)).To(Succeed())
		newest = ev.Name
	}
	g.Eventually(func(g Gomega) {
		var list problemhookv1alpha1.ProblemEventList
		g.Expect(k8s.List(ctx, &list, client.InNamespace(ns))).To(Succeed())
		var total int
		var names []string
		for _, ev := range list.Items {
			data, err := json.Marshal(ev)
			g.Expect(err).NotTo(HaveOccurred())
			total += len(data)
			names = append(names, ev.Name)
		}
		g.Expect(total).To(BeNumerically("<=", 1<<20))
		g.Expect(total).To(BeNumerically(">", 1<<20-(70<<10)), "more went than had to")
		g.Expect(names).To(ContainElement(newest))
	}).WithTimeout(20 * time.Second).Should(Succeed())
}
