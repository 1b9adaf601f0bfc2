// Package fuzz finds the module's fuzz targets and runs them. `make fuzz`
// and the fuzz drill both take their list from Targets, so a target added
// to any package is run by both without being named anywhere else.
package fuzz

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"io"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
)

// Target is one fuzz target: a function FuzzXxx(*testing.F) in a package's
// tests.
type Target struct {
	// Package is the import path of the package whose tests hold it.
	Package string
	// Name is the function's name.
	Name string
}

// String names the target as go test's -fuzz flag and a reader would.
func (t Target) String() string { return t.Package + "." + t.Name }

// Targets lists the fuzz targets of every package of the module rooted at
// root, sorted by package and name. It reads the test files as go test
// does, through go list and the parser, without building a test binary:
// a target is a top-level func named Fuzz… that takes one *testing.F.
func Targets(ctx context.Context, root string) ([]Target, error) {
	cmd := exec.CommandContext(ctx, "go", "list", "-json=ImportPath,Dir,TestGoFiles,XTestGoFiles", "./...")
	cmd.Dir = root
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return nil, fmt.Errorf("listing the module's packages: %w: %s", err, strings.TrimSpace(stderr.String()))
	}
	var targets []Target
	dec := json.NewDecoder(bytes.NewReader(out))
	for {
		var pkg struct {
			ImportPath, Dir           string
			TestGoFiles, XTestGoFiles []string
		}
		if err := dec.Decode(&pkg); errors.Is(err, io.EOF) {
			break
		} else if err != nil {
			return nil, fmt.Errorf("reading go list's output: %w", err)
		}
		fset := token.NewFileSet()
		for _, name := range slices.Concat(pkg.TestGoFiles, pkg.XTestGoFiles) {
			path := filepath.Join(pkg.Dir, name)
			f, err := parser.ParseFile(fset, path, nil, parser.SkipObjectResolution)
			if err != nil {
				return nil, fmt.Errorf("parsing %s: %w", path, err)
			}
			for _, fn := range fuzzFuncs(f) {
				targets = append(targets, Target{Package: pkg.ImportPath, Name: fn})
			}
		}
	}
	slices.SortFunc(targets, func(a, b Target) int { return strings.Compare(a.String(), b.String()) })
	return targets, nil
}

// fuzzFuncs names the file's fuzz targets: top-level functions named Fuzz…
// (Fuzz itself, or Fuzz followed by anything but a lower-case letter, as
// go test requires) whose single parameter is a *testing.F.
func fuzzFuncs(f *ast.File) []string {
	var names []string
	for _, d := range f.Decls {
		fn, ok := d.(*ast.FuncDecl)
		if !ok || fn.Recv != nil || !isFuzzName(fn.Name.Name) {
			continue
		}
		params := fn.Type.Params.List
		if len(params) != 1 || len(params[0].Names) > 1 {
			continue
		}
		star, ok := params[0].Type.(*ast.StarExpr)
		if !ok {
			continue
		}
		sel, ok := star.X.(*ast.SelectorExpr)
		if !ok || sel.Sel.Name != "F" {
			continue
		}
		if pkg, ok := sel.X.(*ast.Ident); !ok || pkg.Name != "testing" {
			continue
		}
		names = append(names, fn.Name.Name)
	}
	return names
}

func isFuzzName(name string) bool {
	rest, ok := strings.CutPrefix(name, "Fuzz")
	return ok && (rest == "" || rest[0] < 'a' || rest[0] > 'z')
}

// Run fuzzes t for fuzzTime (a duration, or a count of executions such as
// 50000x) from the module rooted at root, and returns go test's output. A
// crasher fails the run and is kept by go test under the package's
// testdata/fuzz, where every later go test runs it.
func (t Target) Run(ctx context.Context, root, fuzzTime string) ([]byte, error) {
	cmd := exec.CommandContext(ctx, "go", "test", t.Package, "-run=^$", "-fuzz=^"+t.Name+"$", "-fuzztime="+fuzzTime)
	cmd.Dir = root
	out, err := cmd.CombinedOutput()
	if err != nil {
		return out, fmt.Errorf("fuzzing %s: %w", t, err)
	}
	return out, nil
}
