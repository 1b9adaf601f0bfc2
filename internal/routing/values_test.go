package routing_test

import (
	"errors"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	. "github.com/onsi/gomega"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"

	problemhookv1alpha1 "github.com/problemhook/problemhook/api/v1alpha1"
	"github.com/problemhook/problemhook/internal/actionkind"
	"github.com/problemhook/problemhook/internal/routing"
)

// doubling is a template that doubles a string n times, with no loop.
func doubling(n int) string {
	return `{{$s := "xxxxxxxx"}}` + strings.Repeat(`{{$s = print $s $s}}`, n) + `{{len $s}}`
}

// A string doubled in a variable is refused when the route is checked, at
// the byte budget and before the doubling that would pass it is built:
// checking it allocates a few MiB, not the 8 GiB that 30 doublings want.
func TestDoublingRefused(t *testing.T) {
	for _, n := range []int{25, 30} {
		g := NewWithT(t)
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		_, err := compileActions(httpAction(doubling(n)))
		runtime.ReadMemStats(&after)

		var fe *routing.FieldError
		g.Expect(errors.As(err, &fe)).To(BeTrue(), "error %v", err)
		g.Expect(fe.Reason).To(Equal(problemhookv1alpha1.ReasonInvalidTemplate))
		g.Expect(err).To(MatchError("spec.actions[0].http.body: rendering it for a sample problem: the template's values exceed 1048576 bytes"))
		allocated := after.TotalAlloc - before.TotalAlloc
		t.Logf("%d doublings refused after allocating %d KiB", n, allocated>>10)
		g.Expect(allocated).To(BeNumerically("<", 16<<20), "bytes allocated checking %d doublings", n)
	}
}

// Each function that builds a string, text/template's and ours, and each
// method called with arguments charges the render's budget: three calls
// over a value of 400 KiB held in a variable are refused, those that may
// grow it (html, upper, join, ...) at the first, the others at the third.
// The same template over a short value renders.
func TestValuesCharged(t *testing.T) {
	const big = 400 << 10
	for _, call := range []string{
		`print $m`,
		`printf "%s" $m`,
		`println $m`,
		`html $m`,
		`js $m`,
		`urlquery $m`,
		`json $m`,
		`join $m $.Tags`,
		`upper $m`,
		`lower $m`,
		`pathEscape $m`,
		`truncate 999999 $m`,
		`secret "big"`,
		`$.ReceivedAt.Format $m`,
		`$m | $.ReceivedAt.Format`,
		`$m | $.ReceivedAt.Format | printf "%s"`,
	} {
		t.Run(call, func(t *testing.T) {
			g := NewWithT(t)
			a := httpAction(`{{$m := .Message}}{{range 3}}{{$v := ` + call + `}}{{end}}done`)
			a.HTTP.SecretRef = &problemhookv1alpha1.LocalObjectReference{Name: "s"}
			r, err := compileActions(a)
			g.Expect(err).NotTo(HaveOccurred())

			p := problem()
			p.Message = "short <message>"
			out, err := r.RenderWithSecrets("itsm", "http.body", p, routing.Secrets{"big": []byte(p.Message)})
			g.Expect(err).NotTo(HaveOccurred())
			g.Expect(out).To(Equal("done"))

			p.Message = strings.Repeat("<", big)
			_, err = r.RenderWithSecrets("itsm", "http.body", p, routing.Secrets{"big": []byte(p.Message)})
			g.Expect(err).To(MatchError(`rendering http.body of action "itsm": the template's values exceed 1048576 bytes`))
		})
	}
}

// The largest problem the API admits: every string and list at its
// maximum length.
func largestProblem() *routing.Problem {
	s := func(n int) string { return strings.Repeat("x", n) }
	list := func(items, n int) []string {
		out := make([]string, items)
		for i := range out {
			out[i] = s(n)
		}
		return out
	}
	p := problem()
	p.Event, p.Namespace, p.Target = s(253), s(63), s(63)
	p.ProblemID, p.DisplayID, p.Severity, p.Impact = s(256), s(256), s(256), s(256)
	p.Title, p.Message, p.URL, p.RootCause = s(1024), s(8192), s(4096), s(512)
	p.Tags, p.ManagementZones = list(256, 256), list(64, 256)
	p.ImpactedEntities = make([]routing.Entity, 256)
	for i := range p.ImpactedEntities {
		p.ImpactedEntities[i] = routing.Entity{ID: s(256), Name: s(256), Type: s(256)}
	}
	return p
}

// A template may build values past what it can output: the largest
// problem the API admits, as JSON, kept in a variable and cut down.
func TestLargestProblemAsJSON(t *testing.T) {
	g := NewWithT(t)
	r, err := compileActions(httpAction(`{{$all := json .}}{{len $all}} {{$all | truncate 12}}`))
	g.Expect(err).NotTo(HaveOccurred())
	out, err := r.Render("itsm", "http.body", largestProblem())
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(out).To(MatchRegexp(`^3\d\d\d\d\d {"event":"xx$`))
}

// The routes in config/samples are checked as any route is, and render
// within the value budget for a rich problem and for the largest one
// (which may pass the output's bound: that is not the budget's concern).
func TestSampleRoutesWithinBudget(t *testing.T) {
	g := NewWithT(t)
	files, err := filepath.Glob(filepath.Join("..", "..", "config", "samples", "*.yaml"))
	g.Expect(err).NotTo(HaveOccurred())
	paging, err := filepath.Glob(filepath.Join("..", "..", "config", "samples", "paging", "*.yaml"))
	g.Expect(err).NotTo(HaveOccurred())
	secrets := routing.Secrets{"routing_key": []byte("R0UT1NG")}
	rendered := 0
	for _, f := range append(files, paging...) {
		for _, ir := range readRoutes(t, f) {
			r, err := routing.Compile(&ir.Spec)
			g.Expect(err).NotTo(HaveOccurred(), "%s: route %s", f, ir.Name)
			for _, a := range ir.Spec.Actions {
				for _, tpl := range actionkind.Of(&a).Templates(&a) {
					if tpl.Text == "" {
						continue
					}
					for _, p := range []*routing.Problem{problem(), largestProblem()} {
						_, err := r.RenderWithSecrets(a.Name, tpl.Field, p, secrets)
						if err != nil {
							g.Expect(err).To(MatchError(ContainSubstring("rendered text exceeds")), "%s: %s %s", f, a.Name, tpl.Field)
						}
					}
					rendered++
				}
			}
		}
	}
	g.Expect(rendered).To(BeNumerically(">=", 6))
}

// readRoutes decodes the IntegrationRoutes of a multi-document YAML file.
func readRoutes(t *testing.T, file string) []problemhookv1alpha1.IntegrationRoute {
	t.Helper()
	f, err := os.Open(file)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out []problemhookv1alpha1.IntegrationRoute
	dec := utilyaml.NewYAMLOrJSONDecoder(f, 4096)
	for {
		var ir problemhookv1alpha1.IntegrationRoute
		if err := dec.Decode(&ir); errors.Is(err, io.EOF) {
			return out
		} else if err != nil {
			t.Fatalf("%s: %v", file, err)
		}
		if ir.Kind == "IntegrationRoute" {
			out = append(out, ir)
		}
	}
}
