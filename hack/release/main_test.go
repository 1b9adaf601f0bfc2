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

package main

import (
	"archive/tar"
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	. "github.com/onsi/gomega"
	"helm.sh/helm/v4/pkg/action"
	"helm.sh/helm/v4/pkg/chart/common"
	"helm.sh/helm/v4/pkg/chart/v2/loader"
	release "helm.sh/helm/v4/pkg/release/v1"

	"github.com/problemhook/problemhook/test/harness/image"
)

// TestSameSourceSameBytes builds release 0.9.1 twice, into two
// directories, and expects the same files with the same bytes; and that
// the release holds together: install.yaml and the chart pin the digest
// of the image in the OCI tarball, crds.yaml is install.yaml's CRDs, the
// manager says the release, and SHA256SUMS matches. It builds the manager
// (some 15 s on 2 cores with a warm build cache, 6 minutes on a cold
// one), so -short skips it.
func TestSameSourceSameBytes(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the manager and its image twice")
	}
	if _, err := os.Stat(image.CACerts); err != nil {
		t.Skipf("no %s (make ca-certificates installs it)", image.CACerts)
	}
	g := NewWithT(t)
	const version = "0.9.1"
	names := FilesOf(version)
	var dirs []string
	var work string
	for i := range 2 {
		o := Options{Root: filepath.Join("..", ".."), Version: "v" + version, Out: t.TempDir(), Install: "dist/install.yaml", Work: t.TempDir()}
		dir, err := Build(t.Context(), o)
		g.Expect(err).NotTo(HaveOccurred(), "release %d", i)
		g.Expect(filepath.Base(dir)).To(Equal("v" + version))
		dirs, work = append(dirs, dir), o.Work
	}

	want := []string{SumsFile, CRDsFile, InstallFile, names.SBOM, names.Image, names.Chart}
	for i, dir := range dirs {
		entries, err := os.ReadDir(dir)
		g.Expect(err).NotTo(HaveOccurred())
		var got []string
		for _, e := range entries {
			got = append(got, e.Name())
		}
		g.Expect(got).To(ConsistOf(want), "release %d", i)
	}
	for _, name := range want {
		a, err := os.ReadFile(filepath.Join(dirs[0], name))
		g.Expect(err).NotTo(HaveOccurred())
		b, err := os.ReadFile(filepath.Join(dirs[1], name))
		g.Expect(err).NotTo(HaveOccurred())
		g.Expect(bytes.Equal(a, b)).To(BeTrue(), "%s differs between two releases of the same source", name)
	}
	dir := dirs[0]

	// The digest of the image in the tarball is the one install.yaml and
	// the chart pin.
	digest := tarredDigest(g, filepath.Join(dir, names.Image))
	ref := Repository + ":v" + version + "@" + digest
	install, err := os.ReadFile(filepath.Join(dir, InstallFile))
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(string(install)).To(ContainSubstring("image: " + ref + "\n"))
	source, err := os.ReadFile(filepath.Join("..", "..", "dist", "install.yaml"))
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(bytes.Count(install, []byte("\n"))).To(Equal(bytes.Count(source, []byte("\n"))), "install.yaml is dist/install.yaml but for the image")

	crds, err := os.ReadFile(filepath.Join(dir, CRDsFile))
	g.Expect(err).NotTo(HaveOccurred())
	docs, err := documents(crds)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(docs).To(HaveLen(3))
	for _, doc := range docs {
		g.Expect(string(doc)).To(ContainSubstring("\nkind: CustomResourceDefinition\n"))
		g.Expect(string(install)).To(ContainSubstring(string(doc)))
	}

	chrt, err := loader.Load(filepath.Join(dir, names.Chart))
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(chrt.Metadata.Version).To(Equal(version))
	g.Expect(chrt.Metadata.AppVersion).To(Equal(version))
	in := action.NewInstall(action.NewConfiguration())
	in.DryRunStrategy = action.DryRunClient
	in.ReleaseName, in.Namespace = "problemhook", "problemhook-system"
	in.KubeVersion = kubeVersion(g)
	rel, err := in.Run(chrt, nil)
	g.Expect(err).NotTo(HaveOccurred())
	r, ok := rel.(*release.Release)
	g.Expect(ok).To(BeTrue())
	g.Expect(r.Manifest).To(ContainSubstring(`image: "`+Repository+"@"+digest+`"`), "the chart's default image is the digest")

	// The manager was built as the release.
	out, err := exec.CommandContext(t.Context(), filepath.Join(work, "manager"), "--version").CombinedOutput()
	g.Expect(err).NotTo(HaveOccurred(), "%s", out)
	g.Expect(string(out)).To(HavePrefix("problemhook " + version + " "))

	var sbom struct {
		SpecVersion  string `json:"specVersion"`
		SerialNumber string `json:"serialNumber"`
		Metadata     struct {
			Timestamp string `json:"timestamp"`
			Component struct {
				Name, Version string
			} `json:"component"`
		} `json:"metadata"`
		Components []struct {
			Name, Version string
		} `json:"components"`
	}
	data, err := os.ReadFile(filepath.Join(dir, names.SBOM))
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(json.Unmarshal(data, &sbom)).To(Succeed())
	g.Expect(sbom.SpecVersion).To(Equal("1.5"))
	g.Expect(sbom.SerialNumber).To(MatchRegexp(`^urn:uuid:[0-9a-f]{8}-[0-9a-f]{4}-5[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$`))
	g.Expect(sbom.Metadata.Timestamp).To(BeEmpty())
	g.Expect(sbom.Metadata.Component.Name).To(Equal("github.com/problemhook/problemhook"))
	g.Expect(sbom.Metadata.Component.Version).To(Equal("v" + version))
	g.Expect(sbom.Components).To(ContainElement(HaveField("Name", "sigs.k8s.io/controller-runtime")))

	// SHA256SUMS is what `sha256sum -c` checks.
	sums, err := os.ReadFile(filepath.Join(dir, SumsFile))
	g.Expect(err).NotTo(HaveOccurred())
	var listed []string
	sc := bufio.NewScanner(bytes.NewReader(sums))
	for sc.Scan() {
		sum, name, ok := strings.Cut(sc.Text(), "  ")
		g.Expect(ok).To(BeTrue(), "line %q", sc.Text())
		data, err := os.ReadFile(filepath.Join(dir, name))
		g.Expect(err).NotTo(HaveOccurred())
		h := sha256.Sum256(data)
		g.Expect(sum).To(Equal(hex.EncodeToString(h[:])), name)
		listed = append(listed, name)
	}
	g.Expect(listed).To(ConsistOf(want[1:]))
}

