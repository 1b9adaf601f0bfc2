package problemevent

import (
	"testing"

	. "github.com/onsi/gomega"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	toolscache "k8s.io/client-go/tools/cache"

	problemhookv1alpha1 "github.com/problemhook/problemhook/api/v1alpha1"
)

// The compiled route follows the route's generation, and goes with the route.
func TestRouteCache(t *testing.T) {
	g := NewWithT(t)
	var c routeCache
	ir := &problemhookv1alpha1.IntegrationRoute{
		ObjectMeta: metav1.ObjectMeta{UID: "u1", Generation: 1},
		Spec:       problemhookv1alpha1.IntegrationRouteSpec{Match: problemhookv1alpha1.RouteMatch{Expression: `problem.state == "OPEN"`}},
	}
	first, err := c.get(ir)
	g.Expect(err).NotTo(HaveOccurred())
	again, _ := c.get(ir)
	g.Expect(again).To(BeIdenticalTo(first), "compiled once per generation")

	ir.Generation, ir.Spec.Match.Expression = 2, `problem.titel == ""`
	_, err = c.get(ir)
	g.Expect(err).To(MatchError(ContainSubstring("spec.match.expression")))

	c.forget(toolscache.DeletedFinalStateUnknown{Key: "ns/r", Obj: ir})
	g.Expect(c.routes).To(BeEmpty())
}
