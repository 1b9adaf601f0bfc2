package dynatrace_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	. "github.com/onsi/gomega"

	"github.com/problemhook/problemhook/internal/dynatrace"
)

// listOf is a JSON array of item, repeated to about n bytes.
func listOf(item string, n int) string {
	return "[" + strings.Repeat(item+",", n/(len(item)+1)-1) + item + "]"
}

// hostile is an answer of almost MaxResponseBytes: before and after, around
// one list of empty items that fills the rest.
func hostile(before, item, after string) string {
	return before + listOf(item, dynatrace.MaxResponseBytes-len(before)-len(after)-2) + after
}

// serve answers every request with body, as JSON.
func serve(t testing.TB, body string) string {
	t.Helper()
	data := []byte(body)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Content-Length", strconv.Itoa(len(data)))
		_, _ = w.Write(data)
	}))
	t.Cleanup(srv.Close)
	return srv.URL
}

// heapGrowth runs call and returns how much more heap is in use after it,
// with its result alive, than before; the most it was in use meanwhile,
// sampled, over the same baseline; and how much it allocated in all,
// garbage included.
func heapGrowth(call func() any) (kept, peak int64, allocated uint64) {
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	done, sampled := make(chan struct{}), make(chan uint64)
	go func() {
		var most uint64
		tick := time.NewTicker(time.Millisecond)
		defer tick.Stop()
		for {
			var m runtime.MemStats
			runtime.ReadMemStats(&m)
			most = max(most, m.HeapAlloc)
			select {
			case <-done:
				sampled <- most
				return
			case <-tick.C:
			}
		}
	}()
	result := call()
	close(done)
	most := <-sampled
	runtime.GC()
	runtime.ReadMemStats(&after)
	runtime.KeepAlive(result)
	return int64(after.HeapAlloc) - int64(before.HeapAlloc), int64(most) - int64(before.HeapAlloc), after.TotalAlloc - before.TotalAlloc
}

// TestAnswersOfEmptyItemsStayBounded answers each list the client decodes
// with megabytes of "{}": a tenant's "Dynatrace" must not be able to make
// one call hold more than a few MiB, whatever its answer decodes to.
func TestAnswersOfEmptyItemsStayBounded(t *testing.T) {
	const maxGrowth = 16 << 20
	ctx := context.Background()
	getProblem := func(c *dynatrace.Client) any {
		p, err := c.GetProblem(ctx, "P1")
		t.Logf("GetProblem: %v", err)
		return p
	}
	listProblems := func(c *dynatrace.Client) any {
		p, err := c.ListProblems(ctx, dynatrace.ListOptions{})
		t.Logf("ListProblems: %v", err)
		return p
	}
	comments := func(c *dynatrace.Client) any {
		cm, err := c.Comments(ctx, "P1")
		t.Logf("Comments: %v", err)
		return cm
	}
	settings := func(c *dynatrace.Client) any {
		o, err := c.SettingsObjects(ctx, dynatrace.SchemaAlertingProfile, "")
		t.Logf("SettingsObjects: %v", err)
		return o
	}
	// 500 problems, each with an even share of the answer in empty entities.
	manyProblems := func() string {
		var b strings.Builder
		b.WriteString(`{"problems":[`)
		for i := range 500 {
			if i > 0 {
				b.WriteString(",")
			}
			b.WriteString(`{"problemId":"P` + strconv.Itoa(i) + `","impactedEntities":` + listOf("{}", dynatrace.MaxResponseBytes/600) + `}`)
		}
		b.WriteString(`]}`)
		return b.String()
	}

	tests := []struct {
		name string
		body func() string // built in its turn: one answer is in memory at a time
		call func(*dynatrace.Client) any
	}{
		{"impacted entities", func() string { return hostile(`{"problemId":"P1","impactedEntities":`, "{}", `}`) }, getProblem},
		{"affected entities", func() string { return hostile(`{"problemId":"P1","affectedEntities":`, "{}", `}`) }, getProblem},
		{"management zones", func() string { return hostile(`{"problemId":"P1","managementZones":`, "{}", `}`) }, getProblem},
		{"entity tags", func() string { return hostile(`{"problemId":"P1","entityTags":`, "{}", `}`) }, getProblem},
		{"problem filters", func() string { return hostile(`{"problemId":"P1","problemFilters":`, "{}", `}`) }, getProblem},
		{"evidence details", func() string { return hostile(`{"problemId":"P1","evidenceDetails":{"details":`, "{}", `}}`) }, getProblem},
		{"impacts", func() string { return hostile(`{"problemId":"P1","impactAnalysis":{"impacts":`, "{}", `}}`) }, getProblem},
		{"recent comments", func() string { return hostile(`{"problemId":"P1","recentComments":{"comments":`, "{}", `}}`) }, getProblem},
		{"Kubernetes names", func() string { return hostile(`{"problemId":"P1","k8s.cluster.name":`, `""`, `}`) }, getProblem},
		{"problems of a page", func() string { return hostile(`{"problems":`, "{}", `}`) }, listProblems},
		{"entities of a page's problems", manyProblems, listProblems},
		{"warnings of a page", func() string { return hostile(`{"problems":[],"warnings":`, `""`, `}`) }, listProblems},
		{"comments", func() string { return hostile(`{"comments":`, "{}", `}`) }, comments},
		{"settings objects", func() string { return hostile(`{"items":`, "{}", `}`) }, settings},
		{"a settings object's value", func() string {
			return hostile(`{"items":[{"objectId":"o1","value":{"name":"Default","rules":`, "{}", `}}]}`)
		}, settings},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			body := tt.body()
			c, _ := newClient(t, dynatrace.Options{URL: serve(t, body)})
			kept, peak, allocated := heapGrowth(func() any { return tt.call(c) })
			t.Logf("%d bytes answered: heap %+.1f MiB after, %+.1f MiB at most; %.1f MiB allocated",
				len(body), float64(kept)/(1<<20), float64(peak)/(1<<20), float64(allocated)/(1<<20))
			if kept > maxGrowth {
				t.Errorf("the heap grew by %d bytes, want at most %d", kept, maxGrowth)
			}
			if peak > 2*maxGrowth {
				t.Errorf("the heap grew by %d bytes at its peak, want at most %d", peak, 2*maxGrowth)
			}
		})
	}
}

