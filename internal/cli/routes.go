package cli

import (
	"bufio"
	"bytes"
	"cmp"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/yaml"

	problemhookv1alpha1 "github.com/problemhook/problemhook/api/v1alpha1"
)

// RoutesTestOptions are the options of `routes test`.
type RoutesTestOptions struct {
	// Routes are the files, and directories of .yaml and .yml files, to
	// read IntegrationRoutes from.
	Routes []string
	// Payload is a notification's body, parsed as Format as the receiver
	// parses it, for a NotificationTarget named Target (default: the
	// usual name of the format's target).
	Payload string
	Format  problemhookv1alpha1.PayloadFormat
	Target  string
	// Event, instead of Payload, names a stored ProblemEvent to read from
	// the cluster.
	Event types.NamespacedName
	// Output is OutputTable (the default when empty) or OutputJSON.
	Output string
	// At is the time mutes are judged at and the notification is received
	// at; zero means now.
	At time.Time
	// AllowPrivilegedJobs is the manager's --allow-privileged-jobs.
	AllowPrivilegedJobs bool
}

// validate checks the options, before any file is read.
func (o *RoutesTestOptions) validate() error {
	if len(o.Routes) == 0 {
		return errors.New("--routes is required: a file or directory of IntegrationRoutes")
	}
	switch {
	case o.Payload == "" && o.Event.Name == "":
		return errors.New("--payload or --event is required")
	case o.Payload != "" && o.Event.Name != "":
		return errors.New("--payload and --event exclude each other")
	case o.Event.Name != "" && (o.Format != "" || o.Target != ""):
		return errors.New("--format and --target go with --payload: a stored event has its own")
	case o.Payload != "" && o.Format == "":
		return fmt.Errorf("--format is required with --payload: one of %s", strings.Join(formatNames(), ", "))
	}
	if o.Format != "" {
		f, ok := parseFormat(string(o.Format))
		if !ok {
			return fmt.Errorf("--format %q is not one of %s", o.Format, strings.Join(formatNames(), ", "))
		}
		o.Format = f
	}
	switch o.Output {
	case "", OutputTable, OutputJSON:
	default:
		return fmt.Errorf("unknown output format %q: use table or json", o.Output)
	}
	return nil
}

// formats are the payload formats, with the name their sample
// NotificationTarget has (config/samples), the default of --target.
var formats = []struct {
	format problemhookv1alpha1.PayloadFormat
	target string
}{
	{problemhookv1alpha1.FormatDynatrace, "dynatrace"},
	{problemhookv1alpha1.FormatGuance, "guance"},
	{problemhookv1alpha1.FormatDynatraceWorkflow, "dynatrace-workflow"},
}

func formatNames() []string {
	names := make([]string, 0, len(formats))
	for _, f := range formats {
		names = append(names, string(f.format))
	}
	return names
}

// parseFormat reads a payload format, in any case.
func parseFormat(s string) (problemhookv1alpha1.PayloadFormat, bool) {
	for _, f := range formats {
		if strings.EqualFold(s, string(f.format)) {
			return f.format, true
		}
	}
	return "", false
}

// defaultTarget is the name of the format's usual NotificationTarget.
func defaultTarget(format problemhookv1alpha1.PayloadFormat) string {
	for _, f := range formats {
		if f.format == format {
			return f.target
		}
	}
	return "dynatrace"
}

// stringList is a flag that may be repeated.
type stringList []string

func (l *stringList) String() string { return strings.Join(*l, ",") }

func (l *stringList) Set(v string) error {
	*l = append(*l, v)
	return nil
}

const routesTestUsage = `Usage: %[1]s routes test --routes FILE... (--payload FILE --format FORMAT [--target NAME] | --event NAMESPACE/NAME) [flags]

Reads IntegrationRoutes from files, as they would be applied, and says for
each whether it matches the notification and why not, whether it is
suspended or muted, and every run it would make with its templates
rendered. Secret values are never read: they show as <secret:NAME/KEY>.
With --payload it needs no cluster. It exits 1 when a route would not be
Ready, or fails for this notification.

Flags:
`

