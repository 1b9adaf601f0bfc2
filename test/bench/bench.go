// Package bench measures problemhook against the limit of its kind: every
// notification is stored before it is acknowledged, so no receiver can
// acknowledge faster than the API server creates objects. Main (what
// `make bench` runs, through hack/bench) starts an embedded control plane
// and the manager as a process, measures the raw create rate and then the
// receiver against it in the same run, and prints one table, also written
// as JSON under bin/bench/.
package bench

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
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/go-logr/logr"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"
	ctrllog "sigs.k8s.io/controller-runtime/pkg/log"

	problemhookv1alpha1 "github.com/problemhook/problemhook/api/v1alpha1"
	"github.com/problemhook/problemhook/internal/scheme"
	"github.com/problemhook/problemhook/test/harness/controlplane"
	"github.com/problemhook/problemhook/test/harness/managerproc"
)

// The manager's client settings (main.go's defaults): the raw creates use
// the same, so that the limit is the one the receiver works under.
const (
	managerQPS   = 500
	managerBurst = 1000
)

// options are the benchmark's settings.
type options struct {
	root, out, manager string
	// n is how many notifications (or objects) each throughput cell sends.
	n int
	// duration is how long each fixed-rate latency run offers load.
	duration time.Duration
	// scale are the stored-event counts of the scale phase.
	scale []int
	quick bool
	// shared runs every phase on one control plane, and compact compacts
	// and defragments its etcd before each phase: to look for what one
	// phase leaves to the next.
	shared, compact bool
	// phases are the phases to run, by name; all when empty.
	phases []string
}

// Main runs the benchmark with the command-line flags in args (without the
// program's name) until it is done or ctx ends: the table goes to stdout,
// the progress to stderr. It returns the exit code: 0 when every phase
// ran, 1 when one failed, 2 when the flags are wrong.
func Main(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	ctrllog.SetLogger(logr.Discard())
	o := options{root: controlplane.RepoRoot()}
	flags := flag.NewFlagSet("bench", flag.ContinueOnError)
	flags.SetOutput(stderr)
	flags.StringVar(&o.out, "out", filepath.Join(o.root, "bin", "bench"), "Directory for results.json and the profiles.")
	flags.StringVar(&o.manager, "manager", filepath.Join(o.root, "bin", "manager"), "The manager binary to run.")
	flags.IntVar(&o.n, "n", 1000, "Notifications (and raw creates) per throughput cell.")
	flags.DurationVar(&o.duration, "duration", 5*time.Second, "How long each fixed-rate latency run offers load.")
	flags.BoolVar(&o.shared, "shared", false, "Run every phase on one control plane, not each on its own: each then meets what the phases before it left.")
	flags.BoolVar(&o.compact, "compact", false, "Compact etcd's history and defragment it before each phase (with -shared).")
	flags.BoolVar(&o.quick, "quick", false, "Fewer notifications and events: a smoke run, not figures to report.")
	phases := flags.String("phases", "", "Comma-separated phases to run (throughput, latency, jobs, scale); all when empty. A run of some phases is for finding a cause, not figures to report.")
	if err := flags.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	if *phases != "" {
		o.phases = strings.Split(*phases, ",")
	}
	o.scale = []int{1000, 10000}
	if o.quick {
		o.n, o.duration, o.scale = 200, 2*time.Second, []int{200, 1000}
	}
	if err := run(ctx, o, stdout, stderr); err != nil {
		fmt.Fprintln(stderr, "bench:", err)
		return 1
	}
	return 0
}

// bench is one run: the control plane, the manager, and what was measured.
type bench struct {
	o   options
	cfg *rest.Config
	k8s client.Client
	// api is an HTTP client for the API server's own endpoints: /metrics
	// and /debug/pprof.
	api *http.Client
	mgr *managerproc.Process
	env *controlplane.Environment
	// etcdURL is where etcd takes its clients.
	etcdURL string
	// standby is set while the bench holds the leader Lease, so that the
	// manager runs its receiver only.
	standby bool
	// stopped is set while the manager is stopped for a pipeline cell.
	stopped    bool
	kubeconfig string
	results    Results
	// out gets the table, log the progress.
	out, log io.Writer
}

