package controllers_test

import (
	"context"
	"net/http/httptest"
	"net/netip"
	"os"
	"sync"
	"testing"
	"time"

	"k8s.io/client-go/rest"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/config"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"

	"github.com/problemhook/problemhook/controllers"
	"github.com/problemhook/problemhook/controllers/integrationroute"
	"github.com/problemhook/problemhook/controllers/notificationtarget"
	"github.com/problemhook/problemhook/controllers/problemevent"
	"github.com/problemhook/problemhook/internal/dtconn"
	"github.com/problemhook/problemhook/internal/dynatrace"
	"github.com/problemhook/problemhook/internal/egress"
	"github.com/problemhook/problemhook/internal/jobs"
	"github.com/problemhook/problemhook/internal/notify"
	"github.com/problemhook/problemhook/internal/scheme"
	"github.com/problemhook/problemhook/test/harness/controlplane"
	"github.com/problemhook/problemhook/webhookserver/receiver"
)

const receiverURL = "http://problemhook-receiver.problemhook-system.svc:9292"

var (
	// k8s talks to the API server directly, never through the manager's cache.
	k8s        client.Client
	restConfig *rest.Config
)

func TestMain(m *testing.M) {
	os.Exit(controlplane.RunTests(m, func(ctx context.Context, env *controlplane.TestEnv) (ctrl.Manager, error) {
		k8s, restConfig = env.Client, env.Config
		mgr, err := env.NewManager(func(o *ctrl.Options) { o.Client = controllers.ClientOptions() })
		if err != nil {
			return nil, err
		}
		deps := controllers.Deps{
			Client: mgr.GetClient(), Recorder: mgr.GetEventRecorder("problemhook"),
			Dynatrace: &dtconn.Clients{Egress: testEgress},
			Jobs:      jobs.Policy{Config: mgr.GetConfig(), HTTPClient: mgr.GetHTTPClient()},
		}
		if err := (&notificationtarget.Reconciler{Deps: deps, ReceiverURL: receiverURL}).SetupWithManager(ctx, mgr); err != nil {
			return nil, err
		}
		return mgr, (&integrationroute.Reconciler{Deps: deps}).SetupWithManager(ctx, mgr)
	}))
}

// startEventManager runs a ProblemEvent controller and a receiver that see
// only ns, and returns a function that stops them as a crash or a rollout
// would, and the receiver's URL. Each test gets its own, so that a test
// can restart it.
// testEgress is the egress policy of the tests' reconcilers: as `make
// run`'s, it opens loopback, where the stand-ins listen, and refuses the
// rest of the built-in ranges.
var testEgress = egress.New([]netip.Prefix{netip.MustParsePrefix("127.0.0.0/8"), netip.MustParsePrefix("::1/128")}, nil)

func startEventManager(t *testing.T, ns string, opts ...func(*problemevent.Reconciler)) (stop func(), receiverURL string) {
	t.Helper()
	return startEventManagerOver(t, []string{ns}, opts...)
}

// startEventManagerOver is startEventManager for the tenants of several
// namespaces, sharing its workers as the tenants of a cluster do.
func startEventManagerOver(t *testing.T, namespaces []string, opts ...func(*problemevent.Reconciler)) (stop func(), receiverURL string) {
	t.Helper()
	watched := map[string]cache.Config{}
	for _, ns := range namespaces {
		watched[ns] = cache.Config{}
	}
	mgr, err := ctrl.NewManager(restConfig, ctrl.Options{
		Scheme:     scheme.New(),
		Metrics:    metricsserver.Options{BindAddress: "0"},
		Cache:      cache.Options{DefaultNamespaces: watched},
		Client:     controllers.ClientOptions(),
		Controller: config.Controller{SkipNameValidation: new(true)},
	})
	if err != nil {
		t.Fatal(err)
	}
	deps := controllers.Deps{
		Client:    mgr.GetClient(),
		APIReader: mgr.GetAPIReader(),
		Recorder:  mgr.GetEventRecorder("problemhook"),
		Dynatrace: fastDynatrace(),
		Notifier:  &notify.Client{HTTPClient: notify.NewHTTPClient(testEgress)},
		Jobs:      jobs.Policy{Config: mgr.GetConfig(), HTTPClient: mgr.GetHTTPClient()},
	}
	r := &problemevent.Reconciler{
		Deps:                    deps,
		MaxConcurrentReconciles: 2,
		MatchNoteInterval:       200 * time.Millisecond,
	}
	for _, opt := range opts {
		opt(r)
	}
	if err := r.SetupWithManager(mgr); err != nil {
		t.Fatal(err)
	}
	if err := (&notificationtarget.PollReconciler{Deps: deps}).SetupWithManager(mgr); err != nil {
		t.Fatal(err)
	}
	recv := &receiver.Server{Addr: "127.0.0.1:0", Cache: mgr.GetCache(), Client: mgr.GetClient()}
	if err := mgr.Add(recv); err != nil {
		t.Fatal(err)
	}
	server := httptest.NewServer(recv.Handler())
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- mgr.Start(ctx) }()
	var once sync.Once
	stop = func() {
		once.Do(func() {
			server.Close()
			cancel()
			if err := <-done; err != nil {
				t.Errorf("event manager: %v", err)
			}
		})
	}
	t.Cleanup(stop)
	return stop, server.URL
}

// fastDynatrace opens Dynatrace clients that back off for milliseconds,
// not seconds, so that retry tests run fast, within the tests' egress
// policy.
func fastDynatrace() *dtconn.Clients {
	return &dtconn.Clients{Egress: testEgress, New: func(o dynatrace.Options) (*dynatrace.Client, error) {
		o.MinBackoff, o.MaxBackoff = time.Millisecond, 10*time.Millisecond
		return dynatrace.New(o)
	}}
}

// newNamespace creates a namespace for one test.
func newNamespace(t *testing.T) string {
	t.Helper()
	return controlplane.NewNamespace(t, k8s, "controllers")
}
