//go:build linux

// Package drills holds problemhook's fault drills, which `make drills` runs
// through hack/drills. Main starts etcd, kube-apiserver and the manager as
// separate processes, stands in for Dynatrace, Twilio and an HTTP endpoint
// with servers of its own, and then breaks things while notifications
// arrive: the API server is killed, the manager is killed, notifications
// come many times and out of order, Dynatrace fails, two replicas receive
// the same notifications, a Secret is rotated. Each drill prints one PASS
// or FAIL line with the counts behind it; after them, every fuzz target of the
// module is run, and every log, Event and
// stored object is searched for the secrets the drills used.
//
// One file per group of drills: restarts.go (processes killed),
// duplicates.go (the same notification many times, to several replicas),
// faults.go (Dynatrace failing), rotation.go (a Secret rotated),
// bounds.go (template bombs, a flood at one target), memory.go (what
// once cost hundreds of MiB, all at once), fuzz.go (every fuzz
// target of the module) and leaks.go (the leak search); sender.go sends as Dynatrace
// would and stands in for the HTTP endpoint, checks.go holds what the
// drills check, jobcontroller.go plays the Job controller of a cluster
// with no node.
package drills

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/go-logr/logr"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	"sigs.k8s.io/controller-runtime/pkg/client"
	ctrllog "sigs.k8s.io/controller-runtime/pkg/log"

	problemhookv1alpha1 "github.com/problemhook/problemhook/api/v1alpha1"
	"github.com/problemhook/problemhook/internal/dynatrace"
	"github.com/problemhook/problemhook/internal/dynatrace/dynatracetest"
	"github.com/problemhook/problemhook/internal/notify/notifytest"
	"github.com/problemhook/problemhook/internal/scheme"
	"github.com/problemhook/problemhook/test/harness/controlplane"
	"github.com/problemhook/problemhook/test/harness/fixtures"
	"github.com/problemhook/problemhook/test/harness/managerproc"
	"github.com/problemhook/problemhook/test/harness/manifests"
	"github.com/problemhook/problemhook/test/harness/node"
)

// The secrets the drills use: none of them may appear in a log, an Event
// or a stored object (but for the Secrets that hold them).
const (
	dtToken        = "dt0c01.DRILLTOKEN.SECRETPART0123456789"
	webhookUser    = "dynatrace"
	oldPassword    = "drill-old-password-7f3a"
	newPassword    = "drill-new-password-91c2"
	twilioSID      = "AC0000000000000000000000000000d1e1"
	twilioToken    = "drill-twilio-auth-token-55aa"
	phoneNumber    = "+4915112345678"
	httpAuthHeader = "Bearer drill-http-secret-c0ffee"
	managerNS      = "problemhook-system"
)

// drills holds what every drill shares.
type drills struct {
	out, dir   string
	cfg        *rest.Config
	kube       client.Client
	cs         *kubernetes.Clientset
	mgr        *managerproc.Process
	managerBin string
	kubeconfig string
	dt         *dynatracetest.Server
	twilio     *notifytest.Twilio
	twilioURL  string
	hook       *hookServer
	// stdout gets the drills' lines, stderr what went wrong around them.
	stdout, stderr io.Writer
}

// result is one drill's line.
type result struct {
	Name     string        `json:"name"`
	Pass     bool          `json:"pass"`
	Counts   string        `json:"counts"`
	Failures []string      `json:"failures,omitempty"`
	Took     time.Duration `json:"took"`
}

// Main runs the drills with the command-line flags in args (without the
// program's name) until they are done or ctx ends: a line per drill goes
// to stdout, what went wrong around them to stderr, and the logs and
// results.json to -out. It returns the exit code: 0 when every drill
// passed, 1 when one failed or could not run, 2 when the flags are wrong.
func Main(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	ctrllog.SetLogger(logr.Discard())
	rest.SetDefaultWarningHandler(rest.NoWarnings{})
	root := controlplane.RepoRoot()
	var (
		d        = drills{stdout: stdout, stderr: stderr}
		only     string
		fuzzTime string
	)
	flags := flag.NewFlagSet("drills", flag.ContinueOnError)
	flags.SetOutput(stderr)
	flags.StringVar(&d.out, "out", filepath.Join(root, "bin", "drills"), "Where the logs and results.json go.")
	flags.StringVar(&d.managerBin, "manager", filepath.Join(root, "bin", "manager"), "The manager binary.")
	flags.StringVar(&only, "only", "", "Run only the drills whose names contain this.")
	// A count, not a duration: a duration-bounded fuzz run can fail with
	// "context deadline exceeded" on a loaded machine (golang/go#75804).
	flags.StringVar(&fuzzTime, "fuzztime", "50000x", "How much each fuzz target runs: a count of executions (50000x) or a duration.")
	if err := flags.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	code, err := d.run(ctx, root, only, fuzzTime)
	if err != nil {
		fmt.Fprintln(stderr, "drills:", err)
		code = 1
	}
	return code
}

