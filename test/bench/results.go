package bench

import (
	"fmt"
	"io"
	"maps"
	"os"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"
)

// Results is what a run measured.
type Results struct {
	Machine    Machine      `json:"machine"`
	Throughput []Throughput `json:"throughput"`
	Latency    []Latency    `json:"latency"`
	EventToJob *Latency     `json:"eventToJob,omitempty"`
	// EventToJobPipeline is a bare client doing the leader's writes for
	// each notification of EventToJob, at the same rate.
	EventToJobPipeline *Latency `json:"eventToJobPipeline,omitempty"`
	// EventToJobWhere is where the leader's time went in EventToJob.
	EventToJobWhere *Where          `json:"eventToJobWhere,omitempty"`
	Scale           []Scale         `json:"scale"`
	Restart         *RestartMeasure `json:"restart,omitempty"`
	// Storage is etcd's and the API server's state after each phase.
	Storage []Storage `json:"storage,omitempty"`
	// Writes are the API server's writes per notification under each
	// load, by verb, resource and answer code.
	Writes map[string]map[string]float64 `json:"writesPerNotification,omitempty"`
	// CPU is each process's processor time per notification under the
	// same loads.
	CPU map[string]CPU `json:"cpuPerNotification,omitempty"`
}

// Machine says where the figures come from.
type Machine struct {
	CPUs      int    `json:"cpus"`
	CPU       string `json:"cpu"`
	GoVersion string `json:"goVersion"`
	Time      string `json:"time"`
}

// Throughput compares the receiver with raw creates of the same objects
// at the same concurrency, each pair measured one right after the other:
// the receiver of a standby replica alone. The leader's receiver, whose
// reconcilers route every event on the same API server, is compared with
// the same raw rate.
type Throughput struct {
	Payload     string `json:"payload"`
	Concurrency int    `json:"concurrency"`
	N           int    `json:"n"`
	// RawNoManagerPerSec are raw creates with no manager running.
	RawNoManagerPerSec float64 `json:"rawNoManagerPerSecond"`
	RawPerSec          float64 `json:"rawPerSecond"`
	AlonePerSec        float64 `json:"receiverAlonePerSecond"`
	AloneRatio         float64 `json:"aloneRatio"`
	RecvPerSec         float64 `json:"receiverPerSecond"`
	Ratio              float64 `json:"ratio"`
	// RoutedPerSec is how many notifications a second the leader stored
	// and routed: from the first POST until a watch saw the status of the
	// last. PipelinePerSec is a bare client doing the leader's writes for
	// each notification (the create, then the status patch), with the
	// manager stopped, right before the leader's cell, measured the same
	// way; PipelineRatio is RoutedPerSec against it.
	RoutedPerSec   float64 `json:"routedPerSecond"`
	PipelinePerSec float64 `json:"pipelinePerSecond"`
	PipelineRatio  float64 `json:"pipelineRatio"`
	// Where is where the leader's time went in its cell.
	Where  *Where `json:"where,omitempty"`
	Failed int    `json:"failed"`
}

// Latency is a distribution of latencies under a load.
type Latency struct {
	Name     string  `json:"name"`
	Offered  float64 `json:"offeredPerSecond,omitempty"`
	Achieved float64 `json:"achievedPerSecond"`
	N        int     `json:"n"`
	P50      float64 `json:"p50Milliseconds"`
	P99      float64 `json:"p99Milliseconds"`
	Max      float64 `json:"maxMilliseconds"`
	// Failed are the sends not answered as wanted: Refused counts them by
	// status ("error" for no answer).
	Failed  int            `json:"failed"`
	Refused map[string]int `json:"refusedByStatus,omitempty"`
	// Resent is how many sends it took to store the refused ones, honouring
	// Retry-After, and Lost how many were still not stored after that.
	// Lost is nil where the events were not counted.
	Resent int  `json:"resent,omitempty"`
	Lost   *int `json:"lost,omitempty"`
	// Baseline names the row this one is measured against, in the same run.
	Baseline string `json:"baseline,omitempty"`
	// refused are the numbers of the refused notifications, to resend.
	refused []int
}

// refusals is Refused as "429 ×120, 503 ×3", or "none".
func (l Latency) refusals() string {
	if len(l.Refused) == 0 {
		return "none"
	}
	var parts []string
	for _, code := range slices.Sorted(maps.Keys(l.Refused)) {
		parts = append(parts, fmt.Sprintf("%s ×%d", code, l.Refused[code]))
	}
	return strings.Join(parts, ", ")
}

