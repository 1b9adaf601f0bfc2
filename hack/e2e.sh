#!/usr/bin/env bash
# `make e2e`: brings a real single-node cluster up on this machine
# (test/harness/node), runs the end-to-end tests against it with the manager
# as a process on the host, then on a fresh node installs problemhook as a
# user does (its image and dist/install.yaml), on another installs and
# uninstalls it with its Helm chart, on another upgrades it from the
# previous release (hack/previous-release), and takes the node down again, also
# when a test fails or on Ctrl-C. The node runs in a network namespace of its own. It
# then checks that the host is as it was: network links and routes, mounts,
# iptables and nftables rules, forwarding sysctls, programs and the node's
# host paths.
#
# Needs Linux, root, cgroups, overlayfs and Debian's containerd, runc,
# containernetworking-plugins, busybox-static and nftables (`make e2e`
# installs them).
#
# `hack/e2e.sh --preflight` only says whether this machine can run it: it
# exits 0, or prints why not and exits 1.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

preflight() {
	if [ "$(uname -s)" != Linux ]; then
		echo "the node runs on Linux only, this is $(uname -s)"
	elif [ "$(id -u)" != 0 ]; then
		echo "the node needs root (cgroups, mounts, network namespaces)"
	elif [ ! -e /sys/fs/cgroup/cgroup.controllers ] && ! { [ -e /sys/fs/cgroup/memory/cgroup.procs ] && [ -e /sys/fs/cgroup/pids/cgroup.procs ] && [ -e /sys/fs/cgroup/cpu/cgroup.procs ]; }; then
		echo "no usable cgroups: neither cgroup v2 nor the v1 cpu, memory and pids controllers are mounted at /sys/fs/cgroup"
	elif ! grep -qw overlay /proc/filesystems && ! modprobe overlay 2>/dev/null; then
		echo "no overlayfs, which containerd's snapshotter needs"
	elif ! dpkg -s containerd runc containernetworking-plugins busybox-static nftables >/dev/null 2>&1 && ! command -v apt-get >/dev/null; then
		echo "containerd, runc, containernetworking-plugins, busybox-static and nftables are not installed, and there is no apt-get to install them"
	else
		return 0
	fi
	return 1
}
if [ "${1:-}" = --preflight ]; then
	preflight
	exit
fi
if ! why="$(preflight)"; then
	echo "e2e: cannot run here: ${why}" >&2
	exit 1
fi

dir="${E2E_NODE_DIR:-/tmp/problemhook-node}"
artifacts="${PWD}/bin/e2e"
phase() { printf 'e2e: %-44s %5ss\n' "$1" "$(($(date +%s) - $2))"; }

# `make node-assets` has built these.
assets="$(hack/control-plane.sh kube-apiserver etcd kube-controller-manager kube-scheduler kubelet kube-proxy)"
mkdir -p "${artifacts}"

# A node left behind by a run that was killed outright goes first.
bin/node down --dir "${dir}"
rm -rf "${artifacts}/node-logs" "${artifacts}/install-node-logs" "${artifacts}/helm-node-logs" "${artifacts}/upgrade-node-logs" "${artifacts}/manager.log"
bin/node snapshot --out "${artifacts}/host-before.json"

finish() {
	local rc=$?
	trap - EXIT INT TERM
	local t
	t=$(date +%s)
	bin/node down --dir "${dir}" --keep-logs "${artifacts}/node-logs" || rc=1
	bin/node compare --before "${artifacts}/host-before.json" || rc=1
	phase "down and host check" "$t"
	if [ "$rc" != 0 ]; then
		echo "e2e: FAILED; the node's logs are in ${artifacts}/node-logs, the manager's in ${artifacts}/manager.log"
	fi
	exit "$rc"
}
trap finish EXIT
trap 'exit 130' INT TERM

t=$(date +%s)
kubeconfig="$(bin/node up --dir "${dir}" --assets "${assets}" --pause "${artifacts}/pause")"
phase "node up" "$t"

t=$(date +%s)
E2E_KUBECONFIG="${kubeconfig}" E2E_NODE_DIR="${dir}" E2E_MANAGER="${PWD}/bin/manager" E2E_ARTIFACTS="${artifacts}" \
	go test -tags e2e -count=1 -timeout 15m -v ./test/e2e
phase "tests" "$t"

# problemhook as a user installs it, on a node of its own: the image `make
# image` built and dist/install.yaml, the manager as two Pods.
t=$(date +%s)
bin/node down --dir "${dir}" --keep-logs "${artifacts}/node-logs"
kubeconfig="$(bin/node up --dir "${dir}" --assets "${assets}" --pause "${artifacts}/pause")"
E2E_KUBECONFIG="${kubeconfig}" E2E_NODE_DIR="${dir}" E2E_IMAGE="${PWD}/bin/image.tar" \
	go test -tags e2e -count=1 -timeout 15m -v -run '^TestInstalledAsAUserInstallsIt$' ./test/install
phase "installed as a user installs it" "$t"

# The same image installed by Helm's install action from dist/chart, and
# uninstalled, on a fresh node: nothing of the kubectl install may help it.
# Only test/install: other packages' TestMain would run too, and test/e2e's
# installs the CRDs that the chart must own.
t=$(date +%s)
bin/node down --dir "${dir}" --keep-logs "${artifacts}/install-node-logs"
kubeconfig="$(bin/node up --dir "${dir}" --assets "${assets}" --pause "${artifacts}/pause")"
E2E_KUBECONFIG="${kubeconfig}" E2E_NODE_DIR="${dir}" E2E_IMAGE="${PWD}/bin/image.tar" \
	go test -tags e2e -count=1 -timeout 15m -v -run '^TestInstalledWithHelm$' ./test/install
phase "installed with Helm, and uninstalled" "$t"

# The previous release, built from its own commit (and kept in
# bin/previous), installed and upgraded to this commit on a fresh node,
# as docs/install.md says: the new image imported, dist/install.yaml
# applied, while Jobs run, messages wait and notifications stream in.
t=$(date +%s)
previous="$(hack/previous-release.sh)"
bin/node down --dir "${dir}" --keep-logs "${artifacts}/helm-node-logs"
kubeconfig="$(bin/node up --dir "${dir}" --assets "${assets}" --pause "${artifacts}/pause")"
E2E_KUBECONFIG="${kubeconfig}" E2E_NODE_DIR="${dir}" E2E_IMAGE="${PWD}/bin/image.tar" E2E_PREVIOUS="${previous}" \
	go test -tags e2e -count=1 -timeout 15m -v -run '^TestUpgradeFromPreviousRelease$' ./test/install
phase "upgraded from the previous release" "$t"

# `make run NODE=1` brings up a node of its own, in the same place.
t=$(date +%s)
bin/node down --dir "${dir}" --keep-logs "${artifacts}/upgrade-node-logs"
E2E_NODE_DIR="${dir}" E2E_PAUSE="${artifacts}/pause" KUBEBUILDER_ASSETS="${assets}" \
	go test -tags e2e -count=1 -timeout 10m -v -run '^TestMakeRunOnANode$' ./test/localrun
phase "make run NODE=1" "$t"
