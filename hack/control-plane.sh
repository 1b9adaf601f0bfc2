#!/usr/bin/env bash
# Builds kube-apiserver and etcd from the Go module proxy at pinned versions
# and caches them under bin/k8s/<version>/, the directory envtest reads as
# KUBEBUILDER_ASSETS. No prebuilt binaries are downloaded: everything comes
# from Go modules, so this works wherever `go` and the module proxy do.
#
# Usage: hack/control-plane.sh [component...]
#   components: kube-apiserver etcd (default), kubectl, kube-controller-manager,
#   kube-scheduler, kubelet, kube-proxy
# Prints the asset directory on stdout; progress goes to stderr.
set -euo pipefail

KUBE_VERSION="${KUBE_VERSION:-v1.36.3}"
ETCD_VERSION="${ETCD_VERSION:-v3.6.8}"

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
assets="${root}/bin/k8s/${KUBE_VERSION}-etcd-${ETCD_VERSION}"
components=("$@")
[ ${#components[@]} -gt 0 ] || components=(kube-apiserver etcd)

log() { echo "control-plane: $*" >&2; }

missing=()
for c in "${components[@]}"; do
	[ -x "${assets}/${c}" ] || missing+=("$c")
done
if [ ${#missing[@]} -eq 0 ]; then
	echo "${assets}"
	exit 0
fi

mkdir -p "${assets}"
work="$(mktemp -d)"
trap 'rm -rf "${work}"' EXIT
export GOTOOLCHAIN=local CGO_ENABLED=0 GOFLAGS=-mod=mod

build_etcd() {
	log "building etcd ${ETCD_VERSION} (about 30s cold)"
	mkdir -p "${work}/etcd"
	cd "${work}/etcd"
	go mod init problemhook.local/etcd >/dev/null 2>&1
	go get "go.etcd.io/etcd/server/v3@${ETCD_VERSION}" >&2
	go build -trimpath -o "${assets}/etcd.tmp" go.etcd.io/etcd/server/v3
	mv "${assets}/etcd.tmp" "${assets}/etcd"
}

build_kube() {
	local pkgs=("$@")
	log "building ${pkgs[*]} ${KUBE_VERSION} from k8s.io/kubernetes (a few minutes the first time, cached after)"
	mkdir -p "${work}/kube"
	cd "${work}/kube"
	# k8s.io/kubernetes replaces its staging repositories with ./staging/...;
	# point each of them at its published v0.Y.Z module instead.
	local staging="v0${KUBE_VERSION#v1}"
	local gomod
	gomod="$(go mod download -json "k8s.io/kubernetes@${KUBE_VERSION}" | sed -n 's/.*"GoMod": "\(.*\)",/\1/p')"
	{
		echo "module problemhook.local/kube"
		echo
		echo "go $(go env GOVERSION | sed 's/^go//')"
		echo
		echo "require k8s.io/kubernetes ${KUBE_VERSION}"
		echo
		echo "replace ("
		sed -n 's#^[[:space:]]*\(k8s.io/[a-z0-9-]*\) => ./staging/.*#\t\1 => \1 '"${staging}"'#p' "${gomod}"
		echo ")"
	} >go.mod
	{
		echo "//go:build tools"
		echo
		echo "package tools"
		echo
		echo "import ("
		for p in "${pkgs[@]}"; do echo "	_ \"k8s.io/kubernetes/cmd/${p}\""; done
		echo ")"
	} >tools.go
	go mod tidy >&2
	local minor="${KUBE_VERSION#v1.}"
	minor="${minor%%.*}"
	local ldflags="-s -w -X k8s.io/component-base/version.gitVersion=${KUBE_VERSION} -X k8s.io/component-base/version.gitMajor=1 -X k8s.io/component-base/version.gitMinor=${minor}"
	for p in "${pkgs[@]}"; do
		go build -trimpath -ldflags "${ldflags}" -o "${assets}/${p}.tmp" "k8s.io/kubernetes/cmd/${p}"
		mv "${assets}/${p}.tmp" "${assets}/${p}"
	done
}

kube=()
for c in "${missing[@]}"; do
	case "$c" in
	etcd) (build_etcd) ;;
	kube-apiserver | kube-controller-manager | kube-scheduler | kubelet | kube-proxy | kubectl) kube+=("$c") ;;
	*) log "unknown component $c"; exit 2 ;;
	esac
done
[ ${#kube[@]} -eq 0 ] || (build_kube "${kube[@]}")

log "ready in ${assets}"
echo "${assets}"
