// Command local-run is what `make run` runs: the manager against the
// cluster of KUBECONFIG when one is reachable, and otherwise against an
// embedded control plane (kube-apiserver and etcd on this machine) with
// the CRDs and config/samples applied. Ctrl-C stops everything it started.
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"syscall"
	"time"

	"k8s.io/client-go/discovery"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/problemhook/problemhook/internal/controlplane"
	"github.com/problemhook/problemhook/internal/manifests"
)

func main() {
	var lr localRun
	flag.StringVar(&lr.manager, "manager", "bin/manager", "The manager binary to run.")
	flag.StringVar(&lr.root, "root", ".", "The problemhook source tree: config/ is read from it.")
	flag.StringVar(&lr.kubeconfig, "local-kubeconfig", filepath.Join("bin", "local", "kubeconfig"), "Where to write the kubeconfig of the embedded control plane.")
	flag.StringVar(&lr.receiverAddr, "receiver-bind-address", "127.0.0.1:9292", "Where the manager's receiver listens.")
	flag.StringVar(&lr.probeAddr, "health-probe-bind-address", "127.0.0.1:8081", "Where the manager's probes listen.")
	flag.StringVar(&lr.metricsAddr, "metrics-bind-address", "127.0.0.1:8080", "Where the manager's metrics listen.")
	flag.Parse()
	lr.out = os.Stdout
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := lr.run(ctx)
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "local-run:", err)
		os.Exit(1)
	}
}

// localRun runs the manager in the foreground, on a cluster it finds or one it starts.
type localRun struct {
	manager, root, kubeconfig            string
	receiverAddr, probeAddr, metricsAddr string
	out                                  io.Writer
}

func (lr *localRun) run(ctx context.Context) error {
	if cfg, kubeconfig, ok := lr.reachableCluster(); ok {
		fmt.Fprintf(lr.out, "Using the cluster of %s\n", kubeconfig)
		if err := apply(ctx, cfg, filepath.Join(lr.root, "config", "crd", "bases")); err != nil {
			return err
		}
		return lr.runManager(ctx, kubeconfig, false)
	}

	fmt.Fprintln(lr.out, "No reachable cluster: starting an embedded control plane (kube-apiserver and etcd)")
	env, err := controlplane.Start(lr.root)
	if err != nil {
		return err
	}
	defer func() {
		fmt.Fprintln(lr.out, "Stopping the control plane")
		if err := env.Stop(); err != nil {
			fmt.Fprintln(os.Stderr, "local-run: stopping the control plane:", err)
		}
	}()
	if err := env.WriteKubeconfig(lr.kubeconfig); err != nil {
		return err
	}
	if err := apply(ctx, env.Config, filepath.Join(lr.root, "config", "samples")); err != nil {
		return err
	}
	return lr.runManager(ctx, lr.kubeconfig, true)
}

// reachableCluster loads the kubeconfig client-go would use and reports
// whether its API server answers.
func (lr *localRun) reachableCluster() (*rest.Config, string, bool) {
	rules := clientcmd.NewDefaultClientConfigLoadingRules()
	kubeconfig := os.Getenv("KUBECONFIG")
	if kubeconfig == "" {
		kubeconfig = rules.GetDefaultFilename()
	}
	cfg, err := clientcmd.NewNonInteractiveDeferredLoadingClientConfig(rules, nil).ClientConfig()
	if err != nil {
		return nil, "", false
	}
	cfg.Timeout = 3 * time.Second
	dc, err := discovery.NewDiscoveryClientForConfig(cfg)
	if err != nil {
		return nil, "", false
	}
	if _, err := dc.ServerVersion(); err != nil {
		fmt.Fprintf(lr.out, "The cluster of %s is not reachable (%v)\n", kubeconfig, err)
		return nil, "", false
	}
	return cfg, kubeconfig, true
}

// apply server-side applies every manifest in dir.
func apply(ctx context.Context, cfg *rest.Config, dir string) error {
	objs, err := manifests.ReadDir(dir)
	if err != nil {
		return err
	}
	return manifests.Apply(ctx, cfg, objs)
}

// runManager runs the manager in the foreground until ctx ends or it exits.
func (lr *localRun) runManager(ctx context.Context, kubeconfig string, local bool) error {
	cmd := exec.Command(lr.manager,
		"--kubeconfig", kubeconfig,
		"--receiver-bind-address", lr.receiverAddr,
		"--receiver-url", "http://"+lr.receiverAddr,
		"--metrics-bind-address", lr.metricsAddr,
		"--health-probe-bind-address", lr.probeAddr,
	)
	cmd.Stdout, cmd.Stderr = lr.out, os.Stderr
	// Its own process group: Ctrl-C reaches local-run, which stops the
	// manager first and the control plane after it.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("starting %s: %w", lr.manager, err)
	}
	var waitErr error
	exited := make(chan struct{})
	go func() { waitErr = cmd.Wait(); close(exited) }()
	go lr.announce(ctx, kubeconfig, local)
	select {
	case <-exited:
		return fmt.Errorf("manager exited: %w", waitErr)
	case <-ctx.Done():
		// The manager's exit status after SIGTERM says nothing new.
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(30 * time.Second):
			_ = cmd.Process.Kill()
			<-exited
		}
		return nil
	}
}

// announce prints how to try problemhook once the receiver is ready.
func (lr *localRun) announce(ctx context.Context, kubeconfig string, local bool) {
	for ctx.Err() == nil {
		resp, err := http.Get("http://" + lr.probeAddr + "/readyz")
		if err == nil {
			_ = resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				break
			}
		}
		time.Sleep(500 * time.Millisecond)
	}
	if ctx.Err() != nil {
		return
	}
	receiverURL := "http://" + lr.receiverAddr
	if !local {
		fmt.Fprintf(lr.out, "\nproblemhook is receiving on %s/hooks/<namespace>/<target>.\n\n", receiverURL)
		return
	}
	fmt.Fprintf(lr.out, `
problemhook is running on an embedded control plane. Send a notification:

  curl -u dynatrace:change-me -H 'Content-Type: application/json' \
    -d '{"State":"OPEN","ProblemID":"1234","PID":"-6150203450926486413_1669823466223V2","ProblemTitle":"CPU saturation","ProblemSeverity":"RESOURCE_CONTENTION","ProblemImpact":"INFRASTRUCTURE"}' \
    %s/hooks/problemhook-demo/dynatrace

and see what it stored:

  bin/kubectl --kubeconfig %s get problemevents -A

Ctrl-C stops the manager and the control plane.

`, receiverURL, kubeconfig)
}
