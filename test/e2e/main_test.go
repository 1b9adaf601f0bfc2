//go:build e2e

// Package e2e proves on a real node (test/harness/node) that what problemhook
// does ends in containers that really ran. `make e2e` brings the node up,
// runs these tests with the manager as a process on the host, and takes
// the node down. Run it as root on Linux; see the README.
package e2e

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/problemhook/problemhook/internal/dynatrace/dynatracetest"
	"github.com/problemhook/problemhook/internal/scheme"
	"github.com/problemhook/problemhook/test/harness/controlplane"
	"github.com/problemhook/problemhook/test/harness/managerproc"
	"github.com/problemhook/problemhook/test/harness/manifests"
)

// The suite's shared parts: the node's API server, one fake Dynatrace,
// and one manager process.
var (
	cfg  *rest.Config
	kube client.Client
	cs   *kubernetes.Clientset
	dt   *dynatracetest.Server
	mgr  *managerproc.Process
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
	if err := manifests.InstallAPI(context.Background(), cfg, controlplane.RepoRoot()); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	dt = dynatracetest.NewServer(dynatracetest.ServerOptions{})
	defer dt.Close()
	dt.AddToken(dtToken, dynatracetest.ScopeRead, dynatracetest.ScopeWrite)

	artifacts := os.Getenv("E2E_ARTIFACTS")
	if artifacts == "" {
		artifacts = os.TempDir()
	}
	// A Pod that cannot start fails its run after podStartTimeout, not
	// the default five minutes.
	mgr, err = managerproc.New(manager, kubeconfig, filepath.Join(artifacts, "manager.log"), "--job-pod-start-timeout="+podStartTimeout.String())
	if err == nil {
		err = mgr.Start(context.Background())
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "starting the manager:", err)
		return 1
	}
	defer mgr.Stop()
	return m.Run()
}

// podStartTimeout is the manager's --job-pod-start-timeout here.
const podStartTimeout = 30 * time.Second

// webhookURL is where the manager receives notifications for a target.
func webhookURL(namespace, target string) string {
	return "http://" + mgr.ReceiverAddr + "/hooks/" + namespace + "/" + target
}