// run sets up what the drills share, runs those whose names contain only
// (and the leak search, always), and prints a line for each.
func (d *drills) run(ctx context.Context, root, only, fuzzTime string) (int, error) {
	d.dir = filepath.Join(d.out, "control-plane")
	// A control plane left by a run that was killed outright goes first.
	if err := node.Down(ctx, d.dir, io.Discard); err != nil {
		return 1, err
	}
	if err := os.RemoveAll(d.out); err != nil {
		return 1, err
	}
	if err := os.MkdirAll(d.out, 0o755); err != nil {
		return 1, err
	}
	fmt.Fprintln(d.stdout, "Starting etcd and kube-apiserver")
	if err := node.Up(ctx, node.Options{Dir: d.dir, Assets: os.Getenv("KUBEBUILDER_ASSETS"), ControlPlaneOnly: true, Log: io.Discard}); err != nil {
		return 1, err
	}
	defer func() {
		if err := node.Down(context.WithoutCancel(ctx), d.dir, io.Discard); err != nil {
			fmt.Fprintln(d.stderr, "drills: stopping the control plane:", err)
		}
	}()
	d.kubeconfig = node.AdminKubeconfig(d.dir)
	var err error
	if d.cfg, err = clientcmd.BuildConfigFromFlags("", d.kubeconfig); err != nil {
		return 1, err
	}
	d.cfg.QPS, d.cfg.Burst = 500, 1000
	if d.kube, err = client.New(d.cfg, client.Options{Scheme: scheme.New()}); err != nil {
		return 1, err
	}
	if d.cs, err = kubernetes.NewForConfig(d.cfg); err != nil {
		return 1, err
	}
	if err := manifests.InstallAPI(ctx, d.cfg, root); err != nil {
		return 1, err
	}
	if err := d.kube.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: managerNS}}); err != nil {
		return 1, err
	}

	d.dt = dynatracetest.NewServer(dynatracetest.ServerOptions{})
	defer d.dt.Close()
	d.dt.AddToken(dtToken, dynatracetest.ScopeRead, dynatracetest.ScopeWrite)
	d.twilio = notifytest.NewTwilio(twilioSID, twilioToken)
	defer d.twilio.Close()
	d.twilioURL = d.twilio.URL
	d.hook = newHookServer()
	defer d.hook.Close()

	d.mgr, err = d.newManager("manager.log")
	if err != nil {
		return 1, err
	}
	if err := d.mgr.Start(ctx); err != nil {
		return 1, err
	}
	defer func() { d.mgr.Stop() }()

	all := []struct {
		name string
		run  func(context.Context) result
	}{
		{"api-server-down", d.apiServerDown},
		{"manager-killed", d.managerKilled},
		{"duplicates-and-reordering", d.duplicatesAndReordering},
		{"dynatrace-faults", d.dynatraceFaults},
		{"two-receivers", d.twoReceivers},
		{"secret-rotated", d.secretRotated},
		{"template-bombs", d.templateBombs},
		{"flood", d.flood},
		{"thousand-entities", d.thousandEntities},
		{"memory", d.memory},
		{"fuzz", func(ctx context.Context) result { return fuzzTargets(ctx, root, fuzzTime) }},
		{"secrets-never-leak", d.secretsNeverLeak},
	}
	var results []result
	for _, dr := range all {
		if only != "" && !strings.Contains(dr.name, only) && dr.name != "secrets-never-leak" {
			continue
		}
		if ctx.Err() != nil {
			break
		}
		start := time.Now()
		r := dr.run(ctx)
		r.Name, r.Took = dr.name, time.Since(start).Round(100*time.Millisecond)
		r.Pass = len(r.Failures) == 0
		verdict := "PASS"
		if !r.Pass {
			verdict = "FAIL"
		}
		fmt.Fprintf(d.stdout, "%s %-26s %6s  %s\n", verdict, r.Name, r.Took, r.Counts)
		for _, f := range r.Failures {
			fmt.Fprintf(d.stdout, "     - %s\n", f)
		}
		results = append(results, r)
	}
	passed := 0
	for _, r := range results {
		if r.Pass {
			passed++
		}
	}
	b, _ := json.MarshalIndent(results, "", "  ")
	if err := os.WriteFile(filepath.Join(d.out, "results.json"), b, 0o644); err != nil {
		return 1, err
	}
	fmt.Fprintf(d.stdout, "drills: %d passed, %d failed\n", passed, len(results)-passed)
	if passed != len(results) || ctx.Err() != nil {
		fmt.Fprintf(d.stdout, "The manager's logs and the control plane's are in %s\n", d.out)
		return 1, nil
	}
	return 0, nil
}

// newManager prepares a manager process whose output goes to log under out.
func (d *drills) newManager(log string, args ...string) (*managerproc.Process, error) {
	return managerproc.New(d.managerBin, d.kubeconfig, filepath.Join(d.out, log), args...)
}

