package image_test

import (
	"archive/tar"
	"bytes"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"strings"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/types"
	. "github.com/onsi/gomega"

	"github.com/problemhook/problemhook/test/harness/image"
)

// writeFile writes body to a new file in a test's directory and returns its path.
func writeFile(t *testing.T, body string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "file")
	if err := os.WriteFile(path, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

func digest(g Gomega, o image.Options) v1.Hash {
	img, err := image.Build(o)
	g.Expect(err).NotTo(HaveOccurred())
	d, err := img.Digest()
	g.Expect(err).NotTo(HaveOccurred())
	return d
}

func TestDigestFollowsTheFiles(t *testing.T) {
	g := NewWithT(t)
	o := image.Options{Binary: writeFile(t, "manager 1"), CACerts: writeFile(t, "certs 1")}
	first := digest(g, o)
	g.Expect(digest(g, o)).To(Equal(first), "the same files give the same image")

	changedBinary := o
	changedBinary.Binary = writeFile(t, "manager 2")
	g.Expect(digest(g, changedBinary)).NotTo(Equal(first), "a changed binary gives another image")

	changedCerts := o
	changedCerts.CACerts = writeFile(t, "certs 2")
	g.Expect(digest(g, changedCerts)).NotTo(Equal(first), "changed CA certificates give another image")
}

func TestMissingCACertsNameTheDebianPackage(t *testing.T) {
	g := NewWithT(t)
	_, err := image.Build(image.Options{Binary: writeFile(t, "manager"), CACerts: filepath.Join(t.TempDir(), "missing.crt")})
	g.Expect(err).To(MatchError(ContainSubstring("install Debian's ca-certificates package")))
}

// TestImageIsDistrolessNonroot checks the config and the files the manager
// finds at run time, as gcr.io/distroless/static:nonroot has them.
func TestImageIsDistrolessNonroot(t *testing.T) {
	g := NewWithT(t)
	img, err := image.Build(image.Options{Binary: writeFile(t, "manager"), CACerts: writeFile(t, "certs")})
	g.Expect(err).NotTo(HaveOccurred())

	g.Expect(img.MediaType()).To(Equal(types.OCIManifestSchema1))
	m, err := img.Manifest()
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(m.Config.MediaType).To(Equal(types.OCIConfigJSON))
	g.Expect(m.Layers).To(HaveLen(1))
	g.Expect(m.Layers[0].MediaType).To(Equal(types.OCILayer))

	cfg, err := img.ConfigFile()
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(cfg.OS).To(Equal("linux"))
	g.Expect(cfg.Architecture).To(Equal(runtime.GOARCH))
	g.Expect(cfg.Created.Unix()).To(BeZero())
	g.Expect(cfg.Config.User).To(Equal("65532:65532"))
	g.Expect(cfg.Config.Entrypoint).To(Equal([]string{"/manager"}))
	g.Expect(cfg.Config.WorkingDir).To(Equal("/"))
	g.Expect(cfg.Config.Env).To(ContainElement(HavePrefix("PATH=/usr/local/sbin:")))

	layers, err := img.Layers()
	g.Expect(err).NotTo(HaveOccurred())
	rc, err := layers[0].Uncompressed()
	g.Expect(err).NotTo(HaveOccurred())
	defer func() { _ = rc.Close() }()
	type file struct {
		name     string
		mode     int64
		uid, gid int
		body     string
	}
	var files []file
	tr := tar.NewReader(rc)
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		g.Expect(err).NotTo(HaveOccurred())
		g.Expect(h.ModTime.Unix()).To(BeZero(), h.Name)
		body, err := io.ReadAll(tr)
		g.Expect(err).NotTo(HaveOccurred())
		files = append(files, file{h.Name, h.Mode, h.Uid, h.Gid, string(body)})
	}
	g.Expect(files).To(Equal([]file{
		{"etc/", 0o755, 0, 0, ""},
		{"etc/group", 0o644, 0, 0, "root:x:0:\nnonroot:x:65532:\n"},
		{"etc/passwd", 0o644, 0, 0, "root:x:0:0:root:/root:/sbin/nologin\nnonroot:x:65532:65532:nonroot:/home/nonroot:/sbin/nologin\n"},
		{"etc/ssl/", 0o755, 0, 0, ""},
		{"etc/ssl/certs/", 0o755, 0, 0, ""},
		{"etc/ssl/certs/ca-certificates.crt", 0o644, 0, 0, "certs"},
		{"home/", 0o755, 0, 0, ""},
		{"home/nonroot/", 0o700, 65532, 65532, ""},
		{"manager", 0o755, 0, 0, "manager"},
		{"tmp/", 0o1777, 0, 0, ""},
	}))
}

