//go:build linux

package node

import (
	"fmt"
	"path/filepath"
)

// containerdConfig keeps containerd's root, state, socket, runc state and
// CNI configuration in the work directory. restrict_oom_score_adj: runc
// cannot raise oom_score_adj without CAP_SYS_RESOURCE, which root lacks on
// some virtual machines ("can't get final child's PID from pipe: EOF").
func containerdConfig(o Options) string {
	d := func(parts ...string) string { return filepath.Join(append([]string{o.Dir, "containerd"}, parts...)...) }
	return fmt.Sprintf(`version = 2
root = %q
state = %q

[grpc]
  address = %q

[ttrpc]
  address = %q

[plugins."io.containerd.internal.v1.opt"]
  path = %q

[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = %q
  restrict_oom_score_adj = true
  enable_selinux = false
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
        SystemdCgroup = false
        Root = %q
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = %q
    conf_dir = %q
    max_conf_num = 1
`, d("root"), d("state"), containerdSocket(o), containerdSocket(o)+".ttrpc", d("opt"),
		PauseImage, d("runc"), o.CNIBinDir, filepath.Join(o.Dir, "cni", "net.d"))
}

// cniConfig gives each Pod an address on the node's bridge, which is its
// gateway to the node (and through kube-proxy's rules to Services). The
// bridge is in the node's network namespace and nothing masquerades: Pods
// reach the node, each other and Services, and nothing outside.
func cniConfig(o Options) string {
	return fmt.Sprintf(`{
  "cniVersion": "1.0.0",
  "name": "problemhook-e2e",
  "plugins": [
    {
      "type": "bridge",
      "bridge": %q,
      "isGateway": true,
      "ipMasq": false,
      "hairpinMode": true,
      "ipam": {"type": "host-local", "ranges": [[{"subnet": %q}]], "routes": [{"dst": "0.0.0.0/0"}], "dataDir": %q}
    },
    {"type": "loopback"}
  ]
}
`, o.Bridge, o.Subnet, filepath.Join(o.Dir, "cni", "ipam"))
}

// kubeletConfig binds the kubelet to loopback, keeps it out of iptables,
// lets it run on cgroup v1 and with swap, never collects the imported
// images (they cannot be pulled again) and evicts only when the disk is
// nearly full.
func kubeletConfig(o Options, port string) string {
	pki := func(f string) string { return filepath.Join(o.Dir, "pki", f) }
	return fmt.Sprintf(`apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
address: 127.0.0.1
port: %s
readOnlyPort: 0
healthzPort: 0
containerRuntimeEndpoint: unix://%s
tlsCertFile: %q
tlsPrivateKeyFile: %q
authentication:
  anonymous: {enabled: false}
  webhook: {enabled: true}
  x509: {clientCAFile: %q}
authorization:
  mode: Webhook
cgroupDriver: cgroupfs
failCgroupV1: false
failSwapOn: false
makeIPTablesUtilChains: false
imageGCHighThresholdPercent: 100
imageGCLowThresholdPercent: 99
evictionHard:
  memory.available: 100Mi
  nodefs.available: 1%%
  nodefs.inodesFree: 1%%
  imagefs.available: 1%%
podLogsDir: %q
serializeImagePulls: false
syncFrequency: 5s
fileCheckFrequency: 5s
nodeStatusUpdateFrequency: 5s
`, port, containerdSocket(o), pki("kubelet-serving.crt"), pki("kubelet-serving.key"), pki("ca.crt"), filepath.Join(o.Dir, "pod-logs"))
}

// kubeProxyConfig runs kube-proxy in nftables mode, the mode this kernel
// supports (it has no IPVS, and nftables built in), in the node's network
// namespace. Its conntrack settings stay 0, which leaves the kernel's
// alone: the table size cannot be written from a network namespace, as in
// kind. Health and metrics listen on the namespace's loopback.
func kubeProxyConfig(o Options) string {
	return fmt.Sprintf(`apiVersion: kubeproxy.config.k8s.io/v1alpha1
kind: KubeProxyConfiguration
mode: nftables
clientConnection:
  kubeconfig: %q
hostnameOverride: %s
clusterCIDR: %s
bindAddress: 0.0.0.0
healthzBindAddress: 127.0.0.1:%d
metricsBindAddress: 127.0.0.1:10249
nftables:
  minSyncPeriod: %s
conntrack:
  maxPerCore: 0
  min: 0
  tcpEstablishedTimeout: 0s
  tcpCloseWaitTimeout: 0s
`, filepath.Join(o.Dir, "node-admin.kubeconfig"), NodeName, o.Subnet, kubeProxyHealthzPort, kubeProxyMinSyncPeriod)
}

// kubeProxyMinSyncPeriod is how soon after a sync kube-proxy writes its
// rules again at the earliest. Its default is 1 s; a busy cluster's
// kube-proxies lag further behind its endpoints. 3 s here means that a
// replica that stops listening the moment it is told to stop still gets
// new connections for a while, as it would there: a drain is needed.
const kubeProxyMinSyncPeriod = "3s"

// kubeProxyHealthzPort is where kube-proxy says, in the node's namespace,
// whether its rules are in place.
const kubeProxyHealthzPort = 10256

// auditPolicy records every request of a ServiceAccount, without bodies:
// who asked for what, and how the API server answered. A test reads it to
// prove that an installed operator's ServiceAccount was never refused, and
// which of its rights it used.
const auditPolicy = `apiVersion: audit.k8s.io/v1
kind: Policy
omitStages: [RequestReceived]
rules:
- level: Metadata
  userGroups: ["system:serviceaccounts"]
- level: None
`

// AuditLog is the API server's audit log of the node in dir: one JSON
// event per line.
func AuditLog(dir string) string { return filepath.Join(dir, "logs", "audit.log") }
