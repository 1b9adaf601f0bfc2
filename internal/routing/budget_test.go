package routing

import (
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"

	. "github.com/onsi/gomega"
)

// Widths and precisions up to MaxFormatWidth pass; past it, or taken from
// an argument, the format is refused before fmt allocates anything.
func TestCheckFormat(t *testing.T) {
	for _, tc := range []struct {
		format string
		ok     bool
	}{
		{"plain text", true},
		{"%s %d %q %v %%", true},
		{"100%% done", true},
		{"%-20s|%8.3f|%03d|%+d|%#x|% d", true},
		{"%256s %.256f", true},
		{"%[2]*[1]d", false},
		{"%[1]257d", false},
		{"%257s", false},
		{"%.257f", false},
		{"%9.999s", false},
		{"%999999d", false},
		{"%*d", false},
		{"%.*f", false},
		{"%", true},
		{"trailing %5", true},
	} {
		_, err := checkFormat(tc.format)
		if tc.ok {
			NewWithT(t).Expect(err).NotTo(HaveOccurred(), tc.format)
		} else {
			NewWithT(t).Expect(err).To(HaveOccurred(), tc.format)
		}
	}
}

// A render's budget runs out at MaxRenderSteps steps, or at its deadline,
// which is looked at every 64 steps.
func TestRenderBudget(t *testing.T) {
	g := NewWithT(t)
	b := newRenderBudget()
	for range MaxRenderSteps {
		_, err := b.step()
		g.Expect(err).NotTo(HaveOccurred())
	}
	_, err := b.step()
	g.Expect(err).To(MatchError("the template loops or calls templates more than 10000 times"))

	late := &renderBudget{deadline: time.Now().Add(-time.Second)}
	for range 63 {
		_, err := late.step()
		g.Expect(err).NotTo(HaveOccurred())
	}
	_, err = late.step()
	g.Expect(err).To(MatchError("the template ran longer than 1s"))
}

// What printf builds stays within the bound reserved for it, whatever the
// verbs do to the strings they print.
func TestFormatBound(t *testing.T) {
	s := strings.Repeat("a\x00\x01\"<\xff\u2028é\U0001F600", 50)
	for _, format := range []string{
		"", "plain", "%s", "%v", "%q", "%+q", "%#q", "%x", "%X", "% x", "%# x", "%#v",
		"%256s", "%-256q", "%.3s", "%d", "%c %U %e", "%s %s", "%!", "%%%s%%",
		"%256d", "%b", "%o", "%-256U", "% #256x",
		"%[1]s%[1]s%[1]q", "%[1]q%[1]q", "%[3]s", "%[2]s %[1]s", "%d%d%d%d%d%d",
	} {
		shape, err := checkFormat(format)
		NewWithT(t).Expect(err).NotTo(HaveOccurred(), format)
		for _, args := range [][]any{{}, {s}, {s, s}, {s, s, s, s}, {[]byte(s)}, {[]byte(s), s}} {
			out := fmt.Sprintf(format, args...)
			NewWithT(t).Expect(len(out)).To(BeNumerically("<=", shape.bound(format, args)), "%q of %d arguments", format, len(args))
		}
	}
}

// Every function of a render looks at the clock, and each of ours and of
// text/template's that builds a string is the budget's.
func TestBudgetFuncs(t *testing.T) {
	g := NewWithT(t)
	late := &renderBudget{deadline: time.Now().Add(-time.Second)}
	fm := late.funcMap(nil)
	for _, name := range []string{"print", "printf", "println", "html", "js", "urlquery"} {
		g.Expect(fm).To(HaveKey(name))
	}
	for name := range funcs {
		g.Expect(fm).To(HaveKey(name))
	}
	for name, f := range fm {
		if name == stepFunc {
			continue // every 64 steps: TestRenderBudget
		}
		fn := reflect.ValueOf(f)
		var args []reflect.Value
		for i := range fn.Type().NumIn() - btoi(fn.Type().IsVariadic()) {
			args = append(args, reflect.Zero(fn.Type().In(i)))
		}
		out := fn.Call(args)
		g.Expect(out[len(out)-1].Interface()).To(MatchError("the template ran longer than 1s"), name)
	}
}

func btoi(b bool) int {
	if b {
		return 1
	}
	return 0
}