// namespace creates a namespace for one drill, with the Secrets of the
// routes' Twilio and HTTP actions and the Dynatrace target of the fixtures
// (whose basic-auth password is oldPassword, and which uses the fake
// Dynatrace's API if dynatraceAPI), and the objects of manifest (YAML,
// with %[1]s standing for the fake Dynatrace's URL, %[2]s for the fake
// Twilio's, %[3]s for the HTTP endpoint's) in it.
func (d *drills) namespace(ctx context.Context, name string, dynatraceAPI bool, manifest string) (string, error) {
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{GenerateName: name + "-"}}
	if err := d.kube.Create(ctx, ns); err != nil {
		return "", err
	}
	target := fixtures.DynatraceTarget{User: webhookUser, Password: oldPassword, Token: dtToken}
	if dynatraceAPI {
		target.DynatraceURL = d.dt.URL()
	}
	base := fmt.Sprintf(`
apiVersion: v1
kind: Secret
metadata: {name: twilio}
stringData: {accountSID: %q, authToken: %q}
---
apiVersion: v1
kind: Secret
metadata: {name: http-headers}
stringData: {Authorization: %q}
---
`, twilioSID, twilioToken, httpAuthHeader) + target.Manifest()
	if manifest != "" {
		base += "\n---\n" + fmt.Sprintf(manifest, d.dt.URL(), d.twilioURL, d.hook.URL)
	}
	objs, err := manifests.Decode([]byte(base))
	if err != nil {
		return "", err
	}
	for _, o := range objs {
		o.SetNamespace(ns.Name)
		if err := d.kube.Create(ctx, o); err != nil {
			return "", fmt.Errorf("creating %s %s: %w", o.GetKind(), o.GetName(), err)
		}
	}
	return ns.Name, d.waitReady(ctx, ns.Name, objs)
}

// waitReady waits until the target and routes among objs are Ready and
// the receiver takes the target's notifications.
func (d *drills) waitReady(ctx context.Context, ns string, objs []*unstructured.Unstructured) error {
	deadline := time.Now().Add(30 * time.Second)
	for _, o := range objs {
		if o.GetAPIVersion() != problemhookv1alpha1.GroupVersion.String() {
			continue
		}
		for {
			u := &unstructured.Unstructured{}
			u.SetGroupVersionKind(o.GroupVersionKind())
			err := d.kube.Get(ctx, client.ObjectKey{Namespace: ns, Name: o.GetName()}, u)
			if err == nil && readyTrue(u) {
				break
			}
			if time.Now().After(deadline) {
				if err != nil {
					return fmt.Errorf("%s %s/%s not Ready after 30s: %w", o.GetKind(), ns, o.GetName(), err)
				}
				return fmt.Errorf("%s %s/%s not Ready after 30s: status %v", o.GetKind(), ns, o.GetName(), u.Object["status"])
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
	s := d.sender(d.mgr, ns)
	for {
		o := s.post(ctx, testNotification)
		if o.status == http.StatusOK || o.status == http.StatusAccepted {
			return nil
		}
		if time.Now().After(deadline) {
			if o.err != nil {
				return fmt.Errorf("target %s/dynatrace not taking notifications after 30s: %w", ns, o.err)
			}
			return fmt.Errorf("target %s/dynatrace not taking notifications after 30s: last answer %d %s", ns, o.status, o.result)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// readyTrue reports whether the object u has the condition Ready=True.
func readyTrue(u *unstructured.Unstructured) bool {
	conds, _, _ := unstructured.NestedSlice(u.Object, "status", "conditions")
	for _, c := range conds {
		m, _ := c.(map[string]any)
		if m["type"] == problemhookv1alpha1.ConditionReady && m["status"] == "True" {
			return true
		}
	}
	return false
}

// webhookURL is where the receiver of m takes the notifications of the
// target of ns.
func webhookURL(m *managerproc.Process, ns string) string {
	return "http://" + m.ReceiverAddr + problemhookv1alpha1.WebhookPath(ns, fixtures.TargetName)
}

// sender posts to the target of ns through the receiver of m, with the
// password the drills' targets start with.
func (d *drills) sender(m *managerproc.Process, ns string) sender {
	return sender{url: webhookURL(m, ns), password: oldPassword}
}

// addProblems gives the fake Dynatrace the problems of ns, so that their
// events are enriched and commented on.
func (d *drills) addProblems(ns []notification) {
	for _, n := range ns {
		d.dt.AddProblem(dynatrace.Problem{
			ProblemID: n.PID, DisplayID: "P-" + n.Display, Title: "Drill problem " + n.Display, Status: "OPEN",
			SeverityLevel: "AVAILABILITY", ImpactLevel: "INFRASTRUCTURE", StartTime: time.Now().UnixMilli(), EndTime: -1,
		})
	}
}
