package cli

import (
	"context"
	"fmt"
	"io"
	"slices"
	"strings"

	authenticationv1 "k8s.io/api/authentication/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
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
	review := &authenticationv1.SelfSubjectReview{}
	if err := c.Create(ctx, review); err != nil {
		return fmt.Errorf("asking the API server who you are: %w", err)
	}
	user := review.Status.UserInfo.Username
	var ev problemhookv1alpha1.ProblemEvent
	if err := c.Get(ctx, event, &ev); err != nil {
		if apierrors.IsNotFound(err) {
			return fmt.Errorf("ProblemEvent %s not found", event)
		}
		return fmt.Errorf("reading ProblemEvent %s: %w", event, err)
	}
	var actions []string
	for _, a := range ev.Status.Actions {
		if !slices.Contains(actions, a.Action) {
			actions = append(actions, a.Action)
		}
	}
	if !slices.Contains(actions, action) {
		if len(actions) == 0 {
			return fmt.Errorf("ProblemEvent %s has no action %q: it ran none", event, action)
		}
		return fmt.Errorf("ProblemEvent %s has no action %q: its actions are %s", event, action, strings.Join(actions, ", "))
	}
	patch := client.MergeFrom(ev.DeepCopy())
	metav1.SetMetaDataAnnotation(&ev.ObjectMeta, problemhookv1alpha1.AnnotationRerun, action)
	metav1.SetMetaDataAnnotation(&ev.ObjectMeta, problemhookv1alpha1.AnnotationRerunBy, user)
	if err := c.Patch(ctx, &ev, patch); err != nil {
		return fmt.Errorf("asking for action %s of ProblemEvent %s to run again: %w", action, event, err)
	}
	_, err := fmt.Fprintf(out, "Asked for action %s of ProblemEvent %s to run again, as %s: `kubectl get pe -n %s %s` shows its runs\n",
		action, event, user, event.Namespace, event.Name)
	return err
}
