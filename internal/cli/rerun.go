package cli

import (
	"context"
	"fmt"
	"io"
	"slices"
	"strings"

	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	problemhookv1alpha1 "github.com/problemhook/problemhook/api/v1alpha1"
)

// Rerun asks problemhook to run the settled runs of action of the event
// again, for the user the API server authenticates c as: it annotates the
// event with the action and that user's name, which the admission policy
// checks against the verb rerun on problemevents. The manager acts on the
// request and removes the annotations.
func Rerun(ctx context.Context, c client.Client, event types.NamespacedName, action string, out io.Writer) error {
	hasAction := func(ev *problemhookv1alpha1.ProblemEvent) error {
		var actions []string
		for _, a := range ev.Status.Actions {
			if !slices.Contains(actions, a.Action) {
				actions = append(actions, a.Action)
			}
		}
		switch {
		case slices.Contains(actions, action):
			return nil
		case len(actions) == 0:
			return fmt.Errorf("ProblemEvent %s has no action %q: it ran none", event, action)
		}
		return fmt.Errorf("ProblemEvent %s has no action %q: its actions are %s", event, action, strings.Join(actions, ", "))
	}
	what := fmt.Sprintf("asking for action %s of ProblemEvent %s to run again", action, event)
	user, err := askAs(ctx, c, event, what, hasAction, func(user string) map[string]string {
		return map[string]string{problemhookv1alpha1.AnnotationRerun: action, problemhookv1alpha1.AnnotationRerunBy: user}
	})
	if err != nil {
		return err
	}
	_, err = fmt.Fprintf(out, "Asked for action %s of ProblemEvent %s to run again, as %s: `kubectl get pe -n %s %s` shows its runs\n",
		action, event, user, event.Namespace, event.Name)
	return err
}

var rerunCommand = eventActionCommand{
	name: "rerun",
	usage: `Usage: %s rerun <namespace>/<event> <action> [flags]

Ask problemhook to run the settled runs of an action of a ProblemEvent
again, as the user the API server authenticates you as. Needs the verb
rerun on problemevents in the event's namespace.

Flags:
`,
	run: Rerun,
}
