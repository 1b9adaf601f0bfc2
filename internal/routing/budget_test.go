package routing

import (
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
		err := checkFormat(tc.format)
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
