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
	Machine    Machine         `json:"machine"`
	Throughput []Throughput    `json:"throughput"`
	Latency    []Latency       `json:"latency"`
	EventToJob *Latency        `json:"eventToJob,omitempty"`
	Scale      []Scale         `json:"scale"`
	Restart    *RestartMeasure `json:"restart,omitempty"`
	// Writes are the API server's writes per notification under each
	// load, by verb, resource and answer code.
	Writes map[string]map[string]float64 `json:"writesPerNotification,omitempty"`
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
	Failed             int     `json:"failed"`
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
	fmt.Fprintln(tw, "\nThroughput\t\t\tno manager\tstandby replica\t\t\tleader, routing\t\t\t")
	fmt.Fprintln(tw, "\tpayload\tconcurrency\traw/s\traw/s\treceiver/s\treceiver/raw\treceiver/s\treceiver/raw\tfailed\t")
	for _, t := range r.Throughput {
		fmt.Fprintf(tw, "\t%s\t%d\t%.0f\t%.0f\t%.0f\t%.0f %%\t%.0f\t%.0f %%\t%d\t\n",
			t.Payload, t.Concurrency, t.RawNoManagerPerSec, t.RawPerSec, t.AlonePerSec, 100*t.AloneRatio, t.RecvPerSec, 100*t.Ratio, t.Failed)
	}
	fmt.Fprintln(tw, "\nLatency\tload\toffered/s\tachieved/s\tp50 ms\tp99 ms\tmax ms\trefused\tresent\tlost\t")
	rows := r.Latency
	if r.EventToJob != nil {
		rows = append(slices.Clone(rows), *r.EventToJob)
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
	_ = tw.Flush()
	for _, l := range rows {
		i := slices.IndexFunc(rows, func(b Latency) bool { return b.Name == l.Baseline })
		if l.Baseline == "" || i < 0 || rows[i].P50 == 0 || rows[i].P99 == 0 || rows[i].Achieved == 0 {
			continue
		}
		base := rows[i]
		fmt.Fprintf(w, "\n  %s against %s, in the same run: stored at first %.2f×, p50 %.2f×, p99 %.2f×\n",
			l.Name, base.Name, l.Achieved/base.Achieved, l.P50/base.P50, l.P99/base.P99)
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
