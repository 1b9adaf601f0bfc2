package controllers_test

import (
	"context"
	"path/filepath"
	"testing"

	. "github.com/onsi/gomega"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	problemhookv1alpha1 "github.com/problemhook/problemhook/api/v1alpha1"
	"github.com/problemhook/problemhook/test/harness/controlplane"
	"github.com/problemhook/problemhook/test/harness/manifests"
)

// The samples are what `make run` applies: they must stay valid, and their
// targets must become Ready.
func TestSamplesBecomeReady(t *testing.T) {
	g := NewWithT(t)
	ctx := context.Background()
	objs, err := manifests.ReadDir(filepath.Join(controlplane.RepoRoot(), "config", "samples"))
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(manifests.Apply(ctx, restConfig, objs)).To(Succeed())

	for _, name := range []string{"dynatrace", "dynatrace-workflow", "guance"} {
		expectReady(t, client.ObjectKey{Namespace: "problemhook-demo", Name: name}, metav1.ConditionTrue,
			problemhookv1alpha1.ReasonReady, "Receiving notifications at /hooks/problemhook-demo/"+name)
	}
	// The route's Job template passes the API server's dry run.
	routeReady(t, &problemhookv1alpha1.IntegrationRoute{ObjectMeta: metav1.ObjectMeta{Namespace: "problemhook-demo", Name: "legacy-incident"}},
		metav1.ConditionTrue, problemhookv1alpha1.ReasonReady)
	// The remediation ladder's Jobs pass the dry run, and its templates
	// compile.
	routeReady(t, &problemhookv1alpha1.IntegrationRoute{ObjectMeta: metav1.ObjectMeta{Namespace: "problemhook-demo", Name: "restart-ladder"}},
		metav1.ConditionTrue, problemhookv1alpha1.ReasonReady)
	// The DingTalk forwarder's templates compile and its Secret resolves.
	routeReady(t, &problemhookv1alpha1.IntegrationRoute{ObjectMeta: metav1.ObjectMeta{Namespace: "problemhook-demo", Name: "guance-to-dingtalk"}},
		metav1.ConditionTrue, problemhookv1alpha1.ReasonReady)
}
