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

// Command chart writes dist/chart, problemhook's Helm chart, from
// dist/install.yaml (config/default rendered by kustomize) and from the
// ServiceMonitor and PrometheusRule of config/prometheus, the way
// kubebuilder's helm/v2-alpha plugin derives a chart from the rendered
// kustomize output: the chart is never edited by hand, and at its default
// values it renders the objects of dist/install.yaml (but the Namespace,
// which Helm's --create-namespace makes; namespace.create renders it).
// Every object becomes a template of its own, the CRDs under
// templates/crd/ (Helm never upgrades what it finds in crds/), with values
// put in for what an admin sets. It replaces the whole directory, so an
// object gone from dist/install.yaml leaves no template behind.
// `make chart` (and so `make build-installer`) runs it from the root of
// the repository:
//
//	go run ./hack/chart -version 0.1.0
package main

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"
)

func main() {
	version := flag.String("version", "", "The chart's version and appVersion: the Makefile's VERSION.")
	install := flag.String("install", "dist/install.yaml", "The rendered kustomize output the chart is derived from.")
	prometheus := flag.String("prometheus", "config/prometheus", "The directory of monitor.yaml and prometheusrule.yaml.")
	out := flag.String("out", "dist/chart", "The chart directory to write; it is replaced.")
	flag.Parse()
	if err := run(*version, *install, *prometheus, *out); err != nil {
		fmt.Fprintf(os.Stderr, "chart: %v\n", err)
		os.Exit(1)
	}
}

func run(version, install, prometheus, out string) error {
	if version == "" {
		return fmt.Errorf("-version is required")
	}
	in := Inputs{Version: version}
	var err error
	if in.Install, err = os.ReadFile(install); err != nil {
		return err
	}
	if in.ServiceMonitor, err = os.ReadFile(filepath.Join(prometheus, "monitor.yaml")); err != nil {
		return err
	}
	if in.PrometheusRule, err = os.ReadFile(filepath.Join(prometheus, "prometheusrule.yaml")); err != nil {
		return err
	}
	files, err := Generate(in)
	if err != nil {
		return err
	}
	if err := os.RemoveAll(out); err != nil {
		return err
	}
	for _, f := range files {
		path := filepath.Join(out, filepath.FromSlash(f.Path))
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			return err
		}
		if err := os.WriteFile(path, f.Data, 0o644); err != nil {
			return err
		}
	}
	return nil
}
