package controlplane

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/onsi/gomega"
	"go.uber.org/zap/zapcore"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"
	"sigs.k8s.io/controller-runtime/pkg/metrics"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"

	"github.com/problemhook/problemhook/internal/scheme"
)

// TestEnv is what a test package's TestMain gets from RunTests.
type TestEnv struct {
	*Environment
	// Client talks to the API server directly, never through a cache.
	Client client.Client
}

// NewManager returns a manager for the control plane, with problemhook's
// scheme and no metrics listener, changed by opts, for setup to add
// reconcilers to. RunTests starts it.
func (e *TestEnv) NewManager(opts ...func(*ctrl.Options)) (ctrl.Manager, error) {
	o := ctrl.Options{Scheme: scheme.New(), Metrics: metricsserver.Options{BindAddress: "0"}}
	for _, opt := range opts {
		opt(&o)
	}
	return ctrl.NewManager(e.Config, o)
}

// RunTests is a test package's TestMain: it starts a control plane, lets
// setup prepare the package (returning a manager to run, or nil), runs the
// tests, stops everything and returns the exit code. Logs show errors only,
// unless TEST_VERBOSE is set: the logs of a passing run are noise.
func RunTests(m *testing.M, setup func(ctx context.Context, env *TestEnv) (ctrl.Manager, error)) int {
	level := zapcore.ErrorLevel
	if os.Getenv("TEST_VERBOSE") != "" {
		level = zapcore.DebugLevel
	}
	ctrl.SetLogger(zap.New(zap.WriteTo(os.Stderr), zap.Level(level)))
	// Reconciles on a shared two-core machine take longer than gomega's
	// default second now and then; a test that waits for one waits longer.
	gomega.SetDefaultEventuallyTimeout(20 * time.Second)
	gomega.SetDefaultEventuallyPollingInterval(50 * time.Millisecond)

	env, err := Start(RepoRoot())
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer func() { _ = env.Stop() }()
	c, err := client.New(env.Config, client.Options{Scheme: scheme.New()})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	mgr, err := setup(ctx, &TestEnv{Environment: env, Client: c})
	if err != nil {
		fmt.Fprintln(os.Stderr, "setting up the tests:", err)
		return 1
	}
	if mgr != nil {
		go func() {
			if err := mgr.Start(ctx); err != nil {
				fmt.Fprintln(os.Stderr, "manager:", err)
			}
		}()
	}
	return m.Run()
}

// NewNamespace creates a namespace named after prefix for one test.
func NewNamespace(t *testing.T, c client.Client, prefix string) string {
	t.Helper()
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{GenerateName: prefix + "-"}}
	if err := c.Create(context.Background(), ns); err != nil {
		t.Fatalf("creating a namespace: %v", err)
	}
	return ns.Name
}

// BuildManager builds the manager binary for a test and returns its path.
func BuildManager(t *testing.T) string {
	t.Helper()
	manager := filepath.Join(t.TempDir(), "manager")
	build := exec.Command("go", "build", "-o", manager, ".")
	build.Dir = RepoRoot()
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("building the manager: %v\n%s", err, out)
	}
	return manager
}

// FreeAddr returns a 127.0.0.1 address with a port free at the time of the call.
func FreeAddr(t *testing.T) string {
	t.Helper()
	addr, err := FreeLoopbackAddr()
	if err != nil {
		t.Fatal(err)
	}
	return addr
}

// MetricSum sums the values of the counters or gauges named name in
// controller-runtime's metrics registry, over the series that have the
// given labels.
func MetricSum(t *testing.T, name string, labels map[string]string) float64 {
	t.Helper()
	families, err := metrics.Registry.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var sum float64
	for _, f := range families {
		if f.GetName() != name {
			continue
		}
	series:
		for _, m := range f.GetMetric() {
			got := map[string]string{}
			for _, l := range m.GetLabel() {
				got[l.GetName()] = l.GetValue()
			}
			for k, v := range labels {
				if got[k] != v {
					continue series
				}
			}
			sum += m.GetCounter().GetValue() + m.GetGauge().GetValue()
		}
	}
	return sum
}

// SyncBuffer is a bytes.Buffer that a process's output can be written to
// while a test reads it.
type SyncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *SyncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *SyncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}
