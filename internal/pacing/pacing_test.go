package controllers

import (
	"testing"
	"time"

	. "github.com/onsi/gomega"
)

// Turns are given in order, at most rate.Messages in any window; a run
// keeps the turn it was given; a block holds every run of its lane.
func TestPacerTurns(t *testing.T) {
	g := NewWithT(t)
	t0 := time.Date(2026, 12, 2, 8, 0, 0, 0, time.UTC)
	rate := Rate{Messages: 3, Per: 10 * time.Second}
	var p pacer
	var got []time.Duration
	for i := range 7 {
		got = append(got, p.turn("robot", string(rune('a'+i)), rate, t0).Sub(t0))
	}
	g.Expect(got).To(Equal([]time.Duration{0, 0, 0, 10 * time.Second, 10 * time.Second, 10 * time.Second, 20 * time.Second}))
	g.Expect(p.turn("robot", "d", rate, t0.Add(time.Second))).To(Equal(t0.Add(10*time.Second)), "a waiting run keeps its turn")
	g.Expect(p.turn("robot", "d", rate, t0.Add(10*time.Second))).To(Equal(t0.Add(10*time.Second)), "and takes it when it comes")
	g.Expect(p.turn("other", "x", rate, t0)).To(Equal(t0), "lanes are apart")

	p.block("twilio", t0.Add(3*time.Second))
	g.Expect(p.turn("twilio", "a", Rate{}, t0.Add(time.Second))).To(Equal(t0.Add(3 * time.Second)))
	g.Expect(p.turn("twilio", "b", Rate{}, t0.Add(4*time.Second))).To(Equal(t0.Add(4 * time.Second)))
}

// A rendered http.path extends the URL's path; what a problem puts in it
// never reaches another host.
func TestJoinPath(t *testing.T) {
	g := NewWithT(t)
	for _, tc := range []struct{ base, path, want, err string }{
		{"https://api.opsgenie.com", "/v2/alerts/P-1/close?identifierType=alias", "https://api.opsgenie.com/v2/alerts/P-1/close?identifierType=alias", ""},
		{"https://api.opsgenie.com/", "v2/alerts", "https://api.opsgenie.com/v2/alerts", ""},
		{"https://hooks.example/base", "/x", "https://hooks.example/base/x", ""},
		{"https://hooks.example", "/@evil.example/x", "https://hooks.example/@evil.example/x", ""},
		{"https://hooks.example/base", "/../other", "", `the path "/../other" leaves the URL's host or path`},
		{"https://hooks.example?token=1", "/x", "", "a URL with a query cannot take a path"},
	} {
		got, err := joinPath(tc.base, tc.path)
		if tc.err != "" {
			g.Expect(err).To(MatchError(tc.err), tc.path)
			continue
		}
		g.Expect(err).NotTo(HaveOccurred(), tc.path)
		g.Expect(got).To(Equal(tc.want))
	}
}
