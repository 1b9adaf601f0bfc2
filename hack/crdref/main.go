// Command crdref writes a Markdown reference of the fields of the
// CustomResourceDefinitions in a directory. `make manifests` runs it after
// controller-gen, so the reference always describes the CRDs as generated:
//
//	go run ./hack/crdref -crds config/crd/bases -out docs/reference.md
//
// Each kind gets its description, API version, names and printer columns,
// then one table per object level (spec, each nested object, each array's
// items; the same for status). Rows list required fields first, then the
// optional ones, each group in alphabetical order: YAML maps do not keep the
// order in which the Go types declare fields, and "what must I set" is the
// first question a reader has.
//
// load.go reads and orders the CRDs, render.go writes each kind's sections
// and tables, validation.go what a field's schema allows, and markdown.go
// makes text safe in a table cell.
package main

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"
)

func main() {
	crds := flag.String("crds", "config/crd/bases", "directory of the CRD YAML files to describe")
	out := flag.String("out", "docs/reference.md", "Markdown file to write")
	flag.Parse()
	if err := run(*crds, *out); err != nil {
		fmt.Fprintln(os.Stderr, "crdref:", err)
		os.Exit(1)
	}
}

// run writes the reference of the CRDs in dir to out.
func run(dir, out string) error {
	doc, err := generate(dir, filepath.ToSlash(filepath.Clean(dir)))
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(out), 0o755); err != nil {
		return fmt.Errorf("creating the directory of %s: %w", out, err)
	}
	if err := os.WriteFile(out, doc, 0o644); err != nil {
		return fmt.Errorf("writing %s: %w", out, err)
	}
	return nil
}

// generate reads the CRDs in dir and renders their reference; source is how
// the header names dir.
func generate(dir, source string) ([]byte, error) {
	crds, err := loadCRDs(dir)
	if err != nil {
		return nil, err
	}
	if len(crds) == 0 {
		return nil, fmt.Errorf("no CustomResourceDefinitions in %s", dir)
	}
	return render(crds, source), nil
}
