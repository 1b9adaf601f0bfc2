package statuspatch

import (
	"encoding/json"
	"fmt"
	"testing"

	. "github.com/onsi/gomega"

	problemhookv1alpha1 "github.com/problemhook/problemhook/api/v1alpha1"
)

// A status write sends what changed: of a thousand runs, the one that
// changed, with the resourceVersion it was computed from.
func TestEventStatusPatchSendsWhatChanged(t *testing.T) {
	g := NewWithT(t)
	base := &problemhookv1alpha1.ProblemEvent{}
	base.ResourceVersion = "42"
	for i := range 1000 {
		base.Status.Actions = append(base.Status.Actions, problemhookv1alpha1.ActionStatus{
			Route: "fanout", Action: "step1", Type: "Job", Entity: fmt.Sprintf("HOST-%016d", i), State: problemhookv1alpha1.ActionPending,
		})
	}
	base.Status.Phase = problemhookv1alpha1.PhasePending
	ev := base.DeepCopy()
	ev.Status.Actions[517].State, ev.Status.Actions[517].Job = problemhookv1alpha1.ActionRunning, "fanout-step1-517"
	ev.Status.Phase = problemhookv1alpha1.PhaseRunning
	ev.Status.Summary = "1 running, 999 pending"

	patch, err := Event(base, ev)
	g.Expect(err).NotTo(HaveOccurred())
	var ops []map[string]any
	g.Expect(json.Unmarshal(patch, &ops)).To(Succeed())
	g.Expect(ops).To(HaveExactElements(
		map[string]any{"op": "replace", "path": "/metadata/resourceVersion", "value": "42"},
		HaveKeyWithValue("path", "/status/actions/517"),
		map[string]any{"op": "replace", "path": "/status/phase", "value": "Running"},
		map[string]any{"op": "add", "path": "/status/summary", "value": "1 running, 999 pending"},
	))
	g.Expect(len(patch)).To(BeNumerically("<", 600), "not the thousand runs")

	// Runs added or removed: the list goes whole. A first write adds the status.
	ev.Status.Actions = ev.Status.Actions[:10]
	patch, err = Event(base, ev)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(string(patch)).To(ContainSubstring(`{"op":"replace","path":"/status/actions","value":[`))
	patch, err = Event(&problemhookv1alpha1.ProblemEvent{}, ev)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(string(patch)).To(ContainSubstring(`{"op":"add","path":"/status","value":{`))
}
