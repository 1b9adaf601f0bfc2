package controllers_test

import (
	"context"
	"os"
	"testing"

	"k8s.io/client-go/rest"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/problemhook/problemhook/controllers"
	"github.com/problemhook/problemhook/internal/controlplane"
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
		mgr, err := env.NewManager()
		if err != nil {
			return nil, err
		}
		return mgr, (&controllers.NotificationTargetReconciler{
			Client: mgr.GetClient(), Recorder: mgr.GetEventRecorder("problemhook"), ReceiverURL: receiverURL,
		}).SetupWithManager(ctx, mgr)
	}))
}

// newNamespace creates a namespace for one test.
func newNamespace(t *testing.T) string {
	t.Helper()
	return controlplane.NewNamespace(t, k8s, "controllers")
}
