package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/problemhook/problemhook/internal/controlplane"
)

// managerProcess is the manager binary running against the control plane,
// as it runs in a Pod: its own process, so that its memory is its own.
type managerProcess struct {
	binary, kubeconfig, logPath string
	receiverAddr, dashboardAddr string
	metricsAddr, probeAddr      string
	pprofAddr                   string
	cmd                         *exec.Cmd
	exited                      chan struct{}
}

func startManager(ctx context.Context, binary, kubeconfig, out string) (*managerProcess, error) {
	m := &managerProcess{binary: binary, kubeconfig: kubeconfig, logPath: filepath.Join(out, "manager.log")}
	for _, addr := range []*string{&m.receiverAddr, &m.dashboardAddr, &m.metricsAddr, &m.probeAddr, &m.pprofAddr} {
		var err error
		if *addr, err = controlplane.FreeLoopbackAddr(); err != nil {
			return nil, err
		}
	}
	return m, m.start(ctx)
}

// start runs the manager and waits until it is ready.
func (m *managerProcess) start(ctx context.Context) error {
	logFile, err := os.OpenFile(m.logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	m.cmd = exec.Command(m.binary,
		"--kubeconfig", m.kubeconfig,
		"--receiver-bind-address", m.receiverAddr,
		"--receiver-url", "http://"+m.receiverAddr,
		"--dashboard-bind-address", m.dashboardAddr,
		"--metrics-bind-address", m.metricsAddr,
		"--health-probe-bind-address", m.probeAddr,
		"--pprof-bind-address", m.pprofAddr,
	)
	m.cmd.Stdout, m.cmd.Stderr = logFile, logFile
	m.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := m.cmd.Start(); err != nil {
		_ = logFile.Close()
		return fmt.Errorf("starting %s: %w (build it with make build)", m.binary, err)
	}
	m.exited = make(chan struct{})
	go func() { _ = m.cmd.Wait(); _ = logFile.Close(); close(m.exited) }()
	deadline := time.Now().Add(60 * time.Second)
	for {
		select {
		case <-m.exited:
			return fmt.Errorf("manager exited; its log is %s", m.logPath)
		case <-ctx.Done():
			return ctx.Err()
		default:
		}
		resp, err := http.Get("http://" + m.probeAddr + "/readyz")
		if err == nil {
			_ = resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("manager not ready after 60s; its log is %s", m.logPath)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// stop stops the manager as Kubernetes would, with SIGTERM.
func (m *managerProcess) stop() {
	if m.cmd == nil || m.cmd.Process == nil {
		return
	}
	_ = m.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-m.exited:
	case <-time.After(30 * time.Second):
		_ = m.cmd.Process.Kill()
		<-m.exited
	}
}

// restart stops the manager and starts it again.
func (m *managerProcess) restart(ctx context.Context) (time.Time, error) {
	m.stop()
	started := time.Now()
	return started, m.start(ctx)
}

// rss is the manager's resident memory, in bytes.
func (m *managerProcess) rss() (int64, error) {
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", m.cmd.Process.Pid))
	if err != nil {
		return 0, err
	}
	defer func() { _ = f.Close() }()
	s := bufio.NewScanner(f)
	for s.Scan() {
		if rest, ok := strings.CutPrefix(s.Text(), "VmRSS:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 10, 64)
			return kb << 10, err
		}
	}
	return 0, errors.New("no VmRSS in /proc/<pid>/status")
}

// metric sums the samples of the metric name whose labels contain every
// label="value" pair given, from the manager's /metrics.
func (m *managerProcess) metric(name string, labels ...string) (float64, error) {
	resp, err := http.Get("http://" + m.metricsAddr + "/metrics")
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

// profile writes a CPU profile of the manager taken while work runs.
func (m *managerProcess) profile(path string, work func() error) error {
	seconds := 5
	done := make(chan error, 1)
	go func() {
		resp, err := http.Get(fmt.Sprintf("http://%s/debug/pprof/profile?seconds=%d", m.pprofAddr, seconds))
		if err != nil {
			done <- err
			return
		}
		defer func() { _ = resp.Body.Close() }()
		f, err := os.Create(path)
		if err != nil {
			done <- err
			return
		}
		_, err = io.Copy(f, resp.Body)
		done <- errors.Join(err, f.Close())
	}()
	return errors.Join(work(), <-done)
}
