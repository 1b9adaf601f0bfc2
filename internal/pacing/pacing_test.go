package pacing

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
	var p Pacer
	var got []time.Duration
	for i := range 7 {
		got = append(got, p.Turn("robot", string(rune('a'+i)), rate, t0).Sub(t0))
	}
	g.Expect(got).To(Equal([]time.Duration{0, 0, 0, 10 * time.Second, 10 * time.Second, 10 * time.Second, 20 * time.Second}))
	g.Expect(p.Turn("robot", "d", rate, t0.Add(time.Second))).To(Equal(t0.Add(10*time.Second)), "a waiting run keeps its turn")
	g.Expect(p.Turn("robot", "d", rate, t0.Add(10*time.Second))).To(Equal(t0.Add(10*time.Second)), "and takes it when it comes")
	g.Expect(p.Turn("other", "x", rate, t0)).To(Equal(t0), "lanes are apart")

	p.Block("twilio", t0.Add(3*time.Second), t0)
	g.Expect(p.Turn("twilio", "a", Rate{}, t0.Add(time.Second))).To(Equal(t0.Add(3 * time.Second)))
	g.Expect(p.Turn("twilio", "b", Rate{}, t0.Add(4*time.Second))).To(Equal(t0.Add(4 * time.Second)))
}
