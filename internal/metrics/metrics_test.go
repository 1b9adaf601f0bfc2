package metrics_test

import (
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/problemhook/problemhook/internal/metrics"
)

func TestReadyIsSetAndForgotten(t *testing.T) {
	t.Cleanup(metrics.Ready.Reset)
	ready := func(kind, name string) float64 {
		t.Helper()
		var m dto.Metric
		if err := metrics.Ready.WithLabelValues(kind, "team-a", name).Write(&m); err != nil {
			t.Fatal(err)
		}
		return m.GetGauge().GetValue()
	}
	series := func() int {
		ch := make(chan prometheus.Metric, 10)
		metrics.Ready.Collect(ch)
		close(ch)
		return len(ch)
	}

	metrics.SetReady("IntegrationRoute", "team-a", "pager", false)
	metrics.SetReady("NotificationTarget", "team-a", "dynatrace", true)
	if got := ready("IntegrationRoute", "pager"); got != 0 {
		t.Errorf("a route that is not Ready: got %v, want 0", got)
	}
	if got := ready("NotificationTarget", "dynatrace"); got != 1 {
		t.Errorf("a Ready target: got %v, want 1", got)
	}
	metrics.SetReady("IntegrationRoute", "team-a", "pager", true)
	if got := ready("IntegrationRoute", "pager"); got != 1 {
		t.Errorf("a route that became Ready: got %v, want 1", got)
	}
	metrics.ForgetReady("IntegrationRoute", "team-a", "pager")
	if n := series(); n != 1 {
		t.Errorf("after a route was forgotten, %d series, want 1 (the target's)", n)
	}
}
