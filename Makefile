# problemhook: a Kubernetes operator that turns Dynatrace and Guance problem
# notifications into ProblemEvents and runs integrations for them.

SHELL := /usr/bin/env bash -o pipefail
.SHELLFLAGS := -ec

# Pinned tool versions. Tools are built from the Go module proxy into bin/,
# one file per version, so that changing a pin rebuilds only that tool.
CONTROLLER_TOOLS_VERSION ?= v0.23.0
KUSTOMIZE_VERSION ?= v5.8.0
GOLANGCI_LINT_VERSION ?= v2.15.0
# promtool, from the Go module of Prometheus 3.x (v0.316.0 is Prometheus 3.16),
# which checks and tests the alerting rules of config/prometheus.
PROMETHEUS_VERSION ?= v0.316.0
# The control plane that tests and `make run` use (built by hack/control-plane.sh).
export KUBE_VERSION ?= v1.36.3
export ETCD_VERSION ?= v3.6.8

# The release the image and dist/install.yaml are for.
VERSION ?= 0.1.0
IMG ?= ghcr.io/problemhook/problemhook:v$(VERSION)
# How much each fuzz target runs in `make test`: a count of executions
# (about 10 s each on 2 cores), not a duration, since a duration-bounded
# run can fail with "context deadline exceeded" on a loaded machine when
# the fuzzing coordinator's deadline races a busy worker (golang/go#75804).
# Run longer by hand with `make fuzz FUZZTIME=10m`.
FUZZTIME ?= 50000x

LOCALBIN ?= $(CURDIR)/bin
CONTROLLER_GEN ?= $(LOCALBIN)/controller-gen-$(CONTROLLER_TOOLS_VERSION)
KUSTOMIZE ?= $(LOCALBIN)/kustomize-$(KUSTOMIZE_VERSION)
GOLANGCI_LINT ?= $(LOCALBIN)/golangci-lint-$(GOLANGCI_LINT_VERSION)
PROMTOOL ?= $(LOCALBIN)/promtool-$(PROMETHEUS_VERSION)
ENVTEST_ASSETS = $(LOCALBIN)/k8s/$(KUBE_VERSION)-etcd-$(ETCD_VERSION)

export GOTOOLCHAIN ?= local

.PHONY: all
all: build

##@ General

.PHONY: help
help: ## Show this help.
	@awk 'BEGIN {FS = ":.*##"; printf "Usage:\n  make \033[36m<target>\033[0m\n"} /^[a-zA-Z_0-9-]+:.*?##/ { printf "  \033[36m%-18s\033[0m %s\n", $$1, $$2 } /^##@/ { printf "\n\033[1m%s\033[0m\n", substr($$0, 5) } ' $(MAKEFILE_LIST)

##@ Development

.PHONY: manifests
manifests: $(CONTROLLER_GEN) ## Generate the CRDs, the RBAC ClusterRole, the admission policies and the PrometheusRule.
	$(CONTROLLER_GEN) rbac:roleName=manager-role crd:maxDescLen=1024 paths="./..." output:crd:artifacts:config=config/crd/bases
	go run ./hack/crdref -crds config/crd/bases -out docs/reference.md
	go run ./hack/admissionpolicy > config/admission/author_permissions.yaml
	go run ./hack/promrule

.PHONY: generate
generate: $(CONTROLLER_GEN) ## Generate the DeepCopy methods.
	$(CONTROLLER_GEN) object:headerFile="hack/boilerplate.go.txt" paths="./..."

.PHONY: fmt
fmt: ## Run go fmt.
	go fmt ./...

.PHONY: vet
vet: ## Run go vet.
	go vet ./...

