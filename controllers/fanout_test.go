package controllers_test

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	. "github.com/onsi/gomega"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	problemhookv1alpha1 "github.com/problemhook/problemhook/api/v1alpha1"
	"github.com/problemhook/problemhook/controllers/problemevent"
)

// A problem with 1,000 impacted entities and a route with four per-entity
// Job actions: the notification is stored, the event holds what fits its
// bound and counts the rest, the count shows in kubectl get pe and in the
// comment, and the event settles.
func TestAThousandEntitiesFit(t *testing.T) {
	f := newFixture(t)
	f.dt.AddProblem(richProblem())
	var actions []problemhookv1alpha1.Action
	for i := 1; i <= 4; i++ {
		actions = append(actions, jobAction(t, fmt.Sprintf("step%d", i), true, 100))
	}
	f.route("fanout", problemhookv1alpha1.RouteMatch{}, actions...)

	post := func(state string) {
		var entities []string
		for i := range 1000 {
			entities = append(entities, fmt.Sprintf(`{"entity":"HOST-%016d","name":"host-%04d","type":"HOST"}`, i, i))
		}
		body := `{"State":"` + state + `","ProblemID":"1234","PID":"` + pid + `","ProblemTitle":"CPU","ImpactedEntities":[` + strings.Join(entities, ",") + `]}`
		f.notify(body)
	}
	post("OPEN")
	open := &problemhookv1alpha1.ProblemEvent{ObjectMeta: metav1.ObjectMeta{Namespace: f.ns, Name: problemhookv1alpha1.EventName("dynatrace", pid, problemhookv1alpha1.StateOpen)}}
	named := "the notification named 1000 impacted entities; a ProblemEvent holds 256"
	got := f.eventually(open, func(g Gomega, ev *problemhookv1alpha1.ProblemEvent) {
		g.Expect(ev.Spec.ImpactedEntities).To(HaveLen(256))
		g.Expect(ev.Spec.ImpactedEntityCount).To(Equal(int32(1000)))
		g.Expect(ev.Status.Omitted).To(HaveExactElements(
			problemhookv1alpha1.OmittedRuns{Route: "fanout", Action: "step1", Asked: 1000, Omitted: 744, Reason: named},
			problemhookv1alpha1.OmittedRuns{Route: "fanout", Action: "step2", Asked: 1000, Omitted: 744, Reason: named},
			problemhookv1alpha1.OmittedRuns{Route: "fanout", Action: "step3", Asked: 1000, Omitted: 744, Reason: named},
			And(HaveField("Action", "step4"), HaveField("Asked", int32(1000)),
				HaveField("Omitted", BeNumerically(">", 744)), HaveField("Reason", "an event holds at most 1024 runs, in 512 KiB")),
		))
		g.Expect(ev.Status.Summary).To(MatchRegexp(`^100 running, \d+ pending, \d+ omitted$`))
	})
	size, err := json.Marshal(got)
	f.g.Expect(err).NotTo(HaveOccurred())
	t.Logf("the event holds %d runs in %d KiB of JSON", len(got.Status.Actions), len(size)>>10)
	f.g.Expect(len(size)).To(BeNumerically("<", problemevent.MaxRunBytes+300<<10), "well under etcd's 1.5 MiB")
	f.waitJobs(100)

	// The RESOLVED stops what runs; the event settles and says what it
	// left out.
	post("RESOLVED")
	got = f.eventually(open, func(g Gomega, ev *problemhookv1alpha1.ProblemEvent) {
		g.Expect(ev.Status.Comment).NotTo(BeNil())
		g.Expect(ev.Status.Comment.Posted).To(BeTrue(), ev.Status.Comment.Message)
	})
	f.g.Expect(got.Status.Summary).To(MatchRegexp(`^\d+ stopped, \d+ omitted$`))
	f.g.Expect(got.Status.Comment.Message).To(ContainSubstring(
		"problemhook ran Job fanout/step1 for 256 of 1000 impacted entities: 256 stopped (problem resolved); 744 not run: " + named + "\n"))
	f.g.Expect(got.Status.Comment.Message).To(MatchRegexp(
		`problemhook ran Job fanout/step4 for \d+ of 1000 impacted entities: \d+ stopped \(problem resolved\); \d+ not run: an event holds at most 1024 runs, in 512 KiB\n`))
}
