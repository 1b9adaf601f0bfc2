package bench

import (
	"context"
	"syscall"
	"time"

	dto "github.com/prometheus/client_model/go"
)

// CPU is the processor time each process spent on a load, in
// milliseconds per notification: where a machine whose cores are all busy
// spends them. The manager's is zero in a pipeline cell, where it is
// stopped; the bench's is the load generator and its watches, and in a
// pipeline cell the bare client doing the leader's writes too.
type CPU struct {
	APIServerMs float64 `json:"apiServerMilliseconds"`
	EtcdMs      float64 `json:"etcdMilliseconds"`
	ManagerMs   float64 `json:"managerMilliseconds"`
	BenchMs     float64 `json:"benchMilliseconds"`
}

// TotalMs is the processor time of all four.
func (c CPU) TotalMs() float64 { return c.APIServerMs + c.EtcdMs + c.ManagerMs + c.BenchMs }

// cpuTimes are the processes' CPU seconds so far: the API server's, etcd's
// and the manager's from their process_cpu_seconds_total, the bench's
// from getrusage.
type cpuTimes struct {
	apiServer, etcd, manager, bench float64
}

// cpuTimes reads them, the API server's from apiServer, its metrics read
// a moment ago.
func (b *bench) cpuTimes(ctx context.Context, apiServer map[string]*dto.MetricFamily) (cpuTimes, error) {
	t := cpuTimes{apiServer: processCPU(apiServer)}
	etcd, err := b.etcdMetrics(ctx)
	if err != nil {
		return t, err
	}
	t.etcd = processCPU(etcd)
	if b.mgr != nil && !b.stopped {
		v, err := b.mgr.Metric("process_cpu_seconds_total")
		if err != nil {
			return t, err
		}
		t.manager = v
	}
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return t, err
	}
	t.bench = (time.Duration(ru.Utime.Nano()) + time.Duration(ru.Stime.Nano())).Seconds()
	return t, nil
}

// processCPU is a process's process_cpu_seconds_total in its metrics.
func processCPU(families map[string]*dto.MetricFamily) float64 {
	var v float64
	for _, m := range families["process_cpu_seconds_total"].GetMetric() {
		v = m.GetCounter().GetValue()
	}
	return v
}

// per is the CPU each process spent between t0 and t, per notification.
// A manager started or stopped in between counts nothing: its counter
// began again.
func (t cpuTimes) per(t0 cpuTimes, notifications int) CPU {
	ms := func(a, b float64) float64 {
		if notifications <= 0 || b < a {
			return 0
		}
		return 1000 * (b - a) / float64(notifications)
	}
	return CPU{
		APIServerMs: ms(t0.apiServer, t.apiServer),
		EtcdMs:      ms(t0.etcd, t.etcd),
		ManagerMs:   ms(t0.manager, t.manager),
		BenchMs:     ms(t0.bench, t.bench),
	}
}
