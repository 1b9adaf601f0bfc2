// Package manifests reads Kubernetes YAML manifests and applies them, CRDs
// first, the way `kubectl apply --server-side` would.
package manifests

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"time"

	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/wait"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// FieldOwner is the field manager of what Apply applies.
const FieldOwner = "problemhook"

// ReadDir reads every object of the .yaml files in dir, in file-name order,
// skipping kustomization.yaml.
func ReadDir(dir string) ([]*unstructured.Unstructured, error) {
	files, err := filepath.Glob(filepath.Join(dir, "*.yaml"))
	if err != nil {
		return nil, err
	}
	sort.Strings(files)
	var objs []*unstructured.Unstructured
	for _, f := range files {
		if filepath.Base(f) == "kustomization.yaml" {
			continue
		}
		data, err := os.ReadFile(f)
		if err != nil {
			return nil, err
		}
		read, err := Decode(data)
		if err != nil {
			return nil, fmt.Errorf("reading %s: %w", f, err)
		}
		objs = append(objs, read...)
	}
	return objs, nil
}

// Decode decodes the objects of a multi-document YAML stream. A document
// without apiVersion or kind is an error; empty documents are skipped.
func Decode(data []byte) ([]*unstructured.Unstructured, error) {
	r := utilyaml.NewYAMLReader(bufio.NewReader(bytes.NewReader(data)))
	var objs []*unstructured.Unstructured
	for {
		doc, err := r.Read()
		if errors.Is(err, io.EOF) {
			return objs, nil
		}
		if err != nil {
			return nil, err
		}
		obj := &unstructured.Unstructured{}
		if err := utilyaml.Unmarshal(doc, &obj.Object); err != nil {
			return nil, err
		}
		if len(obj.Object) == 0 {
			continue
		}
		if obj.GetAPIVersion() == "" || obj.GetKind() == "" {
			return nil, fmt.Errorf("object %q has no apiVersion or kind", obj.GetName())
		}
		objs = append(objs, obj)
	}
}

// Apply server-side applies objs: CustomResourceDefinitions and Namespaces
// first, waiting for the CRDs to be served, then the rest in order.
func Apply(ctx context.Context, cfg *rest.Config, objs []*unstructured.Unstructured) error {
	scheme := runtime.NewScheme()
	if err := apiextensionsv1.AddToScheme(scheme); err != nil {
		return err
	}
	// A client without a cached REST mapper: it discovers the kinds the
	// CRDs add when it first meets them.
	c, err := client.New(cfg, client.Options{Scheme: scheme})
	if err != nil {
		return err
	}
	var first, rest []*unstructured.Unstructured
	for _, o := range objs {
		if o.GetKind() == "CustomResourceDefinition" || o.GetKind() == "Namespace" {
			first = append(first, o)
		} else {
			rest = append(rest, o)
		}
	}
	for _, o := range first {
		if err := applyOne(ctx, c, o); err != nil {
			return err
		}
	}
	if err := waitForCRDs(ctx, c, first); err != nil {
		return err
	}
	for _, o := range rest {
		if err := applyOne(ctx, c, o); err != nil {
			return err
		}
	}
	return nil
}

func applyOne(ctx context.Context, c client.Client, o *unstructured.Unstructured) error {
	if err := c.Apply(ctx, client.ApplyConfigurationFromUnstructured(o), client.FieldOwner(FieldOwner), client.ForceOwnership); err != nil {
		return fmt.Errorf("applying %s %s: %w", o.GetKind(), client.ObjectKeyFromObject(o), err)
	}
	return nil
}

// waitForCRDs waits until every CRD among objs is Established.
func waitForCRDs(ctx context.Context, c client.Client, objs []*unstructured.Unstructured) error {
	for _, o := range objs {
		if o.GetKind() != "CustomResourceDefinition" {
			continue
		}
		err := wait.PollUntilContextTimeout(ctx, 100*time.Millisecond, 30*time.Second, true, func(ctx context.Context) (bool, error) {
			var crd apiextensionsv1.CustomResourceDefinition
			if err := c.Get(ctx, client.ObjectKeyFromObject(o), &crd); err != nil {
				return false, client.IgnoreNotFound(err)
			}
			for _, cond := range crd.Status.Conditions {
				if cond.Type == apiextensionsv1.Established && cond.Status == apiextensionsv1.ConditionTrue {
					return true, nil
				}
			}
			return false, nil
		})
		if err != nil {
			return fmt.Errorf("waiting for CRD %s: %w", o.GetName(), err)
		}
	}
	return nil
}

// APIDirs are the directories under the repository root that define
// problemhook's API as the API server serves it: the CRDs, and the
// admission policies that check who may write them.
var APIDirs = []string{filepath.Join("config", "crd", "bases"), filepath.Join("config", "admission")}

// InstallAPI applies what APIDirs hold from the repository at root.
func InstallAPI(ctx context.Context, cfg *rest.Config, root string) error {
	var objs []*unstructured.Unstructured
	for _, dir := range APIDirs {
		read, err := ReadDir(filepath.Join(root, dir))
		if err != nil {
			return err
		}
		objs = append(objs, read...)
	}
	if err := Apply(ctx, cfg, objs); err != nil {
		return fmt.Errorf("installing problemhook's API: %w", err)
	}
	return nil
}

// CreateIn creates the objects of a multi-document YAML stream in the
// namespace ns, in order, as a test sets up what it needs: an object that
// exists already is an error.
func CreateIn(ctx context.Context, c client.Client, ns, manifest string) error {
	objs, err := Decode([]byte(manifest))
	if err != nil {
		return err
	}
	for _, o := range objs {
		o.SetNamespace(ns)
		if err := c.Create(ctx, o); err != nil {
			return fmt.Errorf("creating %s %s: %w", o.GetKind(), o.GetName(), err)
		}
	}
	return nil
}
