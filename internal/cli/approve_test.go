package cli_test

import (
	"bytes"
	"context"
	"testing"

	. "github.com/onsi/gomega"
	"sigs.k8s.io/controller-runtime/pkg/client"

	problemhookv1alpha1 "github.com/problemhook/problemhook/api/v1alpha1"
	"github.com/problemhook/problemhook/internal/cli"
	"github.com/problemhook/problemhook/test/harness/controlplane"
)

// Approve annotates the event with the action and the name the API server
// gives the caller, approving or rejecting, and refuses an action that
// awaits no approval, naming those that do.
func TestApprove(t *testing.T) {
	g := NewWithT(t)
	ctx := context.Background()
	ns := controlplane.NewNamespace(t, k8s, "cli-approve")
	ev := eventWithRuns(t, ns)
	key := client.ObjectKeyFromObject(ev)
	var out bytes.Buffer
	g.Expect(cli.Approve(ctx, k8s, key, "scale-out", false, &out)).To(MatchError("no action of ProblemEvent " + ns + "/ev awaits approval"))

	ev.Status.Actions = []problemhookv1alpha1.ActionStatus{
		{Route: "ladder", Action: "restart", Type: problemhookv1alpha1.ActionTypeJob, State: problemhookv1alpha1.ActionSucceeded},
		{Route: "ladder", Action: "scale-out", Type: problemhookv1alpha1.ActionTypeJob, State: problemhookv1alpha1.ActionAwaitingApproval},
	}
	g.Expect(k8s.Status().Update(ctx, ev)).To(Succeed())
	me := whoAmI(t)
	g.Expect(cli.Approve(ctx, k8s, key, "restart", false, &out)).To(MatchError(
		`action "restart" of ProblemEvent ` + ns + `/ev does not await approval: ladder/scale-out does`))
	g.Expect(cli.Approve(ctx, k8s, key, "ladder/scale-out", false, &out)).To(Succeed())
	g.Expect(out.String()).To(HavePrefix("Approved action ladder/scale-out of ProblemEvent " + ns + "/ev, as " + me))
	var got problemhookv1alpha1.ProblemEvent
	g.Expect(k8s.Get(ctx, key, &got)).To(Succeed())
	g.Expect(got.Annotations).To(HaveKeyWithValue(problemhookv1alpha1.AnnotationApprove, "ladder/scale-out"))
	g.Expect(got.Annotations).To(HaveKeyWithValue(problemhookv1alpha1.AnnotationApproveBy, me))

	out.Reset()
	g.Expect(cli.Approve(ctx, k8s, key, "scale-out", true, &out)).To(Succeed())
	g.Expect(out.String()).To(HavePrefix("Rejected action scale-out of ProblemEvent " + ns + "/ev, as " + me))
	g.Expect(k8s.Get(ctx, key, &got)).To(Succeed())
	g.Expect(got.Annotations).To(HaveKeyWithValue(problemhookv1alpha1.AnnotationReject, "scale-out"))
	g.Expect(got.Annotations).To(HaveKeyWithValue(problemhookv1alpha1.AnnotationRejectBy, me))
}

func TestMainApproveUsage(t *testing.T) {
	g := NewWithT(t)
	var stdout, stderr bytes.Buffer
	g.Expect(cli.Main(context.Background(), []string{"approve", "ns/ev"}, &stdout, &stderr)).To(Equal(2))
	g.Expect(stderr.String()).To(HavePrefix("error: want two arguments: <namespace>/<event> <action>\nRun 'manager approve -h' for usage.\n"))
	stderr.Reset()
	// Flags may follow the arguments: the kubeconfig named is read, and
	// found missing.
	g.Expect(cli.Main(context.Background(), []string{"approve", "ns/ev", "page", "--reject", "--kubeconfig", "/no/such/kubeconfig"}, &stdout, &stderr)).To(Equal(1))
	g.Expect(stderr.String()).To(And(HavePrefix("error: "), ContainSubstring("/no/such/kubeconfig")))
	stderr.Reset()
	g.Expect(cli.Main(context.Background(), []string{"approve", "ns/ev", "page", "extra"}, &stdout, &stderr)).To(Equal(2))
	g.Expect(stderr.String()).To(HavePrefix("error: want two arguments: <namespace>/<event> <action>\n"))
	stderr.Reset()
	g.Expect(cli.Main(context.Background(), []string{"approve", "-h"}, &stdout, &stderr)).To(Equal(0))
	g.Expect(stderr.String()).To(And(ContainSubstring("Usage: manager approve <namespace>/<event> <action> [flags]"), ContainSubstring("-reject")))
}
