package outcall_test

import (
	"context"
	"errors"
	"testing"

	. "github.com/onsi/gomega"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/event"

	"github.com/problemhook/problemhook/internal/outcall"
)

var obj = types.NamespacedName{Namespace: "shop", Name: "ev"}

// An answer within the window is the reconcile's, typed; nothing wakes.
func TestAnswerWithinTheWindow(t *testing.T) {
	g := NewWithT(t)
	s := outcall.New()
	key := outcall.NewKey[int](types.UID("uid"), "answer")
	v, err, done := outcall.Await(context.Background(), s, key, obj, func(context.Context) (int, error) { return 42, nil })
	g.Expect(done).To(BeTrue())
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(v).To(Equal(42))
	g.Expect(outcall.Running(s, key)).To(BeFalse(), "a taken answer is gone")
	g.Expect(s.Wake()).NotTo(Receive())
}

// A call past the window lets the reconcile go; its answer wakes the
// object, and the next reconcile takes it without calling again.
func TestAnswerAfterTheWindowWakesTheObject(t *testing.T) {
	g := NewWithT(t)
	s := outcall.New()
	key := outcall.NewKey[string](types.UID("uid"), "slow")
	release := make(chan struct{})
	calls := 0
	fn := func(context.Context) (string, error) {
		calls++
		<-release
		return "", errors.New("refused")
	}
	_, _, done := outcall.Await(context.Background(), s, key, obj, fn)
	g.Expect(done).To(BeFalse())
	g.Expect(outcall.Running(s, key)).To(BeTrue())
	close(release)
	var woken event.TypedGenericEvent[client.Object]
	g.Eventually(s.Wake()).Should(Receive(&woken))
	g.Expect(client.ObjectKeyFromObject(woken.Object)).To(Equal(obj), "the answer wakes the object it is for")
	_, err, done := outcall.Await(context.Background(), s, key, obj, fn)
	g.Expect(done).To(BeTrue())
	g.Expect(err).To(MatchError("refused"))
	g.Expect(calls).To(Equal(1), "the answer under way was taken, not asked for again")
}

// An answer no reconcile took is recorded by late when the manager stops.
func TestLateAnswerIsRecordedOnStop(t *testing.T) {
	g := NewWithT(t)
	s := outcall.New()
	key := outcall.NewKey[int](types.UID("uid"), "late")
	recorded := make(chan int, 1)
	outcall.Begin(context.Background(), s, key, obj, func(context.Context) (int, error) { return 7, nil },
		func(_ context.Context, v int, err error) { recorded <- v })
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	g.Expect(s.Start(ctx)).To(Succeed())
	g.Expect(recorded).To(Receive(Equal(7)))
	g.Expect(outcall.Running(s, key)).To(BeFalse())
}