// Scale is the manager with many events stored.
type Scale struct {
	Events          int     `json:"events"`
	RSSMiB          float64 `json:"rssMiB"`
	DashboardListMs float64 `json:"dashboardListMilliseconds"`
}

// RestartMeasure is a restart with events stored.
type RestartMeasure struct {
	Events   int     `json:"events"`
	Seconds  float64 `json:"secondsToIdle"`
	Rewrites int     `json:"eventsWritten"`
}

func machine() Machine {
	m := Machine{CPUs: runtime.NumCPU(), GoVersion: runtime.Version(), Time: time.Now().UTC().Format(time.RFC3339)}
	if data, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for line := range strings.Lines(string(data)) {
			if name, ok := strings.CutPrefix(line, "model name"); ok {
				m.CPU = strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(name), ":"))
				break
			}
		}
	}
	return m
}

// latencies summarises durations.
func latencies(name string, d []time.Duration, elapsed time.Duration, failed int) Latency {
	l := Latency{Name: name, N: len(d), Failed: failed}
	if elapsed > 0 {
		l.Achieved = float64(len(d)) / elapsed.Seconds()
	}
	if len(d) == 0 {
		return l
	}
	slices.Sort(d)
	ms := func(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
	l.P50 = ms(d[len(d)*50/100])
	l.P99 = ms(d[min(len(d)-1, len(d)*99/100)])
	l.Max = ms(d[len(d)-1])
	return l
}

func (r *Results) print(w io.Writer) {
	m := r.Machine
	fmt.Fprintf(w, "\nproblemhook benchmark, %s, %d CPUs (%s), %s\n", m.Time, m.CPUs, m.CPU, m.GoVersion)
	tw := tabwriter.NewWriter(w, 0, 8, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "\nThroughput\t\t\tno manager\tstandby replica\t\t\tleader, routing\t\t\t\t\t\t")
	fmt.Fprintln(tw, "\tpayload\tconcurrency\traw/s\traw/s\treceiver/s\treceiver/raw\treceiver/s\treceiver/raw\tpipeline/s\trouted/s\trouted/pipeline\tfailed\t")
	for _, t := range r.Throughput {
		fmt.Fprintf(tw, "\t%s\t%d\t%.0f\t%.0f\t%.0f\t%.0f %%\t%.0f\t%.0f %%\t%.0f\t%.0f\t%.0f %%\t%d\t\n",
			t.Payload, t.Concurrency, t.RawNoManagerPerSec, t.RawPerSec, t.AlonePerSec, 100*t.AloneRatio,
			t.RecvPerSec, 100*t.Ratio, t.PipelinePerSec, t.RoutedPerSec, 100*t.PipelineRatio, t.Failed)
	}
	fmt.Fprintln(tw, "\nLatency\tload\toffered/s\tachieved/s\tp50 ms\tp99 ms\tmax ms\trefused\tresent\tlost\t")
	rows := r.Latency
	for _, l := range []*Latency{r.EventToJobPipeline, r.EventToJob} {
		if l != nil {
			rows = append(slices.Clone(rows), *l)
		}
	}
	for _, l := range rows {
		lost := "-"
		if l.Lost != nil {
			lost = strconv.Itoa(*l.Lost)
		}
		fmt.Fprintf(tw, "\t%s\t%.0f\t%.0f\t%.1f\t%.1f\t%.1f\t%s\t%d\t%s\t\n", l.Name, l.Offered, l.Achieved, l.P50, l.P99, l.Max, l.refusals(), l.Resent, lost)
	}
	fmt.Fprintln(tw, "\nScale\tevents\tmanager RSS MiB\tdashboard list ms\t")
	for _, s := range r.Scale {
		fmt.Fprintf(tw, "\t%d\t%.0f\t%.1f\t\n", s.Events, s.RSSMiB, s.DashboardListMs)
	}
	if rs := r.Restart; rs != nil {
		fmt.Fprintf(tw, "\nRestart\t%d events\t%.1f s to idle\t%d events written\t\n", rs.Events, rs.Seconds, rs.Rewrites)
	}
	if r.EventToJobWhere != nil || slices.ContainsFunc(r.Throughput, func(t Throughput) bool { return t.Where != nil }) {
		fmt.Fprintln(tw, "\nLeader's time\tpayload\tconcurrency\treconciles\tqueue ms\treconcile ms\tpipeline's patch ms\t")
		for _, t := range r.Throughput {
			if w := t.Where; w != nil {
				fmt.Fprintf(tw, "\t%s\t%d\t%d\t%.1f\t%.1f\t%.1f\t\n", t.Payload, t.Concurrency, w.Reconciles, w.QueueMs, w.ReconcileMs, w.PipelinePatchMs)
			}
		}
		if w := r.EventToJobWhere; w != nil {
			fmt.Fprintf(tw, "\t%s\t\t%d\t%.1f\t%.1f\t\t\n", "POST to Job", w.Reconciles, w.QueueMs, w.ReconcileMs)
		}
	}
	if len(r.Storage) > 0 {
		fmt.Fprintln(tw, "\nLeft after\tphase\tetcd revision\tcompacted to\tetcd MiB\tin use MiB\tAPI server heap MiB\t")
		for _, s := range r.Storage {
			fmt.Fprintf(tw, "\t%s\t%d\t%d\t%.0f\t%.0f\t%.0f\t\n", s.Phase, s.Revision, s.Compacted, s.DBMiB, s.InUseMiB, s.APIServerHeapMiB)
		}
	}
	if len(r.CPU) > 0 {
		fmt.Fprintln(tw, "\nCPU per notification, ms\tload\tkube-apiserver\tetcd\tmanager\tbench\ttotal\t")
		for _, name := range slices.Sorted(maps.Keys(r.CPU)) {
			c := r.CPU[name]
			fmt.Fprintf(tw, "\t%s\t%.2f\t%.2f\t%.2f\t%.2f\t%.2f\t\n", name, c.APIServerMs, c.EtcdMs, c.ManagerMs, c.BenchMs, c.TotalMs())
		}
	}
	_ = tw.Flush()
	if median, worst, cells := r.pipelineRatios(); cells > 0 {
		fmt.Fprintf(w, "\n  The leader against its pipeline, over %d cells: median %.0f %%, worst %.0f %%\n", cells, 100*median, 100*worst)
	}
	for _, l := range rows {
		i := slices.IndexFunc(rows, func(b Latency) bool { return b.Name == l.Baseline })
		if l.Baseline == "" || i < 0 || rows[i].P50 == 0 || rows[i].P99 == 0 || rows[i].Achieved == 0 {
			continue
		}
		base := rows[i]
		fmt.Fprintf(w, "\n  %s against %s, in the same run: achieved %.2f×, p50 %.2f×, p99 %.2f×\n",
			l.Name, base.Name, l.Achieved/base.Achieved, l.P50/base.P50, l.P99/base.P99)
		// Where both keep the cores busy, what each notification costs
		// them says how many a second each can make.
		if c, cb := r.CPU[l.Name], r.CPU[base.Name]; c.TotalMs() > 0 && cb.TotalMs() > 0 && cb.APIServerMs > 0 {
			fmt.Fprintf(w, "  CPU per notification %.2f× its baseline's, kube-apiserver's %.2f×\n", c.TotalMs()/cb.TotalMs(), c.APIServerMs/cb.APIServerMs)
		}
	}
	if len(r.Writes) > 0 {
		fmt.Fprintln(w, "\n  API writes per notification, by verb, resource and answer")
		for _, name := range slices.Sorted(maps.Keys(r.Writes)) {
			var total float64
			var parts []string
			for _, k := range slices.Sorted(maps.Keys(r.Writes[name])) {
				total += r.Writes[name][k]
				parts = append(parts, fmt.Sprintf("%s %.2f", k, r.Writes[name][k]))
			}
			fmt.Fprintf(w, "    %s: %.2f (%s)\n", name, total, strings.Join(parts, ", "))
		}
	}
}

// pipelineRatios are the median and the worst of the cells' leader against
// pipeline ratios, over the cells that measured one.
func (r *Results) pipelineRatios() (median, worst float64, cells int) {
	var ratios []float64
	for _, t := range r.Throughput {
		if t.PipelinePerSec > 0 {
			ratios = append(ratios, t.PipelineRatio)
		}
	}
	if len(ratios) == 0 {
		return 0, 0, 0
	}
	slices.Sort(ratios)
	n := len(ratios)
	median = ratios[n/2]
	if n%2 == 0 {
		median = (ratios[n/2-1] + ratios[n/2]) / 2
	}
	return median, ratios[0], n
}
