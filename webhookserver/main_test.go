package webhookserver_test

import (
	"context"
	"net/http/httptest"
	"os"
	"testing"
	"time"

	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/problemhook/problemhook/controllers"
	"github.com/problemhook/problemhook/test/harness/controlplane"
	"github.com/problemhook/problemhook/webhookserver"
)

// The tests share one API server, one manager (the NotificationTarget
// controller and the receiver, as main.go wires them) and one HTTP server
// in front of the receiver. Each test works in a namespace of its own.
var (
	k8s      client.Client
	env      *controlplane.TestEnv
	receiver *webhookserver.Receiver
	server   *httptest.Server
	// managerCache is the manager's cache, which the dashboard reads.
	managerCache cache.Cache
)

func TestMain(m *testing.M) {
	os.Exit(controlplane.RunTests(m, func(ctx context.Context, e *controlplane.TestEnv) (ctrl.Manager, error) {
		k8s, env = e.Client, e
		e.Config.QPS, e.Config.Burst = 200, 400
		mgr, err := e.NewManager()
		if err != nil {
			return nil, err
		}
		if err := (&controllers.NotificationTargetReconciler{
			Client: mgr.GetClient(), Recorder: mgr.GetEventRecorder("problemhook"), ReceiverURL: "http://receiver.test:9292",
		}).SetupWithManager(ctx, mgr); err != nil {
			return nil, err
		}
		managerCache = mgr.GetCache()
		receiver = &webhookserver.Receiver{
			Addr:           "127.0.0.1:0",
			Cache:          mgr.GetCache(),
			Client:         mgr.GetClient(),
			MaxBodyBytes:   64 << 10,
			StatusInterval: 200 * time.Millisecond,
		}
		// The test server outlives the package's tests; the process ends with them.
		server = httptest.NewServer(receiver.Handler())
		return mgr, mgr.Add(receiver)
	}))
}

// newNamespace creates a namespace for one test.
func newNamespace(t *testing.T) string {
	t.Helper()
	return controlplane.NewNamespace(t, k8s, "receiver")
}