// TestWriteLayoutReplacesOnlyALayout checks that a second build leaves no
// blob of the first behind, and that a directory that is not a layout is
// left alone.
func TestWriteLayoutReplacesOnlyALayout(t *testing.T) {
	g := NewWithT(t)
	dir := filepath.Join(t.TempDir(), "image")
	for _, bin := range []string{"manager 1", "manager 2"} {
		img, err := image.Build(image.Options{Binary: writeFile(t, bin), CACerts: writeFile(t, "certs")})
		g.Expect(err).NotTo(HaveOccurred())
		_, err = image.WriteLayout(dir, img, "name")
		g.Expect(err).NotTo(HaveOccurred())
	}
	blobs, err := os.ReadDir(filepath.Join(dir, "blobs", "sha256"))
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(blobs).To(HaveLen(3), "the manifest, the config and the layer of the second build")

	other := t.TempDir()
	g.Expect(os.WriteFile(filepath.Join(other, "notes"), nil, 0o644)).To(Succeed())
	img, err := image.Build(image.Options{Binary: writeFile(t, "manager"), CACerts: writeFile(t, "certs")})
	g.Expect(err).NotTo(HaveOccurred())
	_, err = image.WriteLayout(other, img, "name")
	g.Expect(err).To(MatchError(ContainSubstring("it is not an OCI image layout")))
	g.Expect(filepath.Join(other, "notes")).To(BeAnExistingFile())
}

// TestManagerImageIsReproducible builds the manager once and its image
// twice, as two runs of `make image` would, and expects the same bytes.
func TestManagerImageIsReproducible(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the manager")
	}
	g := NewWithT(t)
	dir := t.TempDir()
	bin := filepath.Join(dir, "manager")
	g.Expect(image.BuildBinary(t.Context(), repoRoot(t), bin, "")).To(Succeed())
	certs := writeFile(t, "certs")
	const name = "ghcr.io/problemhook/problemhook:test"

	var digests []v1.Hash
	var tars [][32]byte
	for i, run := range []string{"a", "b"} {
		img, err := image.Build(image.Options{Binary: bin, CACerts: certs})
		g.Expect(err).NotTo(HaveOccurred())
		out := filepath.Join(dir, run)
		d, err := image.WriteLayout(out, img, name)
		g.Expect(err).NotTo(HaveOccurred())
		digests = append(digests, d)

		index, err := layout.ImageIndexFromPath(out)
		g.Expect(err).NotTo(HaveOccurred())
		im, err := index.IndexManifest()
		g.Expect(err).NotTo(HaveOccurred())
		g.Expect(im.Manifests).To(HaveLen(1), "run %d", i)
		g.Expect(im.Manifests[0].Digest).To(Equal(d))
		g.Expect(im.Manifests[0].Annotations).To(HaveKeyWithValue("org.opencontainers.image.ref.name", name))
		g.Expect(im.Manifests[0].Annotations).To(HaveKeyWithValue("io.containerd.image.name", name))

		tarPath := filepath.Join(dir, run+".tar")
		g.Expect(image.WriteTar(tarPath, img, name)).To(Succeed())
		b, err := os.ReadFile(tarPath)
		g.Expect(err).NotTo(HaveOccurred())
		tars = append(tars, sha256.Sum256(b))
	}
	g.Expect(digests[1]).To(Equal(digests[0]), "the image's digest")
	g.Expect(tars[1]).To(Equal(tars[0]), "the bytes of the tar")
}

