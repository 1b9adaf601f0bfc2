package problemevent

import (
	"fmt"
	"strings"
	"testing"

	. "github.com/onsi/gomega"
	batchv1 "k8s.io/api/batch/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/events"

	problemhookv1alpha1 "github.com/problemhook/problemhook/api/v1alpha1"
	"github.com/problemhook/problemhook/controllers"
)

// The Jobs a reconcile started make one Event: one Job is named as such;
// many are listed as far as an Event's note allows, and the rest counted.
// A reconcile that started none records nothing.
func TestJobsCreatedEvent(t *testing.T) {
	g := NewWithT(t)
	rec := events.NewFakeRecorder(4)
	r := &Reconciler{Deps: controllers.Deps{Recorder: rec}}
	ev := &problemhookv1alpha1.ProblemEvent{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "ev"}}
	var jobs []*batchv1.Job
	for i := range 60 {
		jobs = append(jobs, &batchv1.Job{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: fmt.Sprintf("legacy-incident-%010d", i),
			Labels: map[string]string{problemhookv1alpha1.LabelRoute: "legacy", problemhookv1alpha1.LabelAction: "incident"}}})
	}

	r.recordJobsCreated(ev, nil)
	r.recordJobsCreated(ev, jobs[:1])
	r.recordJobsCreated(ev, jobs)

	g.Expect(<-rec.Events).To(Equal("Normal JobsCreated Created Job legacy-incident-0000000000 for IntegrationRoute legacy action incident"))
	note, ok := strings.CutPrefix(<-rec.Events, "Normal JobsCreated ")
	g.Expect(ok).To(BeTrue())
	g.Expect(len(note)).To(BeNumerically("<=", maxEventNote))
	g.Expect(note).To(HavePrefix("Created 60 Jobs: legacy-incident-0000000000 for IntegrationRoute legacy action incident; legacy-incident-0000000001 for"))
	named := strings.Count(note, " for IntegrationRoute legacy action incident")
	g.Expect(named).To(BeNumerically(">", 10))
	g.Expect(note).To(HaveSuffix(fmt.Sprintf("legacy-incident-%010d for IntegrationRoute legacy action incident; and %d more", named-1, 60-named)))
	g.Expect(rec.Events).To(BeEmpty())
}
