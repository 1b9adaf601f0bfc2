package leader_test

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/util/retry"
	"k8s.io/client-go/util/workqueue"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"
	"sigs.k8s.io/controller-runtime/pkg/source"

	"github.com/problemhook/problemhook/internal/leader"
	"github.com/problemhook/problemhook/internal/scheme"
	"github.com/problemhook/problemhook/test/harness/controlplane"
)

// A replica that loses the lease ends its term, not its process: it stands
// again and leads a new term once the lease is free. The ended term's
// controllers hear nothing more from the shared informers: their event
// handlers went with them.
func TestALostLeaseEndsTheTermAndItsHandlers(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a control plane")
	}
	g := NewWithT(t)
	env, err := controlplane.Start(controlplane.RepoRoot())
	g.Expect(err).NotTo(HaveOccurred())
	t.Cleanup(func() { _ = env.Stop() })
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)

	s := scheme.New()
	replica, err := cache.New(env.Config, cache.Options{Scheme: s})
	g.Expect(err).NotTo(HaveOccurred())
	go func() { _ = replica.Start(ctx) }()
	g.Expect(replica.WaitForCacheSync(ctx)).To(BeTrue())
	k8s, err := client.New(env.Config, client.Options{Scheme: s})
	g.Expect(err).NotTo(HaveOccurred())
	recorders, err := ctrl.NewManager(env.Config, ctrl.Options{Scheme: s, Metrics: metricsserver.Options{BindAddress: "0"}, HealthProbeBindAddress: "0"})
	g.Expect(err).NotTo(HaveOccurred())

	// heard[i] counts the ConfigMaps term i+1's watch heard of.
	var terms atomic.Int32
	var heard [4]atomic.Int32
	lease, renew, retryPeriod := 2*time.Second, time.Second, 200*time.Millisecond
	terms0 := &leader.Terms{
		Options: ctrl.Options{
			Scheme: s, LeaderElection: true, LeaderElectionID: "leader-test", LeaderElectionNamespace: "default",
			LeaseDuration: &lease, RenewDeadline: &renew, RetryPeriod: &retryPeriod,
		},
		Config: env.Config, Recorders: recorders, Cache: &leader.SharedCache{Cache: replica},
		Pause: 100 * time.Millisecond,
		Setup: func(_ context.Context, mgr ctrl.Manager) error {
			term := terms.Add(1)
			return ctrl.NewControllerManagedBy(mgr).Named("configmaps").
				WatchesRawSource(configMaps(mgr, &heard[min(int(term), len(heard))-1])).
				Complete(reconcile.Func(func(context.Context, reconcile.Request) (reconcile.Result, error) { return reconcile.Result{}, nil }))
		},
	}
	userAgent := env.Config.UserAgent
	done := make(chan error, 1)
	go func() { done <- terms0.Start(ctx) }()

	create := func(name string) {
		g.Expect(k8s.Create(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: name}})).To(Succeed())
	}
	create("before")
	g.Eventually(heard[0].Load).WithTimeout(30 * time.Second).Should(BeNumerically(">=", 1))
	g.Expect(env.Config.UserAgent).To(Equal(userAgent), "the election's user agent is its own lock's, not the terms' clients'")
	g.Expect(env.Config.Timeout).To(BeZero(), "the election's request timeout is its own lock's, not the terms' clients'")

	// Another holder takes the lease: the term ends within the renew
	// deadline, and a new one starts once that holder's lease expires.
	var l coordinationv1.Lease
	g.Expect(retry.RetryOnConflict(retry.DefaultRetry, func() error {
		if err := k8s.Get(ctx, client.ObjectKey{Namespace: "default", Name: "leader-test"}, &l); err != nil {
			return err
		}
		now := metav1.NewMicroTime(time.Now())
		l.Spec.HolderIdentity, l.Spec.AcquireTime, l.Spec.RenewTime = new("another-replica"), &now, &now
		return k8s.Update(ctx, &l)
	})).To(Succeed())
	g.Eventually(terms.Load).WithTimeout(30 * time.Second).Should(BeNumerically("==", 2))
	g.Expect(done).NotTo(Receive(), "a lost lease does not end the replica's terms")
	firstTerm := heard[0].Load()
	create("after")
	g.Eventually(heard[1].Load).WithTimeout(30*time.Second).Should(BeNumerically(">=", 2), "the new term hears of both ConfigMaps")
	g.Consistently(heard[0].Load).WithTimeout(2*time.Second).Should(Equal(firstTerm), "the ended term's handler was removed")

	cancel()
	g.Eventually(done).WithTimeout(30 * time.Second).Should(Receive(BeNil()))
}

// configMaps watches ConfigMaps through mgr's cache, counting what it hears.
func configMaps(mgr ctrl.Manager, heard *atomic.Int32) source.TypedSource[reconcile.Request] {
	return source.Kind(mgr.GetCache(), &corev1.ConfigMap{}, handler.TypedFuncs[*corev1.ConfigMap, reconcile.Request]{
		CreateFunc: func(context.Context, event.TypedCreateEvent[*corev1.ConfigMap], workqueue.TypedRateLimitingInterface[reconcile.Request]) {
			heard.Add(1)
		},
	})
}