// routesMain runs `routes test`.
func routesMain(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("routes test", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		_, _ = fmt.Fprintf(fs.Output(), routesTestUsage, program)
		fs.PrintDefaults()
	}
	if len(args) == 0 || args[0] != "test" {
		if len(args) > 0 && (args[0] == "-h" || args[0] == "--help" || args[0] == "-help") {
			fs.Usage()
			return exitOK
		}
		_, _ = fmt.Fprintf(stderr, "error: %s routes takes one command, test\n", program)
		fs.Usage()
		return exitUsage
	}
	var (
		o                       RoutesTestOptions
		routes                  stringList
		format, event, at       string
		kubeconfig, kubeContext string
	)
	fs.Var(&routes, "routes", "A file of IntegrationRoutes (multi-document YAML; other kinds are ignored), or a directory of .yaml and .yml files, read recursively. Repeat for more.")
	fs.StringVar(&o.Payload, "payload", "", "A notification's body, as the sender posts it.")
	fs.StringVar(&format, "format", "", "The payload's format: "+strings.Join(formatNames(), ", ")+".")
	fs.StringVar(&o.Target, "target", "", "The name of the NotificationTarget the payload is posted to. Default: dynatrace, guance or dynatrace-workflow, after --format.")
	fs.StringVar(&event, "event", "", "A stored ProblemEvent, as <namespace>/<name>, instead of --payload: read from the cluster through the kubeconfig.")
	fs.StringVar(&o.Output, "o", OutputTable, "Output format: table or json.")
	fs.StringVar(&o.Output, "output", OutputTable, "Output format: table or json (same as -o).")
	fs.StringVar(&at, "at", "", "The time, RFC 3339, to judge muteTimeIntervals at and to receive the payload at. Default: now.")
	fs.BoolVar(&o.AllowPrivilegedJobs, "allow-privileged-jobs", false, "Accept Job templates that ask for the node, as the manager does with --allow-privileged-jobs.")
	fs.StringVar(&kubeconfig, "kubeconfig", "", "With --event: path to the kubeconfig file. Default: $KUBECONFIG, else ~/.kube/config, as for kubectl.")
	fs.StringVar(&kubeContext, "context", "", "With --event: the kubeconfig context to use. Default: its current context.")
	if err := fs.Parse(args[1:]); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return exitOK
		}
		return exitUsage
	}
	usageError := func(err error) int {
		_, _ = fmt.Fprintf(stderr, "error: %v\nRun '%s routes test -h' for usage.\n", err, program)
		return exitUsage
	}
	if fs.NArg() > 0 {
		return usageError(fmt.Errorf("unexpected argument %q: flags only (repeat --routes for more files)", fs.Arg(0)))
	}
	o.Routes, o.Format = routes, problemhookv1alpha1.PayloadFormat(format)
	if at != "" {
		t, err := time.Parse(time.RFC3339, at)
		if err != nil {
			return usageError(fmt.Errorf("--at %q is not an RFC 3339 time, e.g. 2026-11-21T10:00:00Z", at))
		}
		o.At = t
	}
	if event != "" {
		key, err := parseObjectKey("--event", event)
		if err != nil {
			return usageError(err)
		}
		o.Event = key
	}
	if err := o.validate(); err != nil {
		return usageError(err)
	}
	// Only a stored event needs the cluster: a payload is tested offline,
	// without so much as reading a kubeconfig.
	var c client.Reader
	if o.Event.Name != "" {
		var err error
		if c, err = connect(kubeconfig, kubeContext); err != nil {
			_, _ = fmt.Fprintf(stderr, "error: %v\n", err)
			return exitError
		}
	}
	if err := RoutesTest(ctx, c, o, stdout); err != nil {
		_, _ = fmt.Fprintf(stderr, "error: %v\n", err)
		return exitError
	}
	return exitOK
}

// parseObjectKey reads a reference written <namespace>/<name>.
func parseObjectKey(flagName, s string) (types.NamespacedName, error) {
	ns, name, ok := strings.Cut(s, "/")
	if !ok || ns == "" || name == "" || strings.Contains(name, "/") {
		return types.NamespacedName{}, fmt.Errorf("%s must be <namespace>/<name>, got %q", flagName, s)
	}
	return types.NamespacedName{Namespace: ns, Name: name}, nil
}

