package bench

import (
	"strings"
	"testing"
	"time"

	. "github.com/onsi/gomega"
)

// Writes per notification count the mutating requests made between the
// two readings, by verb, resource and code, and nothing else.
func TestWritesPer(t *testing.T) {
	g := NewWithT(t)
	before := requestCounts{"POST problemevents 201": 10, "PATCH problemevents/status 200": 4, "GET jobs 200": 7, "PUT leases 200": 3}
	after := requestCounts{"POST problemevents 201": 210, "PATCH problemevents/status 200": 204, "PATCH problemevents/status 409": 2,
		"GET jobs 200": 900, "LIST jobs 200": 5, "PUT leases 200": 3, "DELETE jobs 200": 20}
	g.Expect(writesPer(before, after, 200)).To(Equal(map[string]float64{
		"POST problemevents 201":         1,
		"PATCH problemevents/status 200": 1,
		"PATCH problemevents/status 409": 0.01,
		"DELETE jobs 200":                0.1,
	}))
}

// Percentiles are read from the sorted latencies: p50 is the middle one,
// p99 the one below which 99 % lie, max the last.
func TestLatencies(t *testing.T) {
	g := NewWithT(t)
	var d []time.Duration
	for i := 200; i >= 1; i-- {
		d = append(d, time.Duration(i)*time.Millisecond)
	}
	l := latencies("x", d, 4*time.Second, 3)
	g.Expect(l).To(Equal(Latency{Name: "x", Achieved: 50, N: 200, P50: 101, P99: 199, Max: 200, Failed: 3}))
}

// Refusals are listed by status, in order, and a row measured against a
// baseline prints its ratios to it.
func TestRefusalsAndBaseline(t *testing.T) {
	g := NewWithT(t)
	g.Expect(Latency{}.refusals()).To(Equal("none"))
	g.Expect(Latency{Refused: map[string]int{"503": 3, "429": 120, "error": 1}}.refusals()).To(Equal("429 ×120, 503 ×3, error ×1"))

	lost := 0
	r := Results{Latency: []Latency{
		{Name: "ack, 200/s", Achieved: 200, P50: 4, P99: 20, Lost: &lost},
		{Name: "limited", Achieved: 150, P50: 5, P99: 10, Refused: map[string]int{"429": 250}, Resent: 260, Lost: &lost, Baseline: "ack, 200/s"},
		{Name: "duplicate, 200/s", Achieved: 200, P50: 1, P99: 2},
	}}
	var out strings.Builder
	r.print(&out)
	g.Expect(out.String()).To(MatchRegexp(`limited +0 +150 +5\.0 +10\.0 +0\.0 +429 ×250 +260 +0\n`))
	g.Expect(out.String()).To(MatchRegexp(`duplicate, 200/s +[^\n]*none +0 +-`))
	g.Expect(out.String()).To(ContainSubstring("limited against ack, 200/s, in the same run: achieved 0.75×, p50 1.25×, p99 0.50×"))
	g.Expect(out.String()).NotTo(ContainSubstring("CPU per notification"))

	// With the CPU of both, their ratio is printed beside.
	r.CPU = map[string]CPU{"ack, 200/s": {APIServerMs: 10, BenchMs: 10}, "limited": {APIServerMs: 15, ManagerMs: 10}}
	out.Reset()
	r.print(&out)
	g.Expect(out.String()).To(ContainSubstring("limited against ack, 200/s, in the same run: achieved 0.75×, p50 1.25×, p99 0.50×\n" +
		"  CPU per notification 1.25× its baseline's, kube-apiserver's 1.50×\n"))
}

// The leader is compared with its pipeline cell by cell: the median and
// the worst of the ratios are printed, of the cells that measured one.
func TestPipelineRatios(t *testing.T) {
	g := NewWithT(t)
	r := Results{Throughput: []Throughput{
		{Payload: "rich", Concurrency: 1, PipelinePerSec: 100, RoutedPerSec: 90, PipelineRatio: 0.9},
		{Payload: "rich", Concurrency: 8, PipelinePerSec: 200, RoutedPerSec: 140, PipelineRatio: 0.7},
		{Payload: "minimal", Concurrency: 1, PipelinePerSec: 100, RoutedPerSec: 110, PipelineRatio: 1.1},
		{Payload: "minimal", Concurrency: 8, PipelinePerSec: 300, RoutedPerSec: 240, PipelineRatio: 0.8},
		{Payload: "minimal", Concurrency: 32},
	}}
	median, worst, cells := r.pipelineRatios()
	g.Expect(cells).To(Equal(4))
	g.Expect(median).To(BeNumerically("~", 0.85, 1e-9))
	g.Expect(worst).To(BeNumerically("~", 0.7, 1e-9))
	var out strings.Builder
	r.print(&out)
	g.Expect(out.String()).To(MatchRegexp(`rich +8 +0 +0 +0 +0 % +0 +0 % +200 +140 +70 % +0\n`))
	g.Expect(out.String()).To(ContainSubstring("The leader against its pipeline, over 4 cells: median 85 %, worst 70 %"))

	_, _, cells = (&Results{Throughput: []Throughput{{Payload: "rich"}}}).pipelineRatios()
	g.Expect(cells).To(BeZero())
}

// Where the leader's time went is the mean of each histogram over the
// cell: the change of its sum over the change of its count, in ms.
func TestWhereSince(t *testing.T) {
	g := NewWithT(t)
	before := managerTimes{queue: 1, queueN: 10, reconcile: 2, reconcileN: 10}
	after := managerTimes{queue: 3, queueN: 20, reconcile: 2.5, reconcileN: 30}
	g.Expect(*after.since(before)).To(Equal(Where{Reconciles: 20, QueueMs: 200, ReconcileMs: 25}))
	g.Expect(*before.since(before)).To(Equal(Where{}))
}

// CPU per notification is each process's counter's increase over the
// notifications; a counter that began again (a manager restarted in
// between) counts nothing rather than a negative time. The table lists
// each load with the total.
func TestCPUPer(t *testing.T) {
	g := NewWithT(t)
	before := cpuTimes{apiServer: 100, etcd: 20, manager: 9, bench: 3}
	after := cpuTimes{apiServer: 104, etcd: 20.5, manager: 1, bench: 4}
	c := after.per(before, 200)
	g.Expect(c.APIServerMs).To(BeNumerically("~", 20, 1e-9))
	g.Expect(c.EtcdMs).To(BeNumerically("~", 2.5, 1e-9))
	g.Expect(c.ManagerMs).To(BeZero())
	g.Expect(c.BenchMs).To(BeNumerically("~", 5, 1e-9))
	g.Expect(c.TotalMs()).To(BeNumerically("~", 27.5, 1e-9))
	g.Expect(after.per(before, 0)).To(Equal(CPU{}))

	var out strings.Builder
	(&Results{CPU: map[string]CPU{"POST to Job": c}}).print(&out)
	g.Expect(out.String()).To(MatchRegexp(`CPU per notification, ms +load +kube-apiserver +etcd +manager +bench +total`))
	g.Expect(out.String()).To(MatchRegexp(`POST to Job +20\.00 +2\.50 +0\.00 +5\.00 +27\.50`))
}
