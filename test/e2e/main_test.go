//go:build e2e

// Package e2e proves on a real node (test/e2e/node) that what problemhook
// does ends in containers that really ran. `make e2e` brings the node up,
// runs these tests with the manager as a process on the host, and takes
// the node down. Run it as root on Linux; see the README.
package e2e

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/problemhook/problemhook/internal/controlplane"
	"github.com/problemhook/problemhook/internal/dynatrace/dynatracetest"
	"github.com/problemhook/problemhook/internal/manifests"
	"github.com/problemhook/problemhook/internal/scheme"
)

// The suite's shared parts: the node's API server, one fake Dynatrace,
// and one manager process.
var (
	cfg  *rest.Config
	kube client.Client
	cs   *kubernetes.Clientset
	dt   *dynatracetest.Server
	mgr  *managerProcess
)

// dtToken is the fake Dynatrace's API token, with read and write scopes.
const dtToken = "e2e-dynatrace-token"

func TestMain(m *testing.M) {
	os.Exit(run(m))
}

func run(m *testing.M) int {
	kubeconfig, manager := os.Getenv("E2E_KUBECONFIG"), os.Getenv("E2E_MANAGER")
	if kubeconfig == "" || manager == "" {
		fmt.Fprintln(os.Stderr, "E2E_KUBECONFIG (the node's admin kubeconfig) and E2E_MANAGER (the manager binary) must be set: run these tests with `make e2e`")
		return 2
	}
	var err error
	if cfg, err = clientcmd.BuildConfigFromFlags("", kubeconfig); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	if kube, err = client.New(cfg, client.Options{Scheme: scheme.New()}); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	if cs, err = kubernetes.NewForConfig(cfg); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	crds, err := manifests.ReadDir(filepath.Join(controlplane.RepoRoot(), "config", "crd", "bases"))
	if err == nil {
		err = manifests.Apply(context.Background(), cfg, crds)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "installing the CRDs:", err)
		return 1
	}
	dt = dynatracetest.NewServer(dynatracetest.ServerOptions{})
	defer dt.Close()
	dt.AddToken(dtToken, dynatracetest.ScopeRead, dynatracetest.ScopeWrite)

	artifacts := os.Getenv("E2E_ARTIFACTS")
	if artifacts == "" {
		artifacts = os.TempDir()
	}
	mgr, err = newManagerProcess(manager, kubeconfig, filepath.Join(artifacts, "manager.log"))
	if err == nil {
		err = mgr.start()
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "starting the manager:", err)
		return 1
	}
	defer mgr.stop()
	return m.Run()
}

// managerProcess is problemhook's manager running as a process on the
// host, against the node's API server, as an admin.
type managerProcess struct {
	bin, kubeconfig, log string
	receiver, probe      string
	cmd                  *exec.Cmd
	exited               chan struct{}
}

func newManagerProcess(bin, kubeconfig, log string) (*managerProcess, error) {
	receiver, err := controlplane.FreeLoopbackAddr()
	if err != nil {
		return nil, err
	}
	probe, err := controlplane.FreeLoopbackAddr()
	if err != nil {
		return nil, err
	}
	return &managerProcess{bin: bin, kubeconfig: kubeconfig, log: log, receiver: receiver, probe: probe}, nil
}

// start starts the manager, its output appended to the log, and waits
// until it is ready.
func (m *managerProcess) start() error {
	logFile, err := os.OpenFile(m.log, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	defer func() { _ = logFile.Close() }()
	fmt.Fprintf(logFile, "\n===== manager started at %s =====\n", time.Now().Format(time.RFC3339Nano))
	m.cmd = exec.Command(m.bin,
		"--kubeconfig", m.kubeconfig,
		"--receiver-bind-address", m.receiver,
		"--receiver-url", "http://"+m.receiver,
		"--health-probe-bind-address", m.probe,
		"--metrics-bind-address", "0",
		"--dashboard-bind-address", "0",
	)
	m.cmd.Stdout, m.cmd.Stderr = logFile, logFile
	if err := m.cmd.Start(); err != nil {
		return err
	}
	exited := make(chan struct{})
	m.exited = exited
	go func() { _ = m.cmd.Wait(); close(exited) }()
	deadline := time.Now().Add(time.Minute)
	for time.Now().Before(deadline) {
		select {
		case <-exited:
			return fmt.Errorf("the manager exited while starting; its log is %s", m.log)
		case <-time.After(200 * time.Millisecond):
		}
		resp, err := http.Get("http://" + m.probe + "/readyz")
		if err == nil {
			_, _ = io.Copy(io.Discard, resp.Body)
			_ = resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
	}
	return errors.New("the manager was not ready within a minute")
}

// kill ends the manager with SIGKILL: nothing of it runs after.
func (m *managerProcess) kill() {
	_ = m.cmd.Process.Signal(syscall.SIGKILL)
	<-m.exited
}

// stop ends the manager as Kubernetes would, with SIGTERM.
func (m *managerProcess) stop() {
	_ = m.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-m.exited:
	case <-time.After(30 * time.Second):
		m.kill()
	}
}

// webhookURL is where the manager receives notifications for a target.
func (m *managerProcess) webhookURL(namespace, target string) string {
	return "http://" + m.receiver + "/hooks/" + namespace + "/" + target
}