// loadedRoute is an IntegrationRoute and the file it was read from.
type loadedRoute struct {
	route problemhookv1alpha1.IntegrationRoute
	file  string
}

// readRoutes reads the IntegrationRoutes of files and directories, in
// the namespace "default" when they name none, sorted by name (then
// namespace). A route named twice is an error, as it would be one object.
func readRoutes(paths []string) ([]loadedRoute, error) {
	var files []string
	for _, p := range paths {
		info, err := os.Stat(p)
		if err != nil {
			return nil, fmt.Errorf("reading routes: %w", err)
		}
		if !info.IsDir() {
			files = append(files, p)
			continue
		}
		// A directory holds manifests, maybe beside payloads and other
		// JSON: only its YAML files are read.
		err = filepath.WalkDir(p, func(path string, d fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			if ext := filepath.Ext(path); !d.IsDir() && (ext == ".yaml" || ext == ".yml") {
				files = append(files, path)
			}
			return nil
		})
		if err != nil {
			return nil, fmt.Errorf("reading routes: %w", err)
		}
	}
	var out []loadedRoute
	seen := map[types.NamespacedName]string{}
	for _, file := range files {
		routes, err := readRouteFile(file)
		if err != nil {
			return nil, err
		}
		for _, ir := range routes {
			key := types.NamespacedName{Namespace: ir.Namespace, Name: ir.Name}
			if other, ok := seen[key]; ok {
				return nil, fmt.Errorf("IntegrationRoute %s is in both %s and %s", key, other, file)
			}
			seen[key] = file
			out = append(out, loadedRoute{route: ir, file: file})
		}
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("no IntegrationRoute in %s", strings.Join(paths, ", "))
	}
	slices.SortFunc(out, func(a, b loadedRoute) int {
		return cmp.Or(strings.Compare(a.route.Name, b.route.Name), strings.Compare(a.route.Namespace, b.route.Namespace))
	})
	return out, nil
}

// readRouteFile reads the IntegrationRoutes of a YAML (or JSON) file of
// one or more documents. Documents of other kinds are skipped. A route is
// decoded strictly, as kubectl apply asks of the API server: a misspelt
// field is an error, not a criterion silently dropped.
func readRouteFile(file string) ([]problemhookv1alpha1.IntegrationRoute, error) {
	data, err := os.ReadFile(file)
	if err != nil {
		return nil, fmt.Errorf("reading routes: %w", err)
	}
	var out []problemhookv1alpha1.IntegrationRoute
	r := utilyaml.NewYAMLReader(bufio.NewReader(bytes.NewReader(data)))
	for doc := 1; ; doc++ {
		raw, err := r.Read()
		if errors.Is(err, io.EOF) {
			return out, nil
		}
		if err != nil {
			return nil, fmt.Errorf("%s: document %d: %w", file, doc, err)
		}
		var tm metav1.TypeMeta
		if err := yaml.Unmarshal(raw, &tm); err != nil {
			return nil, fmt.Errorf("%s: document %d: %w", file, doc, err)
		}
		if tm.Kind != "IntegrationRoute" || tm.GroupVersionKind().Group != problemhookv1alpha1.GroupVersion.Group {
			continue // a Secret, a NotificationTarget, an empty document
		}
		if tm.APIVersion != problemhookv1alpha1.GroupVersion.String() {
			return nil, fmt.Errorf("%s: document %d: apiVersion %s: this manager reads %s", file, doc, tm.APIVersion, problemhookv1alpha1.GroupVersion)
		}
		var ir problemhookv1alpha1.IntegrationRoute
		if err := yaml.UnmarshalStrict(raw, &ir); err != nil {
			return nil, fmt.Errorf("%s: document %d: IntegrationRoute: %w", file, doc, err)
		}
		if ir.Name == "" {
			return nil, fmt.Errorf("%s: document %d: IntegrationRoute has no metadata.name", file, doc)
		}
		if ir.Namespace == "" {
			ir.Namespace = metav1.NamespaceDefault
		}
		out = append(out, ir)
	}
}
