package cli

import (
	"context"
	"flag"
	"fmt"
	"io"
	"slices"
	"strings"

	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	problemhookv1alpha1 "github.com/problemhook/problemhook/api/v1alpha1"
)

// Approve approves the runs of action (its name, or route/name) of the
// event that await approval, or rejects them when reject is true, for the
// user the API server authenticates c as: it annotates the event with the
// action and that user's name, which the admission policy checks against
// the verb approve on problemevents. The manager records the decision and
// removes the annotations.
func Approve(ctx context.Context, c client.Client, event types.NamespacedName, action string, reject bool, out io.Writer) error {
	asked, by, verb, doing := problemhookv1alpha1.AnnotationApprove, problemhookv1alpha1.AnnotationApproveBy, "Approved", "approving"
	if reject {
		asked, by, verb, doing = problemhookv1alpha1.AnnotationReject, problemhookv1alpha1.AnnotationRejectBy, "Rejected", "rejecting"
	}
	awaiting := func(ev *problemhookv1alpha1.ProblemEvent) error {
		var waiting []string
		for _, a := range ev.Status.Actions {
			if a.State != problemhookv1alpha1.ActionAwaitingApproval {
				continue
			}
			if action == a.Action || action == a.Route+"/"+a.Action {
				return nil
			}
			if name := a.Route + "/" + a.Action; !slices.Contains(waiting, name) {
				waiting = append(waiting, name)
			}
		}
		if len(waiting) == 0 {
			return fmt.Errorf("no action of ProblemEvent %s awaits approval", event)
		}
		return fmt.Errorf("action %q of ProblemEvent %s does not await approval: %s does", action, event, strings.Join(waiting, ", "))
	}
	what := fmt.Sprintf("%s action %s of ProblemEvent %s", doing, action, event)
	user, err := askAs(ctx, c, event, what, awaiting, func(user string) map[string]string {
		return map[string]string{asked: action, by: user}
	})
	if err != nil {
		return err
	}
	_, err = fmt.Fprintf(out, "%s action %s of ProblemEvent %s, as %s: `kubectl get pe -n %s %s` shows its runs\n",
		verb, action, event, user, event.Namespace, event.Name)
	return err
}

var approveCommand = func() eventActionCommand {
	var reject bool
	return eventActionCommand{
		name: "approve",
		usage: `Usage: %s approve <namespace>/<event> <action> [flags]

Approve the runs of an action of a ProblemEvent that await approval, or
reject them with --reject, as the user the API server authenticates you
as. <action> is the action's name, or <route>/<action> when two routes
have an action of that name. Needs the verb approve on problemevents in
the event's namespace.

Flags:
`,
		flags: func(fs *flag.FlagSet) {
			fs.BoolVar(&reject, "reject", false, "Reject the runs instead: they end Skipped, and nothing is created or sent.")
		},
		run: func(ctx context.Context, c client.Client, event types.NamespacedName, action string, out io.Writer) error {
			return Approve(ctx, c, event, action, reject, out)
		},
	}
}()
