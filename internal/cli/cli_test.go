package cli_test

import (
	"bytes"
	"context"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"

	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/types"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"

	problemhookv1alpha1 "github.com/problemhook/problemhook/api/v1alpha1"
	"github.com/problemhook/problemhook/controllers"
	"github.com/problemhook/problemhook/controllers/notificationtarget"
	"github.com/problemhook/problemhook/internal/cli"
	"github.com/problemhook/problemhook/internal/scheme"
	"github.com/problemhook/problemhook/test/harness/controlplane"
	"github.com/problemhook/problemhook/webhookserver/receiver"
)

// unmanagedLabel marks a NotificationTarget no controller of the suite
// sees: its status stays empty, as when the operator is not running.
const unmanagedLabel = "cli-test.problemhook.io/unmanaged"

const (
	user        = "dynatrace"
	password    = "s3cret"
	bearerToken = "bearer-token"
	apiToken    = "dt0c01.cli-test-token"
)

// The tests share one API server and one manager that runs the
// NotificationTarget controller and a receiver, as main.go wires them,
// behind one HTTP server: the receiver send-test posts to. The controller
// reports that server's URL in status.webhookURL. Each test works in a
// namespace of its own.
var (
	k8s    client.Client
	env    *controlplane.TestEnv
	recv   *receiver.Server
	server *httptest.Server
)

func TestMain(m *testing.M) {
	os.Exit(controlplane.RunTests(m, func(ctx context.Context, e *controlplane.TestEnv) (ctrl.Manager, error) {
		k8s, env = e.Client, e
		managed, err := labels.Parse("!" + unmanagedLabel)
		if err != nil {
			return nil, err
		}
		// env.NewManager's options, and a cache that leaves out the unmanaged targets.
		mgr, err := ctrl.NewManager(e.Config, ctrl.Options{
			Scheme:  scheme.New(),
			Metrics: metricsserver.Options{BindAddress: "0"},
			Cache: cache.Options{ByObject: map[client.Object]cache.ByObject{
				&problemhookv1alpha1.NotificationTarget{}: {Label: managed},
			}},
		})
		if err != nil {
			return nil, err
		}
		recv = &receiver.Server{Addr: "127.0.0.1:0", Cache: mgr.GetCache(), Client: mgr.GetClient()}
		// The test server outlives the package's tests; the process ends with them.
		server = httptest.NewServer(recv.Handler())
		if err := (&notificationtarget.Reconciler{
			Deps:        controllers.Deps{Client: mgr.GetClient(), Recorder: mgr.GetEventRecorder("problemhook")},
			ReceiverURL: server.URL,
		}).SetupWithManager(ctx, mgr); err != nil {
			return nil, err
		}
		return mgr, mgr.Add(recv)
	}))
}

// newTarget creates, in ns, a Secret "auth" with basic-auth and bearer
// credentials and a NotificationTarget named name of format with no auth,
// after mutate has had its say.
func newTarget(t *testing.T, ns, name string, format problemhookv1alpha1.PayloadFormat, mutate ...func(*problemhookv1alpha1.NotificationTarget)) *problemhookv1alpha1.NotificationTarget {
	t.Helper()
	g := NewWithT(t)
	ctx := context.Background()
	secret := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "auth"},
		Data: map[string][]byte{"username": []byte(user), "password": []byte(password), "token": []byte(bearerToken)}}
	if err := k8s.Create(ctx, secret); err != nil && !apierrors.IsAlreadyExists(err) {
		t.Fatal(err)
	}
	nt := &problemhookv1alpha1.NotificationTarget{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
		Spec: problemhookv1alpha1.NotificationTargetSpec{
			Format: format,
			Auth:   problemhookv1alpha1.WebhookAuth{None: &problemhookv1alpha1.NoAuth{}},
		},
	}
	for _, m := range mutate {
		m(nt)
	}
	g.Expect(k8s.Create(ctx, nt)).To(Succeed())
	return nt
}

