//go:build linux

package node

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"
)

func TestPreflightSaysWhatIsMissing(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, stateFile), []byte("{}"), 0o644); err != nil {
		t.Fatal(err)
	}
	o := Options{Dir: dir, Assets: filepath.Join(dir, "no-assets"), PauseBinary: filepath.Join(dir, "no-pause")}.Defaults()
	err := preflight(o)
	if err == nil {
		t.Fatal("preflight passed with no binaries and a node already up")
	}
	for _, want := range []string{
		"kubelet is missing from " + o.Assets + " (hack/control-plane.sh kubelet builds it)",
		"etcd is missing",
		o.PauseBinary + " is missing",
		"a node is already up in " + dir,
	} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("preflight's error does not say %q:\n%v", want, err)
		}
	}
}

func TestWriteImageIsAnOCILayoutContainerdCanName(t *testing.T) {
	path := filepath.Join(t.TempDir(), "image.tar")
	entries := []entry{
		{name: "bin/", mode: 0o755, typeflag: tar.TypeDir},
		{name: "bin/tool", mode: 0o755, typeflag: tar.TypeReg, body: []byte("#!/bin/sh\n")},
		{name: "bin/alias", mode: 0o777, typeflag: tar.TypeSymlink, linkname: "tool"},
	}
	if err := writeImage(path, "problemhook.local/e2e/test:1", entries, []string{"/bin/tool"}, nil); err != nil {
		t.Fatal(err)
	}
	files := readTar(t, path)
	var index struct {
		Manifests []struct {
			Digest      string            `json:"digest"`
			Annotations map[string]string `json:"annotations"`
		} `json:"manifests"`
	}
	mustUnmarshal(t, files["index.json"], &index)
	if len(index.Manifests) != 1 || index.Manifests[0].Annotations["io.containerd.image.name"] != "problemhook.local/e2e/test:1" {
		t.Fatalf("index.json does not name the image: %s", files["index.json"])
	}
	if string(files["oci-layout"]) != `{"imageLayoutVersion":"1.0.0"}` {
		t.Errorf("oci-layout: %s", files["oci-layout"])
	}
	// Every blob is stored under its own digest.
	blob := func(d string) []byte {
		t.Helper()
		b, ok := files["blobs/sha256/"+strings.TrimPrefix(d, "sha256:")]
		if !ok || digest(b) != d {
			t.Fatalf("blob %s missing or not matching its digest", d)
		}
		return b
	}
	var manifest struct {
		Config struct{ Digest string }   `json:"config"`
		Layers []struct{ Digest string } `json:"layers"`
	}
	mustUnmarshal(t, blob(index.Manifests[0].Digest), &manifest)
	var config struct {
		Config struct{ Entrypoint []string } `json:"config"`
		RootFS struct {
			DiffIDs []string `json:"diff_ids"`
		} `json:"rootfs"`
	}
	mustUnmarshal(t, blob(manifest.Config.Digest), &config)
	if !slices.Equal(config.Config.Entrypoint, []string{"/bin/tool"}) {
		t.Errorf("entrypoint %v", config.Config.Entrypoint)
	}
	zr, err := gzip.NewReader(bytes.NewReader(blob(manifest.Layers[0].Digest)))
	if err != nil {
		t.Fatal(err)
	}
	layer, err := io.ReadAll(zr)
	if err != nil {
		t.Fatal(err)
	}
	if len(config.RootFS.DiffIDs) != 1 || config.RootFS.DiffIDs[0] != digest(layer) {
		t.Errorf("diff_ids %v do not name the uncompressed layer %s", config.RootFS.DiffIDs, digest(layer))
	}
	tr := tar.NewReader(bytes.NewReader(layer))
	var names []string
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		names = append(names, h.Name)
		if h.Name == "bin/alias" && (h.Typeflag != tar.TypeSymlink || h.Linkname != "tool") {
			t.Errorf("bin/alias is not a symlink to tool: %+v", h)
		}
	}
	if !slices.Equal(names, []string{"bin/", "bin/tool", "bin/alias"}) {
		t.Errorf("layer holds %v", names)
	}
}