// kubeVersion is the Makefile's KUBE_VERSION, the Kubernetes the tests
// run against.
func kubeVersion(g Gomega) *common.KubeVersion {
	makefile, err := os.ReadFile(filepath.Join("..", "..", "Makefile"))
	g.Expect(err).NotTo(HaveOccurred())
	for _, line := range strings.Split(string(makefile), "\n") {
		if v, ok := strings.CutPrefix(line, "export KUBE_VERSION ?= "); ok {
			kv, err := common.ParseKubeVersion(strings.TrimSpace(v))
			g.Expect(err).NotTo(HaveOccurred())
			return kv
		}
	}
	g.Expect("the Makefile").To(ContainSubstring("KUBE_VERSION"))
	return nil
}

// tarredDigest returns the digest of the one image in the OCI layout tar.
func tarredDigest(g Gomega, path string) string {
	f, err := os.Open(path)
	g.Expect(err).NotTo(HaveOccurred())
	defer func() { _ = f.Close() }()
	tr := tar.NewReader(f)
	for {
		h, err := tr.Next()
		g.Expect(err).NotTo(HaveOccurred(), "no index.json in %s", path)
		if h.Name != "index.json" {
			continue
		}
		var index struct {
			Manifests []struct{ Digest string } `json:"manifests"`
		}
		data, err := io.ReadAll(tr)
		g.Expect(err).NotTo(HaveOccurred())
		g.Expect(json.Unmarshal(data, &index)).To(Succeed())
		g.Expect(index.Manifests).To(HaveLen(1))
		return index.Manifests[0].Digest
	}
}

func TestSetImage(t *testing.T) {
	g := NewWithT(t)
	const install = "kind: Namespace\n---\nkind: Deployment\nspec:\n  template:\n    spec:\n      containers:\n      - name: manager\n        image: r:v1\n"
	got, err := setImage([]byte(install), "r:v1@sha256:00")
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(string(got)).To(Equal(strings.Replace(install, "image: r:v1\n", "image: r:v1@sha256:00\n", 1)))

	_, err = setImage([]byte("kind: Namespace\n"), "r")
	g.Expect(err).To(MatchError(ContainSubstring("no Deployment")))
}

func TestVersionMustBeSemantic(t *testing.T) {
	for _, v := range []string{"", "1.2", "v1.2.x", "01.2.3", "latest"} {
		if _, err := Build(t.Context(), Options{Version: v}); err == nil || !strings.Contains(err.Error(), "semantic versioning") {
			t.Errorf("Build(%q) = %v, want a semantic versioning error", v, err)
		}
	}
}
