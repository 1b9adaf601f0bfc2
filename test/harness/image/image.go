// Package image builds the manager's container image without a Docker
// engine: the static binary on a root filesystem like the one the
// Dockerfile's final stage gets from gcr.io/distroless/static:nonroot, written
// as an OCI image layout that containerd (`ctr images import`) and registries
// (`crane push`) take. The image is reproducible: the same binary and CA
// certificates always give the same digest, so a digest names a source tree.
//
// The Dockerfile stays the way to build with a Docker engine; image_test.go
// keeps the two in agreement on the user, the entrypoint, the go build flags
// and what the build needs from the module.
package image

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// GoBuildFlags are the flags the manager is built with, the Dockerfile's
// plus -buildvcs=false: the Docker build context has no .git, so its binary
// has no VCS stamp, and a stamp would change the digest with every commit
// and every uncommitted change.
var GoBuildFlags = []string{"-trimpath", "-ldflags=-s -w", "-buildvcs=false"}

// GoBuildEnv is the environment the manager is built in: a static binary
// for Linux, which distroless/static can run.
var GoBuildEnv = []string{"CGO_ENABLED=0", "GOOS=linux"}

// User is who the manager runs as: distroless's nonroot user and group.
const User = "65532:65532"

// Entrypoint runs the manager, which is at the root of the image.
var Entrypoint = []string{"/manager"}

// WorkingDir is the manager's working directory.
const WorkingDir = "/"

// CACerts is where the CA certificates are, both on the Debian build machine
// (package ca-certificates) and in the image, where Go's crypto/x509 looks
// for them: the manager calls Dynatrace, Twilio and DingTalk over TLS.
const CACerts = "/etc/ssl/certs/ca-certificates.crt"

// epoch is every time the image records, so that a rebuild gives the same bytes.
var epoch = time.Unix(0, 0).UTC()

// Options are the files an image is built from.
type Options struct {
	// Binary is the manager, built by BuildBinary.
	Binary string
	// CACerts is the bundle of CA certificates to trust, usually the
	// build machine's CACerts.
	CACerts string
}

// VersionVar is the variable the release is linked into, with -X, as
// the Makefile's build does.
const VersionVar = "github.com/problemhook/problemhook/internal/version.Version"

// BuildBinary builds the manager of the module at repoRoot into out, as
// the Dockerfile does, for the host's architecture. A version other than
// "" is linked into VersionVar, so that `manager --version` says it.
func BuildBinary(ctx context.Context, repoRoot, out, version string) error {
	args := []string{"build"}
	for _, f := range GoBuildFlags {
		if strings.HasPrefix(f, "-ldflags=") && version != "" {
			f += " -X " + VersionVar + "=" + version
		}
		args = append(args, f)
	}
	args = append(args, "-o", out, ".")
	cmd := exec.CommandContext(ctx, "go", args...)
	cmd.Dir = repoRoot
	cmd.Env = append(os.Environ(), GoBuildEnv...)
	cmd.Env = append(cmd.Env, "GOARCH="+runtime.GOARCH)
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("building the manager: %w\n%s", err, out)
	}
	return nil
}

// Build returns the manager's image for the host's architecture (the one
// BuildBinary builds for): one layer holding the binary, the CA
// certificates, and distroless's users, /tmp and home directory.
func Build(o Options) (v1.Image, error) {
	bin, err := os.ReadFile(o.Binary)
	if err != nil {
		return nil, fmt.Errorf("reading the manager binary: %w", err)
	}
	certs, err := os.ReadFile(o.CACerts)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("no CA certificates at %s: install Debian's ca-certificates package (`make ca-certificates` does, as root)", o.CACerts)
	}
	if err != nil {
		return nil, fmt.Errorf("reading the CA certificates: %w", err)
	}
	rootfs, err := layerTar(bin, certs)
	if err != nil {
		return nil, err
	}
	layer, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) {
		return io.NopCloser(bytes.NewReader(rootfs)), nil
	}, tarball.WithMediaType(types.OCILayer), tarball.WithCompressedCaching)
	if err != nil {
		return nil, fmt.Errorf("compressing the layer: %w", err)
	}

	img := mutate.ConfigMediaType(mutate.MediaType(empty.Image, types.OCIManifestSchema1), types.OCIConfigJSON)
	cfg, err := img.ConfigFile()
	if err != nil {
		return nil, err
	}
	cfg.Created = v1.Time{Time: epoch}
	cfg.OS = "linux"
	cfg.Architecture = runtime.GOARCH
	cfg.Config = v1.Config{
		User:       User,
		Entrypoint: Entrypoint,
		WorkingDir: WorkingDir,
		// distroless's environment.
		Env: []string{
			"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
			"SSL_CERT_FILE=" + CACerts,
		},
	}
	if img, err = mutate.ConfigFile(img, cfg); err != nil {
		return nil, err
	}
	return mutate.Append(img, mutate.Addendum{
		Layer:   layer,
		History: v1.History{Created: v1.Time{Time: epoch}, CreatedBy: "hack/image: the manager on distroless/static:nonroot's files"},
	})
}

