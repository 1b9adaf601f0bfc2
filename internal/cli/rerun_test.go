package cli_test

import (
	"bytes"
	"context"
	"testing"

	. "github.com/onsi/gomega"
	authenticationv1 "k8s.io/api/authentication/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	problemhookv1alpha1 "github.com/problemhook/problemhook/api/v1alpha1"
	"github.com/problemhook/problemhook/internal/cli"
	"github.com/problemhook/problemhook/test/harness/controlplane"
)

// Rerun annotates the event with the action and the name the API server
// gives the caller, and refuses an action the event does not have.
func TestRerun(t *testing.T) {
	g := NewWithT(t)
	ctx := context.Background()
	ns := controlplane.NewNamespace(t, k8s, "cli-rerun")
	ev := eventWithRuns(t, ns,
		problemhookv1alpha1.ActionStatus{Route: "r", Action: "restart", Type: problemhookv1alpha1.ActionTypeJob, State: problemhookv1alpha1.ActionFailed},
		problemhookv1alpha1.ActionStatus{Route: "r", Action: "page", Type: problemhookv1alpha1.ActionTypeHTTP, State: problemhookv1alpha1.ActionSucceeded},
	)
	me := whoAmI(t)

	var out bytes.Buffer
	key := client.ObjectKeyFromObject(ev)
	g.Expect(cli.Rerun(ctx, k8s, key, "scale", &out)).To(MatchError(
		`ProblemEvent ` + ns + `/ev has no action "scale": its actions are restart, page`))
	g.Expect(cli.Rerun(ctx, k8s, key, "restart", &out)).To(Succeed())
	g.Expect(out.String()).To(HavePrefix("Asked for action restart of ProblemEvent " + ns + "/ev to run again, as " + me))
	var got problemhookv1alpha1.ProblemEvent
	g.Expect(k8s.Get(ctx, key, &got)).To(Succeed())
	g.Expect(got.Annotations).To(HaveKeyWithValue(problemhookv1alpha1.AnnotationRerun, "restart"))
	g.Expect(got.Annotations).To(HaveKeyWithValue(problemhookv1alpha1.AnnotationRerunBy, me))
	g.Expect(cli.Rerun(ctx, k8s, client.ObjectKey{Namespace: ns, Name: "gone"}, "restart", &out)).To(MatchError("ProblemEvent " + ns + "/gone not found"))
}

func TestMainRerunUsage(t *testing.T) {
	g := NewWithT(t)
	var stdout, stderr bytes.Buffer
	g.Expect(cli.Main(context.Background(), []string{"rerun", "ns-only"}, &stdout, &stderr)).To(Equal(2))
	g.Expect(stderr.String()).To(HavePrefix("error: want two arguments: <namespace>/<event> <action>\n"))
	stderr.Reset()
	g.Expect(cli.Main(context.Background(), []string{"rerun", "no-slash", "restart"}, &stdout, &stderr)).To(Equal(2))
	g.Expect(stderr.String()).To(HavePrefix(`error: the event must be <namespace>/<name>, got "no-slash"`))
}

// eventWithRuns stores a ProblemEvent in ns whose status holds runs.
func eventWithRuns(t *testing.T, ns string, runs ...problemhookv1alpha1.ActionStatus) *problemhookv1alpha1.ProblemEvent {
	t.Helper()
	ctx := context.Background()
	ev := &problemhookv1alpha1.ProblemEvent{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "ev"}, Spec: problemhookv1alpha1.ProblemEventSpec{
		Source: problemhookv1alpha1.FormatDynatrace, ProblemID: "-1_1V2", State: problemhookv1alpha1.StateOpen, Target: "dynatrace", ReceivedAt: metav1.Now(),
	}}
	if err := k8s.Create(ctx, ev); err != nil {
		t.Fatal(err)
	}
	if len(runs) > 0 {
		ev.Status.Actions = runs
		if err := k8s.Status().Update(ctx, ev); err != nil {
			t.Fatal(err)
		}
	}
	return ev
}

// whoAmI is the user the API server authenticates the tests' client as.
func whoAmI(t *testing.T) string {
	t.Helper()
	review := &authenticationv1.SelfSubjectReview{}
	if err := k8s.Create(context.Background(), review); err != nil {
		t.Fatal(err)
	}
	return review.Status.UserInfo.Username
}