// TestDockerfileAgrees keeps the Dockerfile, the way to build the image with
// a Docker engine, in agreement with `make image`.
func TestDockerfileAgrees(t *testing.T) {
	root := repoRoot(t)
	read := func(name string) string {
		b, err := os.ReadFile(filepath.Join(root, name))
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}
	for _, msg := range disagreements(read("Dockerfile"), read(".dockerignore"), managerSources(t, root)) {
		t.Error(msg)
	}
}

// TestDisagreements checks that each way the Dockerfile can drift from
// make image is caught, with a message that says where.
func TestDisagreements(t *testing.T) {
	const dockerfile = `FROM golang AS builder
COPY go.mod go.sum ./
COPY main.go main.go
COPY api/ api/
RUN CGO_ENABLED=0 GOOS=${TARGETOS:-linux} GOARCH=${TARGETARCH} \
    go build -trimpath -ldflags="-s -w" -o manager .

# The final stage.
FROM gcr.io/distroless/static:nonroot
WORKDIR /
COPY --from=builder /workspace/manager .
USER 65532:65532
ENTRYPOINT ["/manager"]
`
	sources := map[string]string{"go.mod": "the module", "go.sum": "the module", "main.go": "m", "api/": "m/api/v1"}
	for _, tc := range []struct {
		name, old, new, dockerignore string
		want                         []string
	}{
		{name: "agrees"},
		{name: "a directory not copied", old: "COPY api/ api/\n", want: []string{
			"The Dockerfile does not COPY api/, which the manager needs for m/api/v1"}},
		{name: "a directory copied without its slash", old: "COPY api/ api/", new: "COPY api api"},
		{name: "another user", old: "USER 65532:65532", new: "USER 0", want: []string{
			`The Dockerfile's final stage has USER "0", make image "65532:65532"`}},
		{name: "another entrypoint", old: `["/manager"]`, new: `["/manager", "-v"]`, want: []string{
			`The Dockerfile's final stage has ENTRYPOINT ["/manager","-v"], make image ["/manager"]`}},
		{name: "another flag", old: "-trimpath ", want: []string{
			`The Dockerfile's go build has flags ["-ldflags=-s -w"], make image ["-trimpath" "-ldflags=-s -w"] and -buildvcs=false`}},
		{name: "cgo", old: "CGO_ENABLED=0", new: "CGO_ENABLED=1", want: []string{
			"The Dockerfile's go build does not set CGO_ENABLED=0, as make image does"}},
		{name: "git in the context", dockerignore: "bin/\n", want: []string{
			".dockerignore does not leave out .git, so the Dockerfile's go build stamps the binary with VCS information, which make image leaves out (-buildvcs=false)"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			g := NewWithT(t)
			if tc.dockerignore == "" {
				tc.dockerignore = "bin/\n.git/\n"
			}
			got := disagreements(strings.Replace(dockerfile, tc.old, tc.new, 1), tc.dockerignore, sources)
			g.Expect(got).To(Equal(tc.want))
		})
	}
}

