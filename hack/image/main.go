// Command image builds the manager's container image without a Docker
// engine, as an OCI image layout and as the same layout in one tar (for
// `ctr images import`), and prints the layout, the digest and the name.
// `make image` runs it from the root of the module:
//
//	go run ./hack/image -out bin/image -tar bin/image.tar -name ghcr.io/problemhook/problemhook:v0.1.0 -version 0.1.0
//
// The binary is built next to the layout, in image-build/manager, with
// -version linked in as `make build` links it.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"path/filepath"

	"github.com/problemhook/problemhook/test/harness/image"
)

func main() {
	out := flag.String("out", "bin/image", "directory to write the OCI image layout to")
	tarPath := flag.String("tar", "bin/image.tar", "file to write the OCI image layout to as one tar")
	name := flag.String("name", "", "name of the image, such as ghcr.io/problemhook/problemhook:v0.1.0")
	version := flag.String("version", "", "the release the binary says it is (`manager --version`), such as 0.1.0; empty says dev")
	flag.Parse()
	if *name == "" {
		fmt.Fprintln(os.Stderr, "image: -name is required")
		os.Exit(2)
	}
	if err := run(context.Background(), *out, *tarPath, *name, *version); err != nil {
		fmt.Fprintln(os.Stderr, "image:", err)
		os.Exit(1)
	}
}

// run builds the binary and the image, writes the layout at out and the
// tar at tarPath, and prints the digest line.
func run(ctx context.Context, out, tarPath, name, version string) error {
	bin := filepath.Join(filepath.Dir(out), "image-build", "manager")
	if err := image.BuildBinary(ctx, ".", bin, version); err != nil {
		return err
	}
	img, err := image.Build(image.Options{Binary: bin, CACerts: image.CACerts})
	if err != nil {
		return err
	}
	digest, err := image.WriteLayout(out, img, name)
	if err != nil {
		return err
	}
	if err := image.WriteTar(tarPath, img, name); err != nil {
		return err
	}
	fmt.Println(relative(out), digest, name)
	return nil
}

// relative returns path relative to the working directory when it is below it.
func relative(path string) string {
	wd, err := os.Getwd()
	if err != nil {
		return path
	}
	if rel, err := filepath.Rel(wd, path); err == nil && filepath.IsLocal(rel) {
		return rel
	}
	return path
}
