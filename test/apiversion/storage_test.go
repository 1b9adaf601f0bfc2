/*
Copyright 2026 The problemhook Authors.

Licensed under the Apache License, Version 2.0 (the "License");
you may not use this file except in compliance with the License.
You may obtain a copy of the License at

    http://www.apache.org/licenses/LICENSE-2.0

Unless required by applicable law or agreed to in writing, software
distributed under the License is distributed on an "AS IS" BASIS,
WITHOUT WARRANTIES OR CONDITIONS OF ANY KIND, either express or implied.
See the License for the specific language governing permissions and
limitations under the License.
*/

// Package apiversion_test holds what docs/api-versioning.md says of a
// version served beside v1alpha1 the way Flux does it (no conversion
// webhook), against a real API server: a v1beta1 with v1alpha1's schema
// serves the same objects, the API server refuses to drop v1alpha1 while
// objects may be stored at it, and after the objects are read and written
// back and status.storedVersions is left with v1beta1, it can go; skip
// the rewrite, and the objects stored at v1alpha1 cannot be read.
package apiversion_test

import (
	"context"
	"os"
	"testing"

	. "github.com/onsi/gomega"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/util/retry"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/problemhook/problemhook/test/harness/controlplane"
)

var k8s client.Client

func TestMain(m *testing.M) {
	os.Exit(controlplane.RunTests(m, func(_ context.Context, e *controlplane.TestEnv) (ctrl.Manager, error) {
		scheme := runtime.NewScheme()
		if err := clientgoscheme.AddToScheme(scheme); err != nil {
			return nil, err
		}
		if err := apiextensionsv1.AddToScheme(scheme); err != nil {
			return nil, err
		}
		var err error
		k8s, err = client.New(e.Config, client.Options{Scheme: scheme})
		return nil, err
	}))
}

func object(kind, version, namespace, name string) *unstructured.Unstructured {
	u := &unstructured.Unstructured{}
	u.SetAPIVersion("problemhook.io/" + version)
	u.SetKind(kind)
	u.SetNamespace(namespace)
	u.SetName(name)
	return u
}

func target(version, namespace, name string) *unstructured.Unstructured {
	return object("NotificationTarget", version, namespace, name)
}

// updateCRD changes the CRD crdName with change, retrying on a conflict.
func updateCRD(ctx context.Context, crdName string, change func(*apiextensionsv1.CustomResourceDefinition)) error {
	return retry.RetryOnConflict(retry.DefaultRetry, func() error {
		var crd apiextensionsv1.CustomResourceDefinition
		if err := k8s.Get(ctx, types.NamespacedName{Name: crdName}, &crd); err != nil {
			return err
		}
		change(&crd)
		return k8s.Update(ctx, &crd)
	})
}

func storedVersions(g Gomega, ctx context.Context, crdName string) []string {
	var crd apiextensionsv1.CustomResourceDefinition
	g.Expect(k8s.Get(ctx, types.NamespacedName{Name: crdName}, &crd)).To(Succeed())
	return crd.Status.StoredVersions
}

// serveBeta adds v1beta1, v1alpha1's schema under another name, served
// and not stored (release N).
func serveBeta(crd *apiextensionsv1.CustomResourceDefinition) {
	beta := *crd.Spec.Versions[0].DeepCopy()
	beta.Name, beta.Storage = "v1beta1", false
	crd.Spec.Versions = append(crd.Spec.Versions, beta)
}

// storeBeta makes v1beta1 the stored version and deprecates v1alpha1
// (release N+1).
func storeBeta(crd *apiextensionsv1.CustomResourceDefinition) {
	crd.Spec.Versions[0].Storage, crd.Spec.Versions[1].Storage = false, true
	crd.Spec.Versions[0].Deprecated = true
}

// dropAlpha removes v1alpha1 (release N+2).
func dropAlpha(crd *apiextensionsv1.CustomResourceDefinition) {
	crd.Spec.Versions = crd.Spec.Versions[1:]
}

// setStoredVersions leaves only v1beta1 in the CRD's status.storedVersions.
func setStoredVersions(ctx context.Context, crdName string) error {
	return retry.RetryOnConflict(retry.DefaultRetry, func() error {
		var crd apiextensionsv1.CustomResourceDefinition
		if err := k8s.Get(ctx, types.NamespacedName{Name: crdName}, &crd); err != nil {
			return err
		}
		crd.Status.StoredVersions = []string{"v1beta1"}
		return k8s.Status().Update(ctx, &crd)
	})
}

