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

// Command release writes a versioned release of problemhook into
// dist/release/vX.Y.Z: the manager image as an OCI tarball, install.yaml
// with that image pinned by digest, the CRDs alone, the Helm chart
// packaged, a CycloneDX SBOM of the manager binary, and SHA256SUMS over
// them. The same source gives the same bytes: every time recorded is the
// Unix epoch and nothing random goes in. `make release` runs it from the
// root of the module:
//
//	go run ./hack/release -version 0.2.0
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
)

func main() {
	version := flag.String("version", "", "The release, X.Y.Z or vX.Y.Z: the Makefile's VERSION.")
	out := flag.String("out", "dist/release", "The directory the release's own directory, vX.Y.Z, is written in; that one is replaced.")
	install := flag.String("install", "dist/install.yaml", "The rendered kustomize output, whose manager image is pinned.")
	flag.Parse()
	o := Options{Root: ".", Version: *version, Out: *out, Install: *install}
	dir, err := Build(context.Background(), o)
	if err != nil {
		fmt.Fprintf(os.Stderr, "release: %v\n", err)
		os.Exit(1)
	}
	fmt.Println(dir)
}