// run is one run of the phases o names.
func run(ctx context.Context, o options, stdout, stderr io.Writer) error {
	if err := os.MkdirAll(o.out, 0o755); err != nil {
		return err
	}
	b := &bench{o: o, out: stdout, log: stderr}
	b.results.Machine = machine()
	phases := []phase{
		{"throughput", b.throughput},
		{"latency", b.latency},
		{"jobs", b.eventToJob},
		{"scale", b.scaleUp},
	}
	for _, want := range o.phases {
		if !slices.ContainsFunc(phases, func(p phase) bool { return p.name == want }) {
			return fmt.Errorf("no phase %q", want)
		}
	}
	defer b.stopControlPlane()
	for _, phase := range phases {
		if len(o.phases) > 0 && !slices.Contains(o.phases, phase.name) {
			continue
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		// Each phase starts on a control plane of its own, unless -shared:
		// what a phase leaves in the API server (its watch cache, grown
		// to hold the phase's events) slows every phase after it.
		if b.env == nil || !o.shared {
			b.stopControlPlane()
			if err := b.startControlPlane(); err != nil {
				return err
			}
		}
		// The throughput phase starts the manager, after its raw creates;
		// without it, the manager starts as the leader.
		if b.mgr == nil && phase.name != "throughput" {
			if err := b.startManager(ctx); err != nil {
				return err
			}
		}
		if o.compact {
			if err := b.compact(ctx); err != nil {
				return fmt.Errorf("compacting etcd before %s: %w", phase.name, err)
			}
		}
		b.logf("Phase: %s", phase.name)
		if err := phase.run(ctx); err != nil {
			return fmt.Errorf("%s: %w", phase.name, err)
		}
		state, err := b.storage(ctx, phase.name)
		if err != nil {
			return fmt.Errorf("reading the API server's state after %s: %w", phase.name, err)
		}
		b.results.Storage = append(b.results.Storage, state)
		b.logf("After %s: etcd at revision %d, %.0f MiB; the API server's heap %.0f MiB", phase.name, state.Revision, state.DBMiB, state.APIServerHeapMiB)
		heap := filepath.Join(o.out, "after-"+phase.name+"-apiserver.heap.pprof")
		if err := writeProfile(b.api, strings.TrimSuffix(b.cfg.Host, "/")+"/debug/pprof/heap", heap); err != nil {
			return err
		}
	}
	b.results.print(b.out)
	data, err := json.MarshalIndent(b.results, "", "  ")
	if err != nil {
		return err
	}
	path := filepath.Join(o.out, "results.json")
	if err := os.WriteFile(path, data, 0o644); err != nil {
		return err
	}
	fmt.Fprintf(b.out, "\nWritten to %s; profiles in %s\n", path, o.out)
	return nil
}

// startControlPlane starts a control plane, with no manager.
func (b *bench) startControlPlane() error {
	b.logf("Starting the embedded control plane")
	env, err := controlplane.Start(b.o.root)
	if err != nil {
		return err
	}
	b.env, b.mgr, b.standby = env, nil, false
	b.cfg, b.etcdURL = rest.CopyConfig(env.Config), env.EtcdURL()
	b.cfg.QPS, b.cfg.Burst = managerQPS, managerBurst
	if b.k8s, err = client.New(b.cfg, client.Options{Scheme: scheme.New()}); err != nil {
		return err
	}
	if b.api, err = rest.HTTPClientFor(b.cfg); err != nil {
		return err
	}
	b.kubeconfig = filepath.Join(b.o.out, "kubeconfig")
	return env.WriteKubeconfig(b.kubeconfig)
}

// stopControlPlane stops the manager and the control plane, if they run.
func (b *bench) stopControlPlane() {
	if b.mgr != nil {
		b.mgr.Stop()
		b.mgr = nil
	}
	if b.env != nil {
		_ = b.env.Stop()
		b.env = nil
	}
}

// phase is one part of the run.
type phase struct {
	name string
	run  func(context.Context) error
}

func (b *bench) logf(format string, args ...any) {
	fmt.Fprintf(b.log, "%s "+format+"\n", append([]any{time.Now().Format("15:04:05")}, args...)...)
}

// namespace creates a namespace for one cell, with a target of the given
// name that takes basic auth, and waits until the manager's receiver takes
// its notifications.
func (b *bench) namespace(ctx context.Context, prefix string) (string, error) {
	return b.limitedNamespace(ctx, prefix, unlimited)
}

// limitedNamespace is namespace with a target whose rate limit is limit.
func (b *bench) limitedNamespace(ctx context.Context, prefix string, limit *problemhookv1alpha1.RateLimit) (string, error) {
	name, err := b.createNamespace(ctx, prefix)
	if err != nil {
		return "", err
	}
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name}}
	secret := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: ns.Name, Name: "auth"},
		Data: map[string][]byte{"username": []byte(benchUser), "password": []byte(benchPassword)}}
	target := &problemhookv1alpha1.NotificationTarget{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns.Name, Name: "dynatrace"},
		Spec: problemhookv1alpha1.NotificationTargetSpec{Format: problemhookv1alpha1.FormatDynatrace, RateLimit: limit,
			Auth: problemhookv1alpha1.WebhookAuth{Basic: &problemhookv1alpha1.BasicAuth{SecretRef: problemhookv1alpha1.LocalObjectReference{Name: "auth"}}}},
	}
	for _, obj := range []client.Object{secret, target} {
		if err := b.k8s.Create(ctx, obj); err != nil {
			return "", err
		}
	}
	if b.standby {
		// No replica leads, so the bench says the target is Ready, as the
		// leader's target controller would have.
		meta.SetStatusCondition(&target.Status.Conditions, metav1.Condition{
			Type: problemhookv1alpha1.ConditionReady, Status: metav1.ConditionTrue, ObservedGeneration: target.Generation,
			Reason: "Bench", Message: "Set by the benchmark, which holds the leader Lease",
		})
		if err := b.k8s.Status().Update(ctx, target); err != nil {
			return "", err
		}
	}
	// Ready, and in the receiver's cache: a test notification is answered
	// (and ignored) only then.
	deadline := time.Now().Add(30 * time.Second)
	for {
		status, err := b.post(ctx, http.DefaultClient, ns.Name, dynatraceTestBody)
		if err == nil && (status == http.StatusAccepted || status == http.StatusOK) {
			return ns.Name, nil
		}
		if time.Now().After(deadline) {
			if err != nil {
				return "", fmt.Errorf("target %s/dynatrace not taking notifications after 30s: %w", ns.Name, err)
			}
			return "", fmt.Errorf("target %s/dynatrace not taking notifications after 30s: last answer %d", ns.Name, status)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

const (
	benchUser     = "dynatrace"
	benchPassword = "bench-password"
	// dynatraceTestBody is Dynatrace's test notification: it tells when a
	// target is served, and the target's default policy records it.
	dynatraceTestBody = `{"State":"OPEN","ProblemID":"999","PID":"99999","ProblemTitle":"Dynatrace problem notification test run"}`
)

// post sends body to the target of ns and returns the answer's status.
func (b *bench) post(ctx context.Context, c *http.Client, ns string, body string) (int, error) {
	r, err := b.send(ctx, c, ns, body)
	return r.status, err
}

// reply is how the receiver answered one notification.
type reply struct {
	status int
	// retryAfter is the answer's Retry-After, zero when it has none.
	retryAfter time.Duration
}

// send sends body to the target of ns and returns the answer.
func (b *bench) send(ctx context.Context, c *http.Client, ns string, body string) (reply, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, "http://"+b.mgr.ReceiverAddr+problemhookv1alpha1.WebhookPath(ns, "dynatrace"), strings.NewReader(body))
	if err != nil {
		return reply{}, err
	}
	req.SetBasicAuth(benchUser, benchPassword)
	req.Header.Set("Content-Type", "application/json")
	resp, err := c.Do(req)
	if err != nil {
		return reply{}, err
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	_ = resp.Body.Close()
	r := reply{status: resp.StatusCode}
	if s, err := strconv.Atoi(resp.Header.Get("Retry-After")); err == nil && s >= 0 {
		r.retryAfter = time.Duration(s) * time.Second
	}
	return r, nil
}

// createNamespace creates a namespace named prefix-<random>.
func (b *bench) createNamespace(ctx context.Context, prefix string) (string, error) {
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{GenerateName: prefix + "-"}}
	if err := b.k8s.Create(ctx, ns); err != nil {
		return "", err
	}
	return ns.Name, nil
}

// unlimited is the highest rate limit a target can have: the bench measures
// what the receiver and the API server take, not the rate limit.
var unlimited = &problemhookv1alpha1.RateLimit{PerSecond: 10000, Burst: 100000}

// defaultLimit is the rate limit a target gets when its spec names none.
var defaultLimit = &problemhookv1alpha1.RateLimit{
	PerSecond: problemhookv1alpha1.DefaultRateLimitPerSecond, Burst: problemhookv1alpha1.DefaultRateLimitBurst}
