//go:build e2e

package install

import (
	"context"
	"fmt"
	"log/slog"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"helm.sh/helm/v4/pkg/action"
	"helm.sh/helm/v4/pkg/chart/v2/loader"
	"helm.sh/helm/v4/pkg/kube"
	"helm.sh/helm/v4/pkg/release/common"
	release "helm.sh/helm/v4/pkg/release/v1"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/cli-runtime/pkg/genericclioptions"
	"sigs.k8s.io/controller-runtime/pkg/client"

	problemhookv1alpha1 "github.com/problemhook/problemhook/api/v1alpha1"
	"github.com/problemhook/problemhook/test/harness/controlplane"
)

// releaseName is the release `helm install problemhook ./dist/chart`
// makes.
const releaseName = "problemhook"

// crds are the CustomResourceDefinitions the chart installs and keeps.
var crds = []string{"notificationtargets.problemhook.io", "integrationroutes.problemhook.io", "problemevents.problemhook.io"}

// A user installs problemhook with its Helm chart, as docs/install.md
// says: the namespace made and labelled restricted first, then
// `helm install problemhook ./dist/chart -n problemhook-system` at the
// chart's default values, through Helm's own Go library. The manager comes
// up on both replicas under the restricted level, a notification's Job
// runs, and `helm uninstall` removes the manager but keeps the CRDs, and
// with them the tenant's events.
func TestInstalledWithHelm(t *testing.T) {
	s := newSuite(t)
	s.createSystemNamespace()
	s.helmInstall()
	s.addTenant()
	s.run([]step{
		{"the Deployment is 2/2 Available under the restricted level", (*suite).available},
		{"a notification to the Service runs its Job and comments", (*suite).throughTheService},
		{"helm uninstall removes the manager and keeps the CRDs and events", (*suite).helmUninstall},
	})
}

// createSystemNamespace does what docs/install.md tells a user to before
// `helm install`: make problemhook-system with the restricted level
// enforced, so that the manager's Pods are admitted under it.
func (s *suite) createSystemNamespace() {
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{
		Name:   systemNamespace,
		Labels: map[string]string{"pod-security.kubernetes.io/enforce": "restricted"},
	}}
	if err := s.kube.Create(context.Background(), ns); err != nil {
		s.t.Fatal(err)
	}
}

// helmConfig is Helm's action configuration for the node, as the helm
// command builds it from --kubeconfig and -n: releases stored as Secrets
// in the release's namespace.
func (s *suite) helmConfig() *action.Configuration {
	flags := genericclioptions.NewConfigFlags(false)
	kubeconfig, ns := s.kubeconfig, systemNamespace
	flags.KubeConfig, flags.Namespace = &kubeconfig, &ns
	cfg := action.NewConfiguration()
	cfg.SetLogger(slog.NewTextHandler(s.t.Output(), &slog.HandlerOptions{Level: slog.LevelWarn}))
	if err := cfg.Init(flags, systemNamespace, "secret"); err != nil {
		s.t.Fatalf("initialising Helm: %v", err)
	}
	return cfg
}

// helmInstall installs dist/chart at its default values as
// `helm install problemhook ./dist/chart -n problemhook-system` does:
// server-side apply, waiting for hooks only.
func (s *suite) helmInstall() {
	dir := filepath.Join(controlplane.RepoRoot(), "dist", "chart")
	chrt, err := loader.Load(dir)
	if err != nil {
		s.t.Fatalf("loading %s: %v", dir, err)
	}
	install := action.NewInstall(s.helmConfig())
	install.ReleaseName = releaseName
	install.Namespace = systemNamespace
	install.WaitStrategy = kube.HookOnlyStrategy
	install.Timeout = 5 * time.Minute
	rel, err := install.RunWithContext(context.Background(), chrt, nil)
	if err != nil {
		s.t.Fatalf("helm install: %v", err)
	}
	r, ok := rel.(*release.Release)
	if !ok {
		s.t.Fatalf("the release is a %T", rel)
	}
	if r.Info.Status != common.StatusDeployed {
		s.t.Fatalf("release %s is %s, want %s", r.Name, r.Info.Status, common.StatusDeployed)
	}
	s.t.Logf("release %s %d %s", r.Name, r.Version, r.Info.Status)
}

// helmUninstall uninstalls the release as `helm uninstall problemhook -n
// problemhook-system` does. The CRDs, which the chart marks
// helm.sh/resource-policy: keep, stay, and so do the tenant's events; the
// Deployment goes.
func (s *suite) helmUninstall() {
	ctx := context.Background()
	var before problemhookv1alpha1.ProblemEventList
	if err := s.kube.List(ctx, &before, client.InNamespace(s.ns)); err != nil {
		s.t.Fatal(err)
	}
	if len(before.Items) == 0 {
		s.t.Fatal("no ProblemEvent stored before the uninstall")
	}

	uninstall := action.NewUninstall(s.helmConfig())
	uninstall.WaitStrategy = kube.HookOnlyStrategy
	uninstall.Timeout = 5 * time.Minute
	resp, err := uninstall.Run(releaseName)
	if err != nil {
		s.t.Fatalf("helm uninstall: %v", err)
	}
	for _, name := range crds {
		if !strings.Contains(resp.Info, "[CustomResourceDefinition] "+name+"\n") {
			s.t.Errorf("helm uninstall does not say it kept %s: %q", name, resp.Info)
		}
	}

	s.eventually("the Deployment is gone", time.Minute, func() error {
		err := s.kube.Get(ctx, client.ObjectKey{Namespace: systemNamespace, Name: deployment}, &appsv1.Deployment{})
		if apierrors.IsNotFound(err) {
			return nil
		}
		if err != nil {
			return err
		}
		return fmt.Errorf("deployment %s/%s is still there", systemNamespace, deployment)
	})
	for _, name := range crds {
		crd := &metav1.PartialObjectMetadata{}
		crd.SetGroupVersionKind(apiextensionsv1.SchemeGroupVersion.WithKind("CustomResourceDefinition"))
		if err := s.kube.Get(ctx, client.ObjectKey{Name: name}, crd); err != nil {
			s.t.Errorf("CRD %s after helm uninstall: %v", name, err)
			continue
		}
		if crd.DeletionTimestamp != nil {
			s.t.Errorf("CRD %s is being deleted", name)
		}
	}
	var after problemhookv1alpha1.ProblemEventList
	if err := s.kube.List(ctx, &after, client.InNamespace(s.ns)); err != nil {
		s.t.Fatal(err)
	}
	if len(after.Items) != len(before.Items) {
		s.t.Errorf("%d ProblemEvents before helm uninstall, %d after", len(before.Items), len(after.Items))
	}
}
