package fairqueue_test

import (
	"fmt"
	"strings"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/controller/priorityqueue"

	"github.com/problemhook/problemhook/internal/fairqueue"
)

func newQueue(t *testing.T) *fairqueue.Queue[string] {
	q := fairqueue.New(priorityqueue.New[string]("test"), func(item string) string {
		tenant, _, _ := strings.Cut(item, "/")
		return tenant
	})
	t.Cleanup(q.ShutDown)
	return q
}

// get takes the next item, failing the test if none comes.
func get(t *testing.T, q *fairqueue.Queue[string]) (string, int) {
	t.Helper()
	got := make(chan struct {
		item     string
		priority int
	}, 1)
	go func() {
		item, priority, _ := q.GetWithPriority()
		got <- struct {
			item     string
			priority int
		}{item, priority}
	}()
	select {
	case g := <-got:
		q.Done(g.item)
		return g.item, g.priority
	case <-time.After(10 * time.Second):
		t.Fatal("no item came out of the queue")
		return "", 0
	}
}

// waitLen waits until the queue holds n items ready: the priority queue
// takes adds in through a buffer.
func waitLen(t *testing.T, q *fairqueue.Queue[string], n int) {
	t.Helper()
	NewWithT(t).Eventually(q.Len).Should(Equal(n))
}

func TestABacklogDelaysAnotherTenantByOneItem(t *testing.T) {
	g := NewWithT(t)
	q := newQueue(t)
	for i := range 1000 {
		q.Add(fmt.Sprintf("busy/%d", i))
	}
	q.Add("quiet/1")
	waitLen(t, q, 1001)

	first, _ := get(t, q)
	second, _ := get(t, q)
	g.Expect(first).To(Equal("busy/0"))
	g.Expect(second).To(Equal("quiet/1"), "the quiet tenant's item waited behind the busy one's backlog")
	for i := 1; i < 1000; i++ {
		item, _ := get(t, q)
		g.Expect(item).To(Equal(fmt.Sprintf("busy/%d", i)), "a tenant's own items keep their order")
	}
}

func TestTenantsTakeTurns(t *testing.T) {
	g := NewWithT(t)
	q := newQueue(t)
	for i := range 3 {
		q.Add(fmt.Sprintf("a/%d", i))
	}
	for i := range 3 {
		q.Add(fmt.Sprintf("b/%d", i))
	}
	q.Add("c/0")
	waitLen(t, q, 7)
	var order []string
	for range 7 {
		item, _ := get(t, q)
		order = append(order, item)
	}
	g.Expect(order).To(Equal([]string{"a/0", "b/0", "c/0", "a/1", "b/1", "a/2", "b/2"}))
}

// The controller adds an item back with the priority it got it with: that
// is the priority it was added with, not the one its place in the queue
// gave it, or each requeue would push it further back.
func TestAnItemKeepsThePriorityItWasAddedWith(t *testing.T) {
	g := NewWithT(t)
	q := newQueue(t)
	q.AddWithOpts(priorityqueue.AddOpts{Priority: ptr.To(-100)}, "a/0", "a/1", "a/2")
	waitLen(t, q, 3)
	for _, want := range []string{"a/0", "a/1", "a/2"} {
		item, priority := get(t, q)
		g.Expect(item).To(Equal(want))
		g.Expect(priority).To(Equal(-100))
	}
}

// Priorities still come first: a tenant's new event goes before another
// tenant's events listed at start-up, which the handlers add at low
// priority, as long as its backlog is shorter than their priority gap.
func TestPrioritiesComeFirst(t *testing.T) {
	g := NewWithT(t)
	q := newQueue(t)
	for i := range 10 {
		q.AddWithOpts(priorityqueue.AddOpts{Priority: ptr.To(-100)}, fmt.Sprintf("listed/%d", i))
	}
	q.Add("new/0")
	waitLen(t, q, 11)
	item, priority := get(t, q)
	g.Expect(item).To(Equal("new/0"))
	g.Expect(priority).To(BeZero())
}

func TestAnItemAddedTwiceIsQueuedOnce(t *testing.T) {
	g := NewWithT(t)
	q := newQueue(t)
	q.Add("a/0")
	q.Add("a/0")
	q.Add("b/0")
	waitLen(t, q, 2)
	first, _ := get(t, q)
	second, _ := get(t, q)
	g.Expect([]string{first, second}).To(Equal([]string{"a/0", "b/0"}))
	// Taken and added again, it counts as one of its tenant's items again.
	q.Add("a/0")
	q.Add("a/1")
	q.Add("b/1")
	waitLen(t, q, 3)
	var order []string
	for range 3 {
		item, _ := get(t, q)
		order = append(order, item)
	}
	g.Expect(order).To(Equal([]string{"a/0", "b/1", "a/1"}))
}

func TestDelayedItemsComeWhenDue(t *testing.T) {
	g := NewWithT(t)
	q := newQueue(t)
	q.AddAfter("a/0", 100*time.Millisecond)
	q.Add("b/0")
	item, _ := get(t, q)
	g.Expect(item).To(Equal("b/0"))
	item, _ = get(t, q)
	g.Expect(item).To(Equal("a/0"))
}
