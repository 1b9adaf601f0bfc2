// Package cli is the command line of the manager binary: `poll` lists a
// target's recent Dynatrace problems and says which problemhook recorded,
// `send-test` posts a test notification to the receiver with a target's
// credentials. Both reach the cluster through the kubeconfig, as kubectl
// does. `routes test` tells what routes read from files would do for a
// notification, offline, as a CI pipeline runs it before the routes ship.
package cli

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"

	"github.com/go-logr/logr"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"

	problemhookv1alpha1 "github.com/problemhook/problemhook/api/v1alpha1"
	"github.com/problemhook/problemhook/internal/scheme"
)

// Exit codes of Main.
const (
	exitOK    = 0
	exitError = 1
	exitUsage = 2
)

// program is the name of the binary in usage texts.
const program = "manager"

// command is a subcommand: what it is for, and its flags. bind binds them
// to a FlagSet and returns the invocation they fill in, for a command
// that acts on a target through the cluster; main runs instead a command
// that reads its own arguments and may need no cluster at all.
type command struct {
	summary string
	bind    func(fs *flag.FlagSet) invocation
	main    func(ctx context.Context, args []string, stdout, stderr io.Writer) int
}

// invocation is a command with its options.
type invocation interface {
	// prepare sets the target and checks the options, before any cluster is contacted.
	prepare(target types.NamespacedName) error
	run(ctx context.Context, c client.Reader, out io.Writer) error
}

var commands = map[string]command{
	"poll": {
		summary: "List a target's Dynatrace problems of a recent time frame and mark those problemhook recorded.",
		bind: func(fs *flag.FlagSet) invocation {
			p := &pollInvocation{}
			fs.StringVar(&p.RelativeTime, "relative-time", DefaultRelativeTime, "Time frame to list: "+strings.Join(RelativeTimes(), ", ")+".")
			fs.StringVar(&p.Output, "o", OutputTable, "Output format: table or json.")
			fs.StringVar(&p.Output, "output", OutputTable, "Output format: table or json (same as -o).")
			return p
		},
	},
	"send-test": {
		summary: "Post a test notification to the receiver with a target's credentials and print the answer.",
		bind: func(fs *flag.FlagSet) invocation {
			s := &sendTestInvocation{}
			fs.StringVar(&s.ReceiverURL, "receiver-url", "", "Base URL of the receiver, e.g. http://localhost:9292 after "+
				"`kubectl -n problemhook-system port-forward svc/problemhook-receiver 9292`. Default: the target's status.webhookURL.")
			return s
		},
	},
	"routes": {
		summary: "routes test: say what IntegrationRoutes in files would do for a notification, offline.",
		main:    routesMain,
	},
	"rerun": {
		summary: "rerun <namespace>/<event> <action>: run the settled runs of an event's action again, as you.",
		main:    rerunCommand.main,
	},
	"approve": {
		summary: "approve <namespace>/<event> <action> [--reject]: approve (or reject) an action's runs that await approval, as you.",
		main:    approveCommand.main,
	},
}

type pollInvocation struct{ PollOptions }

func (p *pollInvocation) prepare(target types.NamespacedName) error {
	p.Target = target
	return p.validate()
}

func (p *pollInvocation) run(ctx context.Context, c client.Reader, out io.Writer) error {
	return Poll(ctx, c, p.PollOptions, out)
}

type sendTestInvocation struct{ SendTestOptions }

func (s *sendTestInvocation) prepare(target types.NamespacedName) error {
	s.Target = target
	return s.validate()
}

func (s *sendTestInvocation) run(ctx context.Context, c client.Reader, out io.Writer) error {
	return SendTest(ctx, c, s.SendTestOptions, out)
}

// IsCommand reports whether name is a subcommand Main runs.
func IsCommand(name string) bool {
	_, ok := commands[name]
	return ok
}

