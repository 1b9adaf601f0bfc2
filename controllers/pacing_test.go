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
