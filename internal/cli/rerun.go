package cli

import (
	"context"
	"errors"
	"flag"
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

const rerunUsage = `Usage: %s rerun <namespace>/<event> <action> [flags]

Ask problemhook to run the settled runs of an action of a ProblemEvent
again, as the user the API server authenticates you as. Needs the verb
rerun on problemevents in the event's namespace.

Flags:
`

// rerunMain runs `manager rerun NAMESPACE/EVENT ACTION`.
func rerunMain(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("rerun", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		_, _ = fmt.Fprintf(fs.Output(), rerunUsage, program)
		fs.PrintDefaults()
	}
	var kubeconfig, kubeContext string
	fs.StringVar(&kubeconfig, "kubeconfig", "", "Path to the kubeconfig file. Default: $KUBECONFIG, else ~/.kube/config, as for kubectl.")
	fs.StringVar(&kubeContext, "context", "", "The kubeconfig context to use. Default: its current context.")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return exitOK
		}
		return exitUsage
	}
	usageError := func(err error) int {
		_, _ = fmt.Fprintf(stderr, "error: %v\nRun '%s rerun -h' for usage.\n", err, program)
		return exitUsage
	}
	if fs.NArg() != 2 {
		return usageError(errors.New("want two arguments: <namespace>/<event> <action>"))
	}
	event, err := parseObjectKey("the event", fs.Arg(0))
	if err != nil {
		return usageError(err)
	}
	c, err := connect(kubeconfig, kubeContext)
	if err == nil {
		err = Rerun(ctx, c, event, fs.Arg(1), stdout)
	}
	if err != nil {
		_, _ = fmt.Fprintf(stderr, "error: %v\n", err)
		return exitError
	}
	return exitOK
}
