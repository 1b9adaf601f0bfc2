package bench

import (
	"context"
	"slices"
	"strings"
)

// requestCounts are the API server's requests by verb, resource and
// answer code, from its apiserver_request_total.
type requestCounts map[string]float64

// apiRequests reads the API server's request counters.
func (b *bench) apiRequests(ctx context.Context) (requestCounts, error) {
	families, err := b.metrics(ctx, strings.TrimSuffix(b.cfg.Host, "/")+"/metrics", b.api)
	if err != nil {
		return nil, err
	}
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
	return counts, nil
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
	before, err := b.apiRequests(ctx)
	if err != nil {
		return err
	}
	cpuBefore, err := b.cpuTimes(ctx)
	if err != nil {
		return err
	}
	if err := work(); err != nil {
		return err
	}
	cpuAfter, err := b.cpuTimes(ctx)
	if err != nil {
		return err
	}
	after, err := b.apiRequests(ctx)
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
