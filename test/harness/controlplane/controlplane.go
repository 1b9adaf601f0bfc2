// Package controlplane starts a real kube-apiserver and etcd on this
// machine, with problemhook's CRDs installed: for the tests, and for
// `make run` when no cluster is reachable.
package controlplane

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"

	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/envtest"

	"github.com/problemhook/problemhook/test/harness/manifests"
)

// Environment is a running control plane.
type Environment struct {
	env *envtest.Environment
	// Config is an admin's client configuration.
	Config *rest.Config
}

// RepoRoot is the root of the problemhook source tree this package was built from.
func RepoRoot() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "..", "..", "..")
}

// Start starts etcd and kube-apiserver from the directory KUBEBUILDER_ASSETS
// names (building them with hack/control-plane.sh when it is unset) and
// installs problemhook's API from root: the CRDs and the admission
// policies (manifests.APIDirs).
func Start(root string) (*Environment, error) {
	assets := os.Getenv("KUBEBUILDER_ASSETS")
	if assets == "" {
		var err error
		if assets, err = buildAssets(root); err != nil {
			return nil, err
		}
	}
	env := &envtest.Environment{
		CRDDirectoryPaths:     []string{filepath.Join(root, "config", "crd", "bases")},
		ErrorIfCRDPathMissing: true,
		BinaryAssetsDirectory: assets,
	}
	cfg, err := env.Start()
	if err != nil {
		return nil, fmt.Errorf("starting kube-apiserver and etcd from %s: %w", assets, err)
	}
	// envtest installs the CRDs; the admission policies that go with them
	// are the rest of the API.
	if err := manifests.InstallAPI(context.Background(), cfg, root); err != nil {
		_ = env.Stop()
		return nil, err
	}
	return &Environment{env: env, Config: cfg}, nil
}

// EtcdURL is where etcd takes its clients: the benchmark reads its state
// and compacts it through its JSON gateway.
func (e *Environment) EtcdURL() string { return e.env.ControlPlane.Etcd.URL.String() }

// Stop stops the API server and etcd and removes their data.
func (e *Environment) Stop() error { return e.env.Stop() }

// WriteKubeconfig writes a kubeconfig for an admin (system:masters) to path.
func (e *Environment) WriteKubeconfig(path string) error {
	return e.WriteUserKubeconfig(path, "problemhook-admin", "system:masters")
}

// WriteUserKubeconfig writes a kubeconfig for the user name in groups to
// path. The API server authorizes it with RBAC like any other user: named
// system:serviceaccount:<ns>:<sa>, in the groups system:serviceaccounts and
// system:serviceaccounts:<ns>, it is that ServiceAccount.
func (e *Environment) WriteUserKubeconfig(path, name string, groups ...string) error {
	user, err := e.env.AddUser(envtest.User{Name: name, Groups: groups}, nil)
	if err != nil {
		return fmt.Errorf("adding user %s: %w", name, err)
	}
	kubeconfig, err := user.KubeConfig()
	if err != nil {
		return fmt.Errorf("rendering kubeconfig: %w", err)
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	return os.WriteFile(path, kubeconfig, 0o600)
}

// buildAssets runs hack/control-plane.sh, which builds (once) and prints
// the directory holding kube-apiserver and etcd.
func buildAssets(root string) (string, error) {
	var stdout, stderr bytes.Buffer
	cmd := exec.Command(filepath.Join(root, "hack", "control-plane.sh"))
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("building the control plane with hack/control-plane.sh: %w\n%s", err, stderr.String())
	}
	return strings.TrimSpace(stdout.String()), nil
}

// FreeLoopbackAddr returns a 127.0.0.1 address whose port is free at the
// time of the call, for a process started later to listen on. The port is
// below the kernel's ephemeral range (32768 and up on Linux): a port from
// that range can be taken, before the process binds it, by any outgoing
// connection, and tests open many.
func FreeLoopbackAddr() (string, error) {
	for range 100 {
		addr := fmt.Sprintf("127.0.0.1:%d", 20000+rand.IntN(12000))
		l, err := net.Listen("tcp", addr)
		if err != nil {
			continue
		}
		_ = l.Close()
		return addr, nil
	}
	return "", errors.New("no free port between 20000 and 32000 on 127.0.0.1")
}