func TestStorageVersionMigration(t *testing.T) {
	g := NewWithT(t)
	ctx := context.Background()
	const crdName = "notificationtargets.problemhook.io"

	// Today: one version, served and stored.
	var crd apiextensionsv1.CustomResourceDefinition
	g.Expect(k8s.Get(ctx, types.NamespacedName{Name: crdName}, &crd)).To(Succeed())
	g.Expect(crd.Spec.Versions).To(HaveLen(1))
	g.Expect(crd.Spec.Versions[0].Name).To(Equal("v1alpha1"))
	g.Expect(crd.Status.StoredVersions).To(Equal([]string{"v1alpha1"}))

	ns := controlplane.NewNamespace(t, k8s, "apiversion")
	spec := map[string]any{"format": "Guance", "auth": map[string]any{"none": map[string]any{}}}
	var names []string
	for _, name := range []string{"a", "b", "c"} {
		obj := target("v1alpha1", ns, name)
		g.Expect(unstructured.SetNestedMap(obj.Object, spec, "spec")).To(Succeed())
		g.Expect(k8s.Create(ctx, obj)).To(Succeed())
		names = append(names, name)
	}

	// Release N: v1beta1 served beside v1alpha1, with the same schema and
	// no conversion webhook.
	g.Expect(updateCRD(ctx, crdName, serveBeta)).To(Succeed())
	g.Eventually(func(g Gomega) {
		got := target("v1beta1", ns, "a")
		g.Expect(k8s.Get(ctx, client.ObjectKeyFromObject(got), got)).To(Succeed())
		g.Expect(got.Object["spec"]).To(HaveKeyWithValue("format", "Guance"))
	}).Should(Succeed(), "an object written at v1alpha1 reads at v1beta1")

	// Release N+1: v1beta1 stored, v1alpha1 still served.
	g.Expect(updateCRD(ctx, crdName, storeBeta)).To(Succeed())
	g.Expect(storedVersions(g, ctx, crdName)).To(ConsistOf("v1alpha1", "v1beta1"))

	// Release N+2 before the migration: the API server refuses to drop a
	// version objects may still be stored at.
	err := updateCRD(ctx, crdName, dropAlpha)
	g.Expect(err).To(MatchError(ContainSubstring("storedVersions")), "v1alpha1 cannot go while it may be stored")

	// The migration: every object read and written back, then only the
	// new version left in status.storedVersions.
	g.Eventually(func(g Gomega) {
		list := &unstructured.UnstructuredList{}
		list.SetAPIVersion("problemhook.io/v1beta1")
		list.SetKind("NotificationTargetList")
		g.Expect(k8s.List(ctx, list, client.InNamespace(ns))).To(Succeed())
		g.Expect(list.Items).To(HaveLen(len(names)))
		for i := range list.Items {
			g.Expect(k8s.Update(ctx, &list.Items[i])).To(Succeed())
		}
	}).Should(Succeed())
	g.Expect(setStoredVersions(ctx, crdName)).To(Succeed())

	// Release N+2: v1alpha1 goes, and every object is still there.
	g.Expect(updateCRD(ctx, crdName, dropAlpha)).To(Succeed())
	g.Expect(storedVersions(g, ctx, crdName)).To(Equal([]string{"v1beta1"}))
	for _, name := range names {
		g.Eventually(func(g Gomega) {
			got := target("v1beta1", ns, name)
			g.Expect(k8s.Get(ctx, client.ObjectKeyFromObject(got), got)).To(Succeed())
			g.Expect(got.Object["spec"]).To(HaveKeyWithValue("format", "Guance"))
		}).Should(Succeed(), "target %s reads at v1beta1 after v1alpha1 is gone", name)
	}
}

// The rewrite is what moves the objects: told that nothing is stored at
// v1alpha1 when it still is, the API server lets v1alpha1 go, and the
// objects stored at it can no longer be read (until v1alpha1 is back).
func TestSkippedMigrationLeavesObjectsUnreadable(t *testing.T) {
	g := NewWithT(t)
	ctx := context.Background()
	const crdName = "problemevents.problemhook.io"
	ns := controlplane.NewNamespace(t, k8s, "apiversion")
	ev := object("ProblemEvent", "v1alpha1", ns, "e")
	g.Expect(unstructured.SetNestedMap(ev.Object, map[string]any{"target": "t", "source": "Guance",
		"problemID": "p", "state": "OPEN", "receivedAt": "2026-12-06T10:00:00Z"}, "spec")).To(Succeed())
	g.Expect(k8s.Create(ctx, ev)).To(Succeed())

	g.Expect(updateCRD(ctx, crdName, serveBeta)).To(Succeed())
	g.Expect(updateCRD(ctx, crdName, storeBeta)).To(Succeed())
	g.Expect(setStoredVersions(ctx, crdName)).To(Succeed())
	g.Expect(updateCRD(ctx, crdName, dropAlpha)).To(Succeed())

	g.Eventually(func(g Gomega) {
		got := object("ProblemEvent", "v1beta1", ns, "e")
		err := k8s.Get(ctx, client.ObjectKeyFromObject(got), got)
		g.Expect(err).To(MatchError(ContainSubstring("request to convert CR from an invalid group/version: problemhook.io/v1alpha1")))
	}).Should(Succeed())
}
