package fuzz

import (
	"context"
	"go/parser"
	"go/token"
	"testing"

	. "github.com/onsi/gomega"
)

func TestFuzzFuncs(t *testing.T) {
	for _, tc := range []struct {
		name, src string
		want      []string
	}{
		{"a target", "func FuzzParse(f *testing.F) {}", []string{"FuzzParse"}},
		{"Fuzz alone", "func Fuzz(f *testing.F) {}", []string{"Fuzz"}},
		{"a digit after Fuzz", "func Fuzz2(f *testing.F) {}", []string{"Fuzz2"}},
		{"lower case after Fuzz", "func Fuzzy(f *testing.F) {}", nil},
		{"a test", "func TestParse(t *testing.T) {}", nil},
		{"a helper taking *testing.T", "func FuzzHelper(t *testing.T) {}", nil},
		{"a value, not a pointer", "func FuzzValue(f testing.F) {}", nil},
		{"two parameters", "func FuzzTwo(f *testing.F, s string) {}", nil},
		{"a method", "type x struct{}\nfunc (x) FuzzMethod(f *testing.F) {}", nil},
		{"another package's F", "func FuzzOther(f *other.F) {}", nil},
		{"two in one file", "func FuzzA(f *testing.F) {}\nfunc FuzzB(f *testing.F) {}", []string{"FuzzA", "FuzzB"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			g := NewWithT(t)
			f, err := parser.ParseFile(token.NewFileSet(), "x_test.go", "package x\n"+tc.src, 0)
			g.Expect(err).NotTo(HaveOccurred())
			g.Expect(fuzzFuncs(f)).To(Equal(tc.want))
		})
	}
}

// TestTargetsFindsTheModulesTargets reads the module this test is in: its
// payload parsers and route templates and expressions are fuzzed.
func TestTargetsFindsTheModulesTargets(t *testing.T) {
	g := NewWithT(t)
	targets, err := Targets(context.Background(), "../../..")
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(targets).To(ContainElements(
		Target{"github.com/problemhook/problemhook/internal/payload", "FuzzParseDynatrace"},
		Target{"github.com/problemhook/problemhook/internal/payload", "FuzzParseGuance"},
		Target{"github.com/problemhook/problemhook/internal/payload", "FuzzParseWorkflow"},
		Target{"github.com/problemhook/problemhook/internal/routing", "FuzzRouteTemplate"},
		Target{"github.com/problemhook/problemhook/internal/routing", "FuzzRouteExpression"},
	))
	for _, tg := range targets {
		g.Expect(tg.Name).To(HavePrefix("Fuzz"))
	}
}