# What `make manifests generate build-installer` writes.
GENERATED_PATHS = config/crd/bases config/admission/author_permissions.yaml config/prometheus/prometheusrule.yaml config/rbac/role.yaml $(wildcard api/*/zz_generated.deepcopy.go) docs/reference.md dist/install.yaml dist/chart
generated-digest = find $(GENERATED_PATHS) -type f | sort | xargs sha256sum

.PHONY: verify-generated
verify-generated: $(CONTROLLER_GEN) $(KUSTOMIZE) ## Fail when generated files differ from what the markers and config/ generate.
	@before="$$($(generated-digest))"; \
	$(MAKE) --no-print-directory manifests generate build-installer >/dev/null; \
	after="$$($(generated-digest))"; \
	if [ "$$before" != "$$after" ]; then \
		echo "Generated files were stale; 'make manifests generate build-installer' rewrote them:"; \
		diff <(echo "$$before") <(echo "$$after") || true; exit 1; \
	fi

.PHONY: verify-tracked
verify-tracked: ## Fail when git tracks a build output: an executable binary or a file over 1 MiB.
	go run ./hack/tracked

.PHONY: verify-links
verify-links: ## Fail when a relative link or #anchor in README.md, the other top-level *.md or docs/*.md leads nowhere.
	go run ./hack/doclinks

.PHONY: lint
lint: $(GOLANGCI_LINT) verify-tracked verify-generated verify-links ## Run golangci-lint, and check tracked and generated files and the documentation's links.
	$(GOLANGCI_LINT) run ./...

.PHONY: test
test: manifests generate envtest chromium test-rules ## Run every test (unit and envtest), the alerting rules' tests, and each fuzz target briefly.
	KUBEBUILDER_ASSETS="$(ENVTEST_ASSETS)" go test -p 1 -count=1 ./...
	$(MAKE) fuzz FUZZTIME=$(FUZZTIME)

.PHONY: test-rules
test-rules: $(PROMTOOL) ## Check the alerting rules of config/prometheus and run their tests with promtool.
	$(PROMTOOL) check rules config/prometheus/alerts.yaml
	$(PROMTOOL) test rules config/prometheus/alerts_test.yaml

.PHONY: bench
bench: build envtest ## Measure the receiver against the API server's own create rate; the table goes to stdout and bin/bench/.
	KUBEBUILDER_ASSETS="$(ENVTEST_ASSETS)" go run ./hack/bench $(BENCH_FLAGS)

# The Debian packages the e2e node runs (test/harness/node; nftables for
# kube-proxy), and iptables, whose rules the host check compares before and after.
E2E_PACKAGES = containerd runc containernetworking-plugins busybox-static iptables nftables

.PHONY: e2e
e2e: build image node-assets ## Run the end-to-end tests on a real single-node cluster on this machine (Linux, root), the last with problemhook installed from its image and dist/install.yaml.
	hack/e2e.sh

.PHONY: node-assets
node-assets: envtest e2e-packages ## Build what the single-node cluster runs besides Debian's packages into bin/ (cached).
	hack/control-plane.sh kube-controller-manager kube-scheduler kubelet kube-proxy >/dev/null
	CGO_ENABLED=0 go build -o $(LOCALBIN)/e2e/pause ./test/harness/node/pause
	go build -o $(LOCALBIN)/node ./hack/node

.PHONY: e2e-packages
e2e-packages: ## Install the Debian packages the e2e node needs, when they are missing and this is root with apt-get.
	@if dpkg -s $(E2E_PACKAGES) >/dev/null 2>&1; then :; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
		echo "Installing $(E2E_PACKAGES) for the e2e node"; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $(E2E_PACKAGES) >/dev/null; \
	else \
		echo "The e2e node needs $(E2E_PACKAGES) (Debian packages), and root"; exit 1; \
	fi

.PHONY: drills
drills: build envtest ## Run the fault drills: the API server and the manager killed, duplicates, Dynatrace failing, two replicas, a Secret rotated, fuzzing, a secret-leak search.
	KUBEBUILDER_ASSETS="$(ENVTEST_ASSETS)" go run ./hack/drills $(DRILLS_FLAGS)

.PHONY: fuzz
fuzz: ## Run every fuzz target of the module (found, not listed) for FUZZTIME each (a duration or a count of executions, such as 50000x).
	go run ./hack/fuzz -fuzztime=$(FUZZTIME)

.PHONY: chromium
chromium: ## Install Debian's chromium for the dashboard's browser test, when it is missing and this is root with apt-get.
	@if [ -n "$$CHROMIUM" ] || command -v chromium >/dev/null 2>&1; then :; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
		echo "Installing Debian's chromium for the dashboard's browser test"; \
		{ apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium >/dev/null; } \
			|| echo "Could not install chromium: the dashboard's browser test will be skipped"; \
	else \
		echo "No chromium, and no root with apt-get to install it: the dashboard's browser test will be skipped"; \
	fi

.PHONY: envtest
envtest: $(ENVTEST_ASSETS)/kube-apiserver ## Build kube-apiserver and etcd for tests into bin/k8s (cached).
$(ENVTEST_ASSETS)/kube-apiserver:
	hack/control-plane.sh >/dev/null

##@ Build

# `manager --version` says VERSION, which the build sets, and the commit,
# which the go command stamps in a git checkout (-buildvcs=auto: even where
# GOFLAGS turns stamping off; make image leaves it out, to be reproducible).
.PHONY: build
build: manifests generate ## Build the manager binary into bin/manager.
	go build -buildvcs=auto -ldflags "-X github.com/problemhook/problemhook/internal/version.Version=$(VERSION)" -o $(LOCALBIN)/manager .

.PHONY: run
run: build envtest $(if $(NODE),node-assets image) ## Run the manager: on the cluster of KUBECONFIG if reachable, else on an embedded control plane; NODE=1: installed from its image and dist/install.yaml on a single-node cluster here (Linux, root).
	hack/control-plane.sh kube-apiserver etcd kubectl >/dev/null
	ln -sf $(ENVTEST_ASSETS)/kubectl $(LOCALBIN)/kubectl
	go build -o $(LOCALBIN)/local-run ./hack/localrun
	KUBEBUILDER_ASSETS="$(ENVTEST_ASSETS)" $(LOCALBIN)/local-run --manager $(LOCALBIN)/manager $(if $(NODE),--node --pause $(LOCALBIN)/e2e/pause --image $(LOCALBIN)/image.tar)

.PHONY: docker-build
docker-build: ## Build the manager image (needs a Docker engine).
	docker build -t $(IMG) .

.PHONY: image
image: generate ca-certificates ## Build the manager image without a Docker engine, as an OCI layout in bin/image (and bin/image.tar), and print its digest.
	go run ./hack/image -out $(LOCALBIN)/image -tar $(LOCALBIN)/image.tar -name $(IMG) -version $(VERSION)

.PHONY: release
release: generate ca-certificates ## Write release VERSION (X.Y.Z or vX.Y.Z) into dist/release/vX.Y.Z: the image as an OCI tar, install.yaml and the chart pinned to its digest, the CRDs, an SBOM and SHA256SUMS; then names this commit in hack/previous-release.
	go run ./hack/release -version $(VERSION)
	sed -i "s/^[0-9a-f]\{40\}$$/$$(git rev-parse HEAD)/" hack/previous-release

.PHONY: ca-certificates
ca-certificates: ## Install Debian's ca-certificates, which the manager image trusts, when it is missing and this is root with apt-get.
	@if [ -f /etc/ssl/certs/ca-certificates.crt ]; then :; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
		echo "Installing Debian's ca-certificates for the manager image"; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends ca-certificates >/dev/null; \
	else \
		echo "The manager image needs /etc/ssl/certs/ca-certificates.crt: install Debian's ca-certificates package (as root)"; exit 1; \
	fi

.PHONY: build-installer
build-installer: manifests $(KUSTOMIZE) ## Render config/default into dist/install.yaml, for `kubectl apply -f`, and the Helm chart from it.
	mkdir -p dist
	cd config/manager && $(KUSTOMIZE) edit set image controller=$(IMG)
	$(KUSTOMIZE) build config/default > dist/install.yaml
	$(MAKE) --no-print-directory chart

.PHONY: chart
chart: ## Generate dist/chart, the Helm chart, from dist/install.yaml and config/prometheus (make build-installer runs it).
	go run ./hack/chart -version $(VERSION)

##@ Tools

$(CONTROLLER_GEN):
	$(call go-install-tool,$@,sigs.k8s.io/controller-tools/cmd/controller-gen,$(CONTROLLER_TOOLS_VERSION))

$(KUSTOMIZE):
	$(call go-install-tool,$@,sigs.k8s.io/kustomize/kustomize/v5,$(KUSTOMIZE_VERSION))

$(GOLANGCI_LINT):
	$(call go-install-tool,$@,github.com/golangci/golangci-lint/v2/cmd/golangci-lint,$(GOLANGCI_LINT_VERSION))

$(PROMTOOL):
	$(call go-install-tool,$@,github.com/prometheus/prometheus/cmd/promtool,$(PROMETHEUS_VERSION))

# go-install-tool installs package $(2) at version $(3) as the file $(1).
define go-install-tool
@set -e; mkdir -p $(LOCALBIN); tmp=$$(mktemp -d); \
echo "Installing $(2)@$(3)"; \
GOBIN=$$tmp go install $(2)@$(3); \
mv $$tmp/* $(1); rm -rf $$tmp
endef