// Main runs the subcommand args[0] with the flags that follow it, writes
// its output to stdout and its errors to stderr, and returns the exit code:
// 0 on success, 1 when the command failed, 2 for a usage error.
func Main(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 || !IsCommand(args[0]) {
		if len(args) > 0 {
			_, _ = fmt.Fprintf(stderr, "error: unknown command %q\n", args[0])
		}
		_, _ = fmt.Fprintf(stderr, "Usage: %s <command> [flags]\n\nCommands:\n", program)
		for _, name := range slices.Sorted(maps.Keys(commands)) {
			_, _ = fmt.Fprintf(stderr, "  %-10s %s\n", name, commands[name].summary)
		}
		_, _ = fmt.Fprintf(stderr, "\nRun '%s <command> -h' for the flags of a command.\n", program)
		return exitUsage
	}
	name, cmd := args[0], commands[args[0]]
	if cmd.main != nil {
		return cmd.main(ctx, args[1:], stdout, stderr)
	}
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	var kubeconfig, kubeContext, target string
	fs.StringVar(&target, "target", "", "The NotificationTarget, as <namespace>/<name>. Required.")
	fs.StringVar(&kubeconfig, "kubeconfig", "", "Path to the kubeconfig file. Default: $KUBECONFIG, else ~/.kube/config, as for kubectl.")
	fs.StringVar(&kubeContext, "context", "", "The kubeconfig context to use. Default: its current context.")
	inv := cmd.bind(fs)
	fs.Usage = func() {
		_, _ = fmt.Fprintf(fs.Output(), "Usage: %s %s --target <namespace>/<name> [flags]\n\n%s\n\nFlags:\n", program, name, cmd.summary)
		fs.PrintDefaults()
	}
	if err := fs.Parse(args[1:]); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return exitOK
		}
		return exitUsage // the FlagSet has said what is wrong, and shown the usage
	}
	usageError := func(err error) int {
		_, _ = fmt.Fprintf(stderr, "error: %v\nRun '%s %s -h' for usage.\n", err, program, name)
		return exitUsage
	}
	if fs.NArg() > 0 {
		return usageError(fmt.Errorf("unexpected argument %q: flags only", fs.Arg(0)))
	}
	key, err := parseTarget(target)
	if err != nil {
		return usageError(err)
	}
	if err := inv.prepare(key); err != nil {
		return usageError(err)
	}
	c, err := connect(kubeconfig, kubeContext)
	if err != nil {
		_, _ = fmt.Fprintf(stderr, "error: %v\n", err)
		return exitError
	}
	// The Dynatrace client logs the API's warnings (a selector naming an
	// unknown management zone, say) through the context's logger.
	ctx = logr.NewContext(ctx, zap.New(zap.WriteTo(stderr), zap.ConsoleEncoder()))
	if err := inv.run(ctx, c, stdout); err != nil {
		_, _ = fmt.Fprintf(stderr, "error: %v\n", err)
		return exitError
	}
	return exitOK
}

// parseTarget reads a NotificationTarget reference written <namespace>/<name>.
func parseTarget(s string) (types.NamespacedName, error) {
	if s == "" {
		return types.NamespacedName{}, errors.New("--target is required: the NotificationTarget as <namespace>/<name>")
	}
	ns, name, ok := strings.Cut(s, "/")
	if !ok || ns == "" || name == "" || strings.Contains(name, "/") {
		return types.NamespacedName{}, fmt.Errorf("--target must be <namespace>/<name>, got %q", s)
	}
	if errs := validation.IsDNS1123Label(ns); len(errs) > 0 {
		return types.NamespacedName{}, fmt.Errorf("--target %q: namespace %q is not valid: %s", s, ns, strings.Join(errs, "; "))
	}
	if errs := validation.IsDNS1123Subdomain(name); len(errs) > 0 {
		return types.NamespacedName{}, fmt.Errorf("--target %q: name %q is not valid: %s", s, name, strings.Join(errs, "; "))
	}
	return types.NamespacedName{Namespace: ns, Name: name}, nil
}

// connect makes a client of the cluster the kubeconfig names, as kubectl
// finds it (see loadConfig).
func connect(kubeconfig, kubeContext string) (client.Client, error) {
	cfg, err := loadConfig(kubeconfig, kubeContext)
	if err != nil {
		return nil, err
	}
	c, err := client.New(cfg, client.Options{Scheme: scheme.New()})
	if err != nil {
		return nil, fmt.Errorf("connecting to the cluster: %w", err)
	}
	return c, nil
}

// loadConfig loads the client configuration as kubectl does: the file
// path names, else $KUBECONFIG, else ~/.kube/config, else the in-cluster
// configuration; kubeContext overrides the current context.
func loadConfig(path, kubeContext string) (*rest.Config, error) {
	rules := clientcmd.NewDefaultClientConfigLoadingRules()
	rules.ExplicitPath = path
	cfg, err := clientcmd.NewNonInteractiveDeferredLoadingClientConfig(rules, &clientcmd.ConfigOverrides{CurrentContext: kubeContext}).ClientConfig()
	if err != nil {
		return nil, fmt.Errorf("loading kubeconfig: %w", err)
	}
	return cfg, nil
}

// getTarget reads the NotificationTarget key.
func getTarget(ctx context.Context, c client.Reader, key types.NamespacedName) (*problemhookv1alpha1.NotificationTarget, error) {
	var target problemhookv1alpha1.NotificationTarget
	if err := c.Get(ctx, key, &target); err != nil {
		if apierrors.IsNotFound(err) {
			return nil, fmt.Errorf("NotificationTarget %s not found", key)
		}
		return nil, fmt.Errorf("reading NotificationTarget %s: %w", key, err)
	}
	return &target, nil
}