// disagreements returns how a Dockerfile (with its .dockerignore) builds
// another image than `make image` does from the module's sources, the
// top-level paths the manager's build reads (managerSources).
func disagreements(dockerfile, dockerignore string, sources map[string]string) []string {
	var msgs []string
	stages := parseDockerfile(dockerfile)
	if len(stages) < 2 {
		return []string{"The Dockerfile has no build stage and final stage"}
	}
	final := stages[len(stages)-1]
	if user := final.last("USER"); user != image.User {
		msgs = append(msgs, fmt.Sprintf("The Dockerfile's final stage has USER %q, make image %q", user, image.User))
	}
	if dir := final.last("WORKDIR"); dir != image.WorkingDir {
		msgs = append(msgs, fmt.Sprintf("The Dockerfile's final stage has WORKDIR %q, make image %q", dir, image.WorkingDir))
	}
	var entrypoint []string
	if err := json.Unmarshal([]byte(final.last("ENTRYPOINT")), &entrypoint); err != nil || !slices.Equal(entrypoint, image.Entrypoint) {
		want, _ := json.Marshal(image.Entrypoint)
		msgs = append(msgs, fmt.Sprintf("The Dockerfile's final stage has ENTRYPOINT %s, make image %s", compactJSON(final.last("ENTRYPOINT")), want))
	}

	var build, copied []string
	for _, s := range stages[:len(stages)-1] {
		for _, in := range s {
			switch {
			case in.cmd == "RUN" && strings.Contains(in.args, "go build"):
				build = shellWords(in.args)
			case in.cmd == "COPY":
				copied = append(copied, copySources(in.args)...)
			}
		}
	}
	env, flags := goBuild(build)
	for _, kv := range image.GoBuildEnv {
		if !slices.Contains(env, kv) {
			msgs = append(msgs, fmt.Sprintf("The Dockerfile's go build does not set %s, as make image does", kv))
		}
	}
	// make image adds -buildvcs=false for what the Docker build gets from
	// a context without .git.
	if want := slices.DeleteFunc(slices.Clone(image.GoBuildFlags), func(f string) bool { return f == "-buildvcs=false" }); !slices.Equal(flags, want) {
		msgs = append(msgs, fmt.Sprintf("The Dockerfile's go build has flags %q, make image %q and -buildvcs=false", flags, want))
	}
	if ignored := strings.Fields(dockerignore); !slices.Contains(ignored, ".git") && !slices.Contains(ignored, ".git/") {
		msgs = append(msgs, ".dockerignore does not leave out .git, so the Dockerfile's go build stamps the binary with VCS information, which make image leaves out (-buildvcs=false)")
	}

	var paths []string
	for path := range sources {
		paths = append(paths, path)
	}
	slices.Sort(paths)
	for _, path := range paths {
		if !slices.Contains(copied, strings.TrimSuffix(path, "/")) && !slices.Contains(copied, ".") {
			msgs = append(msgs, fmt.Sprintf("The Dockerfile does not COPY %s, which the manager needs for %s", path, sources[path]))
		}
	}
	return msgs
}

// compactJSON returns s without the spaces JSON allows, or s when it is not JSON.
func compactJSON(s string) string {
	var b bytes.Buffer
	if json.Compact(&b, []byte(s)) != nil {
		return s
	}
	return b.String()
}

// managerSources returns each top-level file or directory of the module that
// building the manager reads (go.mod, go.sum, main.go, api/, ...), with why:
// the first package of the manager in it.
func managerSources(t *testing.T, root string) map[string]string {
	t.Helper()
	cmd := exec.Command("go", "list", "-deps", "-f",
		`{{if and .Module .Module.Main}}{{.ImportPath}}{{"\t"}}{{.Dir}}{{range .GoFiles}}{{"\t"}}{{.}}{{end}}{{range .EmbedFiles}}{{"\t"}}{{.}}{{end}}{{end}}`, ".")
	cmd.Dir = root
	cmd.Env = append(os.Environ(), image.GoBuildEnv...)
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("listing the manager's packages: %v", err)
	}
	sources := map[string]string{"go.mod": "the module", "go.sum": "the module"}
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		if line == "" {
			continue
		}
		f := strings.Split(line, "\t")
		pkg, dir, files := f[0], f[1], f[2:]
		rel, err := filepath.Rel(root, dir)
		if err != nil {
			t.Fatal(err)
		}
		var top []string
		if rel == "." {
			top = files // the root package: its own files only
		} else {
			top = []string{strings.Split(filepath.ToSlash(rel), "/")[0] + "/"}
		}
		for _, path := range top {
			if _, ok := sources[path]; !ok {
				sources[path] = pkg
			}
		}
	}
	return sources
}

// stage is the instructions of one stage of a Dockerfile, in order.
type stage []instruction

type instruction struct{ cmd, args string }

// last returns the arguments of the stage's last cmd instruction, the one that counts.
func (s stage) last(cmd string) string {
	for _, in := range slices.Backward(s) {
		if in.cmd == cmd {
			return in.args
		}
	}
	return ""
}

