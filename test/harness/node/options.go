// Package node brings up a real single-node Kubernetes cluster on this
// machine, in a network namespace of its own, under one work directory:
// etcd, kube-apiserver, kube-controller-manager, kube-scheduler, a kubelet
// and kube-proxy built from Go modules, containerd and runc from Debian's
// packages, and two images made offline. Its Pods really run, and reach
// the API server and each other through Services. The host reaches the API
// server on its loopback. Down undoes everything Up did to the host, also
// after a failed Up or a killed kubelet.
package node

import (
	"io"
	"path/filepath"

	"github.com/problemhook/problemhook/test/harness/controlplane"
)

// NodeName is the name the kubelet registers: the API server reaches the
// kubelet (for Pod logs) by it.
const NodeName = "localhost"

// Options says where the node's parts are and where it lives.
type Options struct {
	// Dir is the node's work directory: everything it writes goes there,
	// but for the hostPaths.
	Dir string
	// Assets holds etcd and the Kubernetes binaries (hack/control-plane.sh).
	Assets string
	// PauseBinary is the static program of the pod sandbox image.
	PauseBinary string
	// Busybox is a static busybox, the root of the test image.
	Busybox string
	// BusyboxAliases are further names the busybox image is known by, so
	// that Pods naming an image of a registry this node cannot reach
	// (busybox:1.36) run it instead.
	BusyboxAliases []string
	// Tool is the node command (hack/node), which the node runs as the
	// forwarder from the host's loopback to its API server.
	Tool string
	// CNIBinDir holds the bridge, host-local and loopback CNI plugins.
	CNIBinDir string
	// Bridge is the name of the Pods' bridge; it must not exist yet.
	Bridge string
	// Subnet is where Pod addresses come from, inside the node's network
	// namespace. Nothing on the host routes to it.
	Subnet string
	// Log receives one line per phase, with its duration.
	Log io.Writer
	// ControlPlaneOnly starts etcd and kube-apiserver alone: no root, no
	// containerd, no kubelet, nothing done to the host. Its programs can be
	// stopped and started again (StopProgram, StartProgram), as the
	// reliability drills do to the API server.
	ControlPlaneOnly bool
}

// Defaults fills in what o leaves empty.
func (o Options) Defaults() Options {
	if o.Busybox == "" {
		o.Busybox = "/bin/busybox"
	}
	if o.CNIBinDir == "" {
		o.CNIBinDir = "/usr/lib/cni"
	}
	if o.Bridge == "" {
		o.Bridge = "phe2e0"
	}
	if o.Subnet == "" {
		o.Subnet = "10.244.0.0/24"
	}
	if o.Log == nil {
		o.Log = io.Discard
	}
	if o.Tool == "" {
		o.Tool = filepath.Join(controlplane.RepoRoot(), "bin", "node")
	}
	return o
}

// AdminKubeconfig is the kubeconfig of a cluster admin (system:masters) of
// the node in dir.
func AdminKubeconfig(dir string) string { return filepath.Join(dir, "admin.kubeconfig") }

// The images the node has, imported offline: nothing is ever pulled.
const (
	// BusyboxImage is a root filesystem of busybox-static and its applets,
	// for test Jobs. Pods must use imagePullPolicy: Never or IfNotPresent.
	BusyboxImage = "problemhook.local/e2e/busybox:1"
	// PauseImage is the pod sandbox: a static program that waits for
	// SIGTERM and reaps the children it inherits.
	PauseImage = "problemhook.local/e2e/pause:1"
)

// Packages names the Debian packages that provide what the node runs
// besides the Kubernetes binaries built from Go modules.
const Packages = "containerd runc containernetworking-plugins busybox-static nftables"