// entry is one file or directory of the image's layer.
type entry struct {
	name  string
	mode  int64
	owner int // uid and gid
	body  []byte
}

// layerTar returns the image's root filesystem as a tar: entries in sorted
// order, each with its owner and mode and the epoch as its time.
func layerTar(bin, certs []byte) ([]byte, error) {
	const nonroot = 65532
	es := []entry{
		{name: "etc/", mode: 0o755},
		{name: "etc/passwd", mode: 0o644, body: []byte(
			"root:x:0:0:root:/root:/sbin/nologin\n" +
				"nonroot:x:65532:65532:nonroot:/home/nonroot:/sbin/nologin\n")},
		{name: "etc/group", mode: 0o644, body: []byte("root:x:0:\nnonroot:x:65532:\n")},
		{name: "etc/ssl/", mode: 0o755},
		{name: "etc/ssl/certs/", mode: 0o755},
		{name: strings.TrimPrefix(CACerts, "/"), mode: 0o644, body: certs},
		{name: "home/", mode: 0o755},
		{name: "home/nonroot/", mode: 0o700, owner: nonroot},
		{name: strings.TrimPrefix(Entrypoint[0], "/"), mode: 0o755, body: bin},
		{name: "tmp/", mode: 0o1777},
	}
	slices.SortFunc(es, func(a, b entry) int { return strings.Compare(a.name, b.name) })

	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, e := range es {
		h := &tar.Header{
			Name: e.name, Mode: e.mode, Uid: e.owner, Gid: e.owner,
			Typeflag: tar.TypeReg, Size: int64(len(e.body)), ModTime: epoch,
		}
		if strings.HasSuffix(e.name, "/") {
			h.Typeflag = tar.TypeDir
		}
		if err := tw.WriteHeader(h); err != nil {
			return nil, fmt.Errorf("writing %s to the layer: %w", e.name, err)
		}
		if _, err := tw.Write(e.body); err != nil {
			return nil, fmt.Errorf("writing %s to the layer: %w", e.name, err)
		}
	}
	if err := tw.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// WriteLayout writes img as the only image of an OCI image layout at dir,
// named name, and returns its digest. A layout already at dir is replaced,
// so that it never keeps the blobs of an earlier build.
func WriteLayout(dir string, img v1.Image, name string) (v1.Hash, error) {
	if err := removeLayout(dir); err != nil {
		return v1.Hash{}, err
	}
	p, err := layout.Write(dir, empty.Index)
	if err != nil {
		return v1.Hash{}, fmt.Errorf("writing the image layout %s: %w", dir, err)
	}
	err = p.AppendImage(img,
		layout.WithAnnotations(map[string]string{
			"org.opencontainers.image.ref.name": name,
			"io.containerd.image.name":          name, // what `ctr images import` names the image
		}),
		layout.WithPlatform(v1.Platform{OS: "linux", Architecture: runtime.GOARCH}),
	)
	if err != nil {
		return v1.Hash{}, fmt.Errorf("writing the image to %s: %w", dir, err)
	}
	return img.Digest()
}

// removeLayout removes the OCI image layout at dir, and refuses to remove a
// directory that is something else: dir comes from a command line.
func removeLayout(dir string) error {
	entries, err := os.ReadDir(dir)
	if errors.Is(err, fs.ErrNotExist) || (err == nil && len(entries) == 0) {
		return nil
	}
	if err != nil {
		return err
	}
	if _, err := os.Stat(filepath.Join(dir, "oci-layout")); err != nil {
		return fmt.Errorf("not replacing %s: it is not an OCI image layout", dir)
	}
	return os.RemoveAll(dir)
}

// WriteTar writes img, named name, as an OCI image layout in one tar at
// path, the form `ctr images import` takes: the layout's files in sorted
// order, with the epoch as their time.
func WriteTar(path string, img v1.Image, name string) (err error) {
	dir, err := os.MkdirTemp("", "image-layout-")
	if err != nil {
		return err
	}
	defer func() { err = errors.Join(err, os.RemoveAll(dir)) }()
	if _, err := WriteLayout(dir, img, name); err != nil {
		return err
	}

	f, err := os.Create(path)
	if err != nil {
		return err
	}
	defer func() { _ = f.Close() }()
	tw := tar.NewWriter(f)
	// WalkDir visits in lexical order.
	err = filepath.WalkDir(dir, func(file string, d fs.DirEntry, err error) error {
		if err != nil || file == dir {
			return err
		}
		rel, err := filepath.Rel(dir, file)
		if err != nil {
			return err
		}
		h := &tar.Header{Name: filepath.ToSlash(rel), Mode: 0o644, Typeflag: tar.TypeReg, ModTime: epoch}
		if d.IsDir() {
			h.Name += "/"
			h.Mode = 0o755
			h.Typeflag = tar.TypeDir
			return tw.WriteHeader(h)
		}
		body, err := os.ReadFile(file)
		if err != nil {
			return err
		}
		h.Size = int64(len(body))
		if err := tw.WriteHeader(h); err != nil {
			return err
		}
		_, err = tw.Write(body)
		return err
	})
	if err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	if err := tw.Close(); err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	return f.Close()
}