func TestCompareReportsWhatWasLeftBehind(t *testing.T) {
	before := Snapshot{Links: []string{"lo", "eth0"}, Routes: []string{"default via 192.0.2.1 dev eth0"}, Mounts: []string{"/"}, Processes: []string{"sshd"},
		IPTables: []string{"*filter"}, NFTables: []string{"table ip filter {"}, Sysctls: []string{"net/ipv4/ip_forward=0"}}
	after := Snapshot{Links: []string{"lo", "eth0", "phe2e0"}, Routes: []string{"default via 192.0.2.1 dev eth0", "10.244.0.0/24 dev phe2e0"},
		Mounts: []string{"/", "/run/netns/cni-1"}, Processes: []string{"containerd"}, IPTables: []string{"*filter"},
		NFTables: []string{"table ip filter {", "table ip kube-proxy {"}, Sysctls: []string{"net/ipv4/ip_forward=1"}, Paths: []string{"/var/lib/cni"}}
	got := Compare(before, after)
	want := []string{
		"link added: phe2e0",
		"route added: 10.244.0.0/24 dev phe2e0",
		"mount added: /run/netns/cni-1",
		"nftables added: table ip kube-proxy {",
		"sysctl added: net/ipv4/ip_forward=1",
		"sysctl removed: net/ipv4/ip_forward=0",
		"path added: /var/lib/cni",
		"program added: containerd",
	}
	if !slices.Equal(got, want) {
		t.Errorf("Compare = %q, want %q (a program that ended is no difference)", got, want)
	}
	if diffs := Compare(before, before); len(diffs) != 0 {
		t.Errorf("a snapshot differs from itself: %v", diffs)
	}
}

func TestUnescapeMountPath(t *testing.T) {
	for in, want := range map[string]string{
		`/run/netns/cni-1`:       "/run/netns/cni-1",
		`/tmp/with\040space`:     "/tmp/with space",
		`/tmp/back\134slash`:     `/tmp/back\slash`,
		`/tmp/not\9escape`:       `/tmp/not\9escape`,
		`/tmp/tab\011and\012new`: "/tmp/tab\tand\nnew",
	} {
		if got := unescapeMountPath(in); got != want {
			t.Errorf("unescapeMountPath(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestDownWithoutANodeRemovesTheDirectory(t *testing.T) {
	parent := t.TempDir()
	if err := Down(context.Background(), filepath.Join(parent, "never-up"), nil); err != nil {
		t.Errorf("Down of a directory that does not exist: %v", err)
	}
	dir := filepath.Join(parent, "half")
	if err := os.MkdirAll(filepath.Join(dir, "logs"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := Down(context.Background(), dir, nil); err != nil {
		t.Fatalf("Down of a directory with no state: %v", err)
	}
	if _, err := os.Stat(dir); !os.IsNotExist(err) {
		t.Errorf("Down left %s: %v", dir, err)
	}
}

func readTar(t *testing.T, path string) map[string][]byte {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = f.Close() }()
	files := map[string][]byte{}
	tr := tar.NewReader(f)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return files
		}
		if err != nil {
			t.Fatal(err)
		}
		if h.Typeflag == tar.TypeReg {
			b, err := io.ReadAll(tr)
			if err != nil {
				t.Fatal(err)
			}
			files[h.Name] = b
		}
	}
}

func mustUnmarshal(t *testing.T, b []byte, v any) {
	t.Helper()
	if err := json.Unmarshal(b, v); err != nil {
		t.Fatalf("%v: %s", err, b)
	}
}

// A control plane alone needs no root, and its API server can crash and
// come back on the same address with the same credentials and data.
func TestControlPlaneOnlyAPIServerStopsAndStartsAgain(t *testing.T) {
	assets := os.Getenv("KUBEBUILDER_ASSETS")
	if assets == "" {
		t.Skip("KUBEBUILDER_ASSETS is unset: run with make test")
	}
	ctx := context.Background()
	dir := filepath.Join(t.TempDir(), "cp")
	if err := Up(ctx, Options{Dir: dir, Assets: assets, ControlPlaneOnly: true}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := Down(ctx, dir, nil); err != nil {
			t.Error(err)
		}
		if _, err := os.Stat(dir); !os.IsNotExist(err) {
			t.Errorf("Down left %s", dir)
		}
	})
	cfg, err := clientcmd.BuildConfigFromFlags("", AdminKubeconfig(dir))
	if err != nil {
		t.Fatal(err)
	}
	cfg.Timeout = 5 * time.Second
	cs := kubernetes.NewForConfigOrDie(cfg)
	cm := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "kept"}, Data: map[string]string{"k": "v"}}
	if _, err := cs.CoreV1().ConfigMaps("default").Create(ctx, cm, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}

	if err := StopProgram(dir, "kube-apiserver", true); err != nil {
		t.Fatal(err)
	}
	if _, err := cs.CoreV1().ConfigMaps("default").Get(ctx, "kept", metav1.GetOptions{}); err == nil {
		t.Fatal("the API server answered after it was killed")
	}
	if err := StartProgram(ctx, dir, "kube-apiserver"); err != nil {
		t.Fatal(err)
	}
	got, err := cs.CoreV1().ConfigMaps("default").Get(ctx, "kept", metav1.GetOptions{})
	if err != nil || got.Data["k"] != "v" {
		t.Fatalf("after the restart, with the same kubeconfig: %v %v", got, err)
	}
	if err := StartProgram(ctx, dir, "kube-apiserver"); err == nil || !strings.Contains(err.Error(), "running already") {
		t.Errorf("starting a running API server again: %v", err)
	}
}
