package bench

import (
	"context"
	"net/http"
	"strings"
	"syscall"
	"time"
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

func (b *bench) cpuTimes(ctx context.Context) (cpuTimes, error) {
	var t cpuTimes
	for _, p := range []struct {
		into *float64
		url  string
		hc   *http.Client
	}{
		{&t.apiServer, strings.TrimSuffix(b.cfg.Host, "/") + "/metrics", b.api},
		{&t.etcd, strings.TrimSuffix(b.etcdURL, "/") + "/metrics", http.DefaultClient},
	} {
		families, err := b.metrics(ctx, p.url, p.hc)
		if err != nil {
			return t, err
		}
		for _, m := range families["process_cpu_seconds_total"].GetMetric() {
			*p.into = m.GetCounter().GetValue()
		}
	}
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
