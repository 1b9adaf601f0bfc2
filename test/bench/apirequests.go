package bench

import (
	"context"
	"slices"
	"strings"

	dto "github.com/prometheus/client_model/go"
)

// requestCounts are the API server's requests by verb, resource and
// answer code, from its apiserver_request_total.
type requestCounts map[string]float64

// requestCountsOf reads the API server's request counters from its metrics.
func requestCountsOf(families map[string]*dto.MetricFamily) requestCounts {
	counts := requestCounts{}
	for _, m := range families["apiserver_request_total"].GetMetric() {
		l := map[string]string{}
		for _, p := range m.GetLabel() {
			l[p.GetName()] = p.GetValue()
		}
		resource := l["resource"]
		if l["subresource"] != "" {
			resource += "/" + l["subresource"]
		}
		counts[l["verb"]+" "+resource+" "+l["code"]] += m.GetCounter().GetValue()
	}
	return counts
}

// writesPer is the mutating requests between before and after, per
// notification, by verb, resource and code.
func writesPer(before, after requestCounts, notifications int) map[string]float64 {
	out := map[string]float64{}
	for k, v := range after {
		verb, _, _ := strings.Cut(k, " ")
		if !slices.Contains([]string{"POST", "PUT", "PATCH", "DELETE", "APPLY"}, verb) {
			continue
		}
		if d := v - before[k]; d > 0 {
			out[k] = d / float64(notifications)
		}
	}
	return out
}

// measureWrites runs work and records under name the API server's writes
// per notification it caused, and each process's CPU per notification.
func (b *bench) measureWrites(ctx context.Context, name string, notifications int, work func() error) error {
	// read takes both from one reading of the API server's metrics.
	read := func() (requestCounts, cpuTimes, error) {
		families, err := b.apiServerMetrics(ctx)
		if err != nil {
			return nil, cpuTimes{}, err
		}
		cpu, err := b.cpuTimes(ctx, families)
		return requestCountsOf(families), cpu, err
	}
	before, cpuBefore, err := read()
	if err != nil {
		return err
	}
	if err := work(); err != nil {
		return err
	}
	after, cpuAfter, err := read()
	if err != nil {
		return err
	}
	if b.results.Writes == nil {
		b.results.Writes = map[string]map[string]float64{}
	}
	b.results.Writes[name] = writesPer(before, after, notifications)
	if b.results.CPU == nil {
		b.results.CPU = map[string]CPU{}
	}
	b.results.CPU[name] = cpuAfter.per(cpuBefore, notifications)
	return nil
}