// parseDockerfile splits a Dockerfile into its stages: lines joined where
// they end with a backslash, comments left out.
func parseDockerfile(text string) []stage {
	var stages []stage
	var line string
	for _, l := range strings.Split(text, "\n") {
		l = strings.TrimSpace(l)
		if strings.HasPrefix(l, "#") {
			continue
		}
		if rest, ok := strings.CutSuffix(l, `\`); ok {
			line += rest + " "
			continue
		}
		line += l
		cmd, args, _ := strings.Cut(strings.TrimSpace(line), " ")
		line = ""
		if cmd == "" {
			continue
		}
		cmd = strings.ToUpper(cmd)
		if cmd == "FROM" {
			stages = append(stages, nil)
		}
		if len(stages) > 0 {
			stages[len(stages)-1] = append(stages[len(stages)-1], instruction{cmd, strings.TrimSpace(args)})
		}
	}
	return stages
}

// copySources returns the sources of a COPY from the build context, without
// "./" or a trailing slash; a COPY --from another stage copies nothing from
// the context.
func copySources(args string) []string {
	var paths []string
	for _, w := range strings.Fields(args) {
		if strings.HasPrefix(w, "--from") {
			return nil
		}
		if !strings.HasPrefix(w, "--") {
			paths = append(paths, w)
		}
	}
	if len(paths) < 2 {
		return nil
	}
	var sources []string
	for _, p := range paths[:len(paths)-1] {
		if p != "./" {
			p = strings.TrimPrefix(p, "./")
		}
		sources = append(sources, strings.TrimSuffix(p, "/"))
	}
	return sources
}

// goBuild splits the words of a `go build` command line into the
// environment it sets, with ${VAR:-default} taken as its default, and the
// flags it gives go build, without -o and its file.
func goBuild(words []string) (env, flags []string) {
	i := 0
	for i+1 < len(words) && (words[i] != "go" || words[i+1] != "build") {
		i++
	}
	if i+1 >= len(words) {
		return nil, nil
	}
	defaulted := regexp.MustCompile(`\$\{\w+:-([^}]*)\}`)
	for _, w := range words[:i] {
		env = append(env, defaulted.ReplaceAllString(w, "$1"))
	}
	rest := words[i+2:]
	for j := 0; j < len(rest); j++ {
		switch {
		case rest[j] == "-o":
			j++
		case strings.HasPrefix(rest[j], "-"):
			flags = append(flags, rest[j])
		}
	}
	return env, flags
}

// shellWords splits a shell command line into words, removing the quotes
// around and within them: -ldflags="-s -w" is the one word -ldflags=-s -w.
func shellWords(s string) []string {
	var words []string
	var word strings.Builder
	inWord := false
	var quote rune
	for _, r := range s {
		switch {
		case quote != 0 && r == quote:
			quote = 0
		case quote != 0:
			word.WriteRune(r)
		case r == '"' || r == '\'':
			quote, inWord = r, true
		case r == ' ' || r == '\t':
			if inWord {
				words = append(words, word.String())
				word.Reset()
				inWord = false
			}
		default:
			word.WriteRune(r)
			inWord = true
		}
	}
	if inWord {
		words = append(words, word.String())
	}
	return words
}

// repoRoot returns the root of the module: the first directory up from
// the test's that has a go.mod.
func repoRoot(t *testing.T) string {
	t.Helper()
	dir, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			t.Fatal("no go.mod above the test's directory")
		}
		dir = parent
	}
}

// The release is linked into the variable `make build` sets: a -X naming
// a variable that does not exist is ignored by the linker, silently, and
// internal/version's test holds the Makefile to that package.
func TestVersionVarIsTheMakefiles(t *testing.T) {
	makefile, err := os.ReadFile(filepath.Join(repoRoot(t), "Makefile"))
	if err != nil {
		t.Fatal(err)
	}
	if want := "-X " + image.VersionVar + "=$(VERSION)"; !strings.Contains(string(makefile), want) {
		t.Errorf("the Makefile's build does not pass %q", want)
	}
}