func TestListsKeepTheirFirstItems(t *testing.T) {
	g := NewWithT(t)
	entity := `{"entityId":{"id":"HOST-1","type":"HOST"},"name":"host"}`
	body := `{"problemId":"P1","impactedEntities":` + listOf(entity, 300*(len(entity)+1)) +
		`,"managementZones":[{},{"name":"Shop"},{}],"k8s.cluster.name":["prod"]}`
	c, _ := newClient(t, dynatrace.Options{URL: serve(t, body)})

	p, err := c.GetProblem(context.Background(), "P1")

	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(p.ImpactedEntities).To(HaveLen(256))
	g.Expect(p.ManagementZones).To(Equal([]dynatrace.ManagementZone{{Name: "Shop"}}), "empty items are dropped")
	g.Expect(p.K8sClusterName).To(Equal([]string{"prod"}))
	g.Expect(p.Truncated).To(BeTrue())
}

// TestListingReadsWithinOneBudget answers every page with 3 MiB and a next
// page: the listing stops once its pages hold more than MaxResponseBytes
// together, with the problems of the pages it read whole.
func TestListingReadsWithinOneBudget(t *testing.T) {
	g := NewWithT(t)
	page := []byte(`{"nextPageKey":"next","problems":[{"problemId":"P1"}]}` + strings.Repeat(" ", 3<<20))
	var requests atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		requests.Add(1)
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(page)
	}))
	t.Cleanup(srv.Close)
	c, _ := newClient(t, dynatrace.Options{URL: srv.URL})

	got, err := c.ListProblems(context.Background(), dynatrace.ListOptions{})

	g.Expect(err).To(MatchError(dynatrace.ErrPageLimit))
	g.Expect(err).To(MatchError(ContainSubstring("stopped at page 3")))
	g.Expect(got).To(HaveLen(2))
	g.Expect(requests.Load()).To(BeEquivalentTo(3))
}

// benchmarkGetProblem reads body as a problem, b.N times.
func benchmarkGetProblem(b *testing.B, body string) {
	c, err := dynatrace.New(dynatrace.Options{URL: serve(b, body), Token: token})
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := c.GetProblem(context.Background(), "P1"); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkGetProblem(b *testing.B) { benchmarkGetProblem(b, apiSample) }

func BenchmarkGetProblemEmptyObjects(b *testing.B) {
	benchmarkGetProblem(b, hostile(`{"problemId":"P1","impactedEntities":`, "{}", `}`))
}