func basicAuth(nt *problemhookv1alpha1.NotificationTarget) {
	nt.Spec.Auth = problemhookv1alpha1.WebhookAuth{Basic: &problemhookv1alpha1.BasicAuth{
		SecretRef: problemhookv1alpha1.LocalObjectReference{Name: "auth"}}}
}

func bearerAuth(nt *problemhookv1alpha1.NotificationTarget) {
	nt.Spec.Auth = problemhookv1alpha1.WebhookAuth{Bearer: &problemhookv1alpha1.BearerAuth{
		SecretRef: problemhookv1alpha1.SecretKeyReference{Name: "auth"}}}
}

// eventuallyReady waits until the receiver's cache sees nt as Ready.
func eventuallyReady(t *testing.T, nt *problemhookv1alpha1.NotificationTarget) {
	t.Helper()
	NewWithT(t).Eventually(func(g Gomega) {
		var got problemhookv1alpha1.NotificationTarget
		g.Expect(recv.Cache.Get(context.Background(), client.ObjectKeyFromObject(nt), &got)).To(Succeed())
		g.Expect(meta.IsStatusConditionTrue(got.Status.Conditions, problemhookv1alpha1.ConditionReady)).To(BeTrue())
	}).Should(Succeed())
}

func keyOf(nt *problemhookv1alpha1.NotificationTarget) types.NamespacedName {
	return client.ObjectKeyFromObject(nt)
}

// kubeconfig writes a kubeconfig for the test's API server and returns its path.
func kubeconfig(t *testing.T) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "kubeconfig")
	if err := env.WriteKubeconfig(path); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestMainUsageErrors(t *testing.T) {
	g := NewWithT(t)
	g.Expect(cli.IsCommand("poll")).To(BeTrue())
	g.Expect(cli.IsCommand("send-test")).To(BeTrue())
	g.Expect(cli.IsCommand("--leader-elect")).To(BeFalse())

	cases := []struct {
		args   []string
		code   int
		stderr string
	}{
		{[]string{"poll", "--target", "tenant"}, 2, `--target must be <namespace>/<name>, got "tenant"`},
		{[]string{"poll", "--target", "ns/a/b"}, 2, `--target must be <namespace>/<name>, got "ns/a/b"`},
		{[]string{"poll", "--target", "Prod/tenant"}, 2, `namespace "Prod" is not valid`},
		{[]string{"poll"}, 2, "--target is required"},
		{[]string{"poll", "--target", "ns/tenant", "--relative-time", "fortnight"}, 2,
			`relative time "fortnight" is not one of hour, 2hours, 6hours, day, week, month`},
		{[]string{"poll", "--target", "ns/tenant", "-o", "yaml"}, 2, `unknown output format "yaml"`},
		{[]string{"poll", "--target", "ns/tenant", "hour"}, 2, `unexpected argument "hour"`},
		{[]string{"poll", "--since", "1h"}, 2, "flag provided but not defined: -since"},
		{[]string{"send-test", "--target", "ns/tenant", "--receiver-url", "localhost:9292"}, 2, "--receiver-url"},
		{[]string{"send-test", "--target", "ns/tenant", "--receiver-url", "http://u:p@localhost:9292"}, 2, "must not hold credentials"},
		{[]string{"serve"}, 2, `unknown command "serve"`},
		{nil, 2, "Commands:"},
		{[]string{"poll", "-h"}, 0, "-relative-time"},
		{[]string{"send-test", "--help"}, 0, "-receiver-url"},
	}
	for _, tc := range cases {
		var stdout, stderr bytes.Buffer
		code := cli.Main(context.Background(), tc.args, &stdout, &stderr)
		g.Expect(code).To(Equal(tc.code), "%q: %s", tc.args, stderr.String())
		g.Expect(stderr.String()).To(ContainSubstring(tc.stderr), "%q", tc.args)
		g.Expect(stdout.String()).To(BeEmpty(), "%q", tc.args)
	}
}
