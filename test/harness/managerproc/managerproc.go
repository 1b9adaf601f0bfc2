// Package managerproc runs problemhook's manager binary as a process of
// its own, as it runs in a Pod, for the benchmark, the drills and the
// end-to-end tests: started and waited for until ready, stopped with
// SIGTERM, killed with SIGKILL, restarted on the same addresses, and read
// through its metrics and /proc.
package managerproc

import (
	"bufio"
	"context"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/problemhook/problemhook/test/harness/controlplane"
)

// LoopbackCIDRs opens loopback in the manager's egress policy, for
// stand-ins that listen there; a cluster's manager keeps it closed.
const LoopbackCIDRs = "127.0.0.0/8,::1/128"

// Process is one manager process. Its addresses stay the same across restarts.
type Process struct {
	Binary, Kubeconfig string
	// LogPath is where its output is appended, across restarts.
	LogPath string
	// Args are passed after the addresses.
	Args []string

	ReceiverAddr, DashboardAddr, MetricsAddr, ProbeAddr, PprofAddr string

	cmd    *exec.Cmd
	exited chan struct{}
}

// New prepares a manager on free loopback addresses; Start runs it.
func New(binary, kubeconfig, logPath string, args ...string) (*Process, error) {
	p := &Process{Binary: binary, Kubeconfig: kubeconfig, LogPath: logPath, Args: args}
	for _, addr := range []*string{&p.ReceiverAddr, &p.DashboardAddr, &p.MetricsAddr, &p.ProbeAddr, &p.PprofAddr} {
		var err error
		if *addr, err = controlplane.FreeLoopbackAddr(); err != nil {
			return nil, err
		}
	}
	return p, nil
}

// Start runs the manager in a process group of its own and waits until it
// is ready.
func (p *Process) Start(ctx context.Context) error {
	logFile, err := os.OpenFile(p.LogPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	fmt.Fprintf(logFile, "\n===== manager started at %s =====\n", time.Now().Format(time.RFC3339Nano))
	p.cmd = exec.Command(p.Binary, append([]string{
		"--kubeconfig", p.Kubeconfig,
		"--receiver-bind-address", p.ReceiverAddr,
		"--receiver-url", "http://" + p.ReceiverAddr,
		"--dashboard-bind-address", p.DashboardAddr,
		"--metrics-bind-address", p.MetricsAddr,
		"--health-probe-bind-address", p.ProbeAddr,
		"--pprof-bind-address", p.PprofAddr,
		// The harness scrapes plain HTTP on loopback, and its stand-ins
		// for Dynatrace, Twilio and DingTalk listen on loopback.
		"--metrics-secure=false",
		// No Service routes to a process on the host, and tests stop and
		// start it often.
		"--receiver-drain-delay=0",
		"--egress-allow-cidrs", LoopbackCIDRs,
	}, p.Args...)...)
	p.cmd.Stdout, p.cmd.Stderr = logFile, logFile
	p.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := p.cmd.Start(); err != nil {
		_ = logFile.Close()
		return fmt.Errorf("starting %s: %w (build it with make build)", p.Binary, err)
	}
	exited := make(chan struct{})
	p.exited = exited
	go func() { _ = p.cmd.Wait(); _ = logFile.Close(); close(exited) }()
	deadline := time.Now().Add(time.Minute)
	for {
		select {
		case <-exited:
			return fmt.Errorf("the manager exited while starting; its log is %s", p.LogPath)
		case <-ctx.Done():
			p.Kill()
			return ctx.Err()
		default:
		}
		resp, err := http.Get("http://" + p.ProbeAddr + "/readyz")
		if err == nil {
			_ = resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("the manager was not ready within a minute; its log is %s", p.LogPath)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// Stop ends the manager as Kubernetes would: SIGTERM, and SIGKILL after 30 s.
func (p *Process) Stop() {
	if p.cmd == nil || p.cmd.Process == nil {
		return
	}
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.exited:
	case <-time.After(30 * time.Second):
		p.Kill()
	}
}

// Kill ends the manager with SIGKILL: nothing of it runs after, no
// deferred write, no flush.
func (p *Process) Kill() {
	if p.cmd == nil || p.cmd.Process == nil {
		return
	}
	_ = p.cmd.Process.Kill()
	<-p.exited
}

// Restart stops the manager and starts it again, and says when it started.
func (p *Process) Restart(ctx context.Context) (time.Time, error) {
	p.Stop()
	started := time.Now()
	return started, p.Start(ctx)
}

// Exited is closed once the current process has ended.
func (p *Process) Exited() <-chan struct{} { return p.exited }

// RSS is the manager's resident memory, in bytes.
func (p *Process) RSS() (int64, error) {
	return p.status("VmRSS:")
}

// status reads a size in kB from the manager's /proc/<pid>/status.
func (p *Process) status(field string) (int64, error) {
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", p.cmd.Process.Pid))
	if err != nil {
		return 0, err
	}
	defer func() { _ = f.Close() }()
	s := bufio.NewScanner(f)
	for s.Scan() {
		if rest, ok := strings.CutPrefix(s.Text(), field); ok {
			kb, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 10, 64)
			return kb << 10, err
		}
	}
	return 0, fmt.Errorf("no %s in /proc/<pid>/status", field)
}

// PeakRSS is the most resident memory the manager has held, in bytes,
// since it started or since ResetPeakRSS.
func (p *Process) PeakRSS() (int64, error) {
	return p.status("VmHWM:")
}

// ResetPeakRSS makes PeakRSS count from now (Linux's clear_refs).
func (p *Process) ResetPeakRSS() error {
	return os.WriteFile(fmt.Sprintf("/proc/%d/clear_refs", p.cmd.Process.Pid), []byte("5"), 0)
}

// Metric sums the samples of the metric name whose labels contain every
// label="value" pair given, from the manager's /metrics.
func (p *Process) Metric(name string, labels ...string) (float64, error) {
	resp, err := http.Get("http://" + p.MetricsAddr + "/metrics")
	if err != nil {
		return 0, err
	}
	defer func() { _ = resp.Body.Close() }()
	var sum float64
	s := bufio.NewScanner(resp.Body)
	s.Buffer(make([]byte, 1<<20), 1<<20)
	for s.Scan() {
		line := s.Text()
		if !strings.HasPrefix(line, name+"{") && !strings.HasPrefix(line, name+" ") {
			continue
		}
		matches := true
		for _, l := range labels {
			if !strings.Contains(line, l) {
				matches = false
			}
		}
		if !matches {
			continue
		}
		v, err := strconv.ParseFloat(line[strings.LastIndex(line, " ")+1:], 64)
		if err != nil {
			return 0, err
		}
		sum += v
	}
	return sum, s.Err()
}
