package cli

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"

	authenticationv1 "k8s.io/api/authentication/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	problemhookv1alpha1 "github.com/problemhook/problemhook/api/v1alpha1"
)

// askAs annotates a ProblemEvent with a request in the name the API
// server gives c, as the admission policies that check such requests
// want: check refuses a request the event cannot take, annotations says
// the request for the user, and what names it in the error of an
// annotation refused. It returns the user.
func askAs(ctx context.Context, c client.Client, event types.NamespacedName, what string, check func(*problemhookv1alpha1.ProblemEvent) error, annotations func(user string) map[string]string) (string, error) {
	review := &authenticationv1.SelfSubjectReview{}
	if err := c.Create(ctx, review); err != nil {
		return "", fmt.Errorf("asking the API server who you are: %w", err)
	}
	user := review.Status.UserInfo.Username
	var ev problemhookv1alpha1.ProblemEvent
	if err := c.Get(ctx, event, &ev); err != nil {
		if apierrors.IsNotFound(err) {
			return "", fmt.Errorf("ProblemEvent %s not found", event)
		}
		return "", fmt.Errorf("reading ProblemEvent %s: %w", event, err)
	}
	if err := check(&ev); err != nil {
		return "", err
	}
	patch := client.MergeFrom(ev.DeepCopy())
	for k, v := range annotations(user) {
		metav1.SetMetaDataAnnotation(&ev.ObjectMeta, k, v)
	}
	if err := c.Patch(ctx, &ev, patch); err != nil {
		return "", fmt.Errorf("%s: %w", what, err)
	}
	return user, nil
}

// eventActionCommand is a command of the form `NAME <namespace>/<event>
// <action> [flags]`: flags binds its own flags, and run asks for it.
type eventActionCommand struct {
	name, usage string
	flags       func(*flag.FlagSet)
	run         func(ctx context.Context, c client.Client, event types.NamespacedName, action string, out io.Writer) error
}

// main parses args and runs the command.
func (cmd eventActionCommand) main(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet(cmd.name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		_, _ = fmt.Fprintf(fs.Output(), cmd.usage, program)
		fs.PrintDefaults()
	}
	var kubeconfig, kubeContext string
	fs.StringVar(&kubeconfig, "kubeconfig", "", "Path to the kubeconfig file. Default: $KUBECONFIG, else ~/.kube/config, as for kubectl.")
	fs.StringVar(&kubeContext, "context", "", "The kubeconfig context to use. Default: its current context.")
	if cmd.flags != nil {
		cmd.flags(fs)
	}
	// Flags may come before, between or after the arguments, as
	// kubectl's do: `approve ns/event page --reject`.
	var positional []string
	for rest := args; ; {
		if err := fs.Parse(rest); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				return exitOK
			}
			return exitUsage
		}
		if fs.NArg() == 0 {
			break
		}
		positional, rest = append(positional, fs.Arg(0)), fs.Args()[1:]
	}
	usageError := func(err error) int {
		_, _ = fmt.Fprintf(stderr, "error: %v\nRun '%s %s -h' for usage.\n", err, program, cmd.name)
		return exitUsage
	}
	if len(positional) != 2 {
		return usageError(errors.New("want two arguments: <namespace>/<event> <action>"))
	}
	event, err := parseObjectKey("the event", positional[0])
	if err != nil {
		return usageError(err)
	}
	c, err := connect(kubeconfig, kubeContext)
	if err == nil {
		err = cmd.run(ctx, c, event, positional[1], stdout)
	}
	if err != nil {
		_, _ = fmt.Fprintf(stderr, "error: %v\n", err)
		return exitError
	}
	return exitOK
}
