package dashboard

import (
	"cmp"
	"fmt"
	"slices"
	"strings"
	"time"

	problemhookv1alpha1 "github.com/problemhook/problemhook/api/v1alpha1"
)

// ChartRange is a time frame the overview's chart can show: span, cut
// into buckets of step, the last of them the one now falls in.
type ChartRange struct {
	Name  string
	Label string
	Span  time.Duration
	Step  time.Duration
}

// chartRanges are the frames the overview offers, the default first.
var chartRanges = []ChartRange{
	{Name: "24h", Label: "last 24 hours, per hour", Span: 24 * time.Hour, Step: time.Hour},
	{Name: "7d", Label: "last 7 days, per 6 hours", Span: 7 * 24 * time.Hour, Step: 6 * time.Hour},
}

// lookupChartRange finds the frame named name, the default when empty.
func lookupChartRange(name string) (ChartRange, error) {
	if name == "" {
		return chartRanges[0], nil
	}
	names := make([]string, 0, len(chartRanges))
	for _, r := range chartRanges {
		if r.Name == name {
			return r, nil
		}
		names = append(names, r.Name)
	}
	return ChartRange{}, badRequest("range %q is not one of %s", name, strings.Join(names, ", "))
}

// Counts are the events received and the action runs settled in one
// bucket, of every target or of one.
type Counts struct {
	Open      int `json:"open"`
	Resolved  int `json:"resolved"`
	Succeeded int `json:"succeeded"`
	Failed    int `json:"failed"`
}

// Bucket is one stretch of the chart, from Start for the range's step.
type Bucket struct {
	Start time.Time `json:"start"`
	Counts
	// ByTarget are the counts of each target (namespace/name) that has
	// any in this bucket.
	ByTarget map[string]Counts `json:"byTarget,omitempty"`
}

// targetKey names a target by strings that point into the cached event,
// so that keying a map by it copies nothing per event.
type targetKey struct{ namespace, name string }

// bucketCounter counts events into the buckets of a range. add costs a
// map lookup per event and allocates only once per target: an overview
// of 10,000 events is meant to cost little more than listing them.
type bucketCounter struct {
	first, now time.Time
	step       time.Duration
	total      []Counts
	perTarget  map[targetKey][]Counts
	// last is the target counted last, whose next event is often the
	// next one listed: its buckets are found without a map lookup.
	last       targetKey
	lastCounts []Counts
}

// newBucketCounter lays out r's buckets so that the last holds now. They
// start on whole steps of UTC (hours; 00:00, 06:00, 12:00, 18:00), so
// that a bucket keeps its bounds from one view to the next.
func newBucketCounter(r ChartRange, now time.Time) *bucketCounter {
	n := int(r.Span / r.Step)
	return &bucketCounter{
		first:     now.Truncate(r.Step).Add(-time.Duration(n-1) * r.Step),
		now:       now,
		step:      r.Step,
		total:     make([]Counts, n),
		perTarget: map[targetKey][]Counts{},
	}
}

// index is the bucket t falls in, or -1 outside the range. A time after
// now, from a clock that is ahead, is outside too, though the last bucket
// reaches past now.
func (c *bucketCounter) index(t time.Time) int {
	if t.Before(c.first) || t.After(c.now) {
		return -1
	}
	return int(t.Sub(c.first) / c.step)
}

// add counts ev: its state in the bucket it was received in (its
// creation when it has no receivedAt), and each of its runs that
// succeeded or failed in the bucket it settled in (completionTime, or
// when the event was received if the run has none).
func (c *bucketCounter) add(ev *problemhookv1alpha1.ProblemEvent) {
	received := ev.Spec.ReceivedAt.Time
	if received.IsZero() {
		received = ev.CreationTimestamp.Time
	}
	if i := c.index(received); i >= 0 {
		total, target := c.at(ev, i)
		switch ev.Spec.State {
		case problemhookv1alpha1.StateOpen:
			total.Open++
			target.Open++
		case problemhookv1alpha1.StateResolved:
			total.Resolved++
			target.Resolved++
		}
	}
	for j := range ev.Status.Actions {
		run := &ev.Status.Actions[j]
		if run.State != problemhookv1alpha1.ActionSucceeded && run.State != problemhookv1alpha1.ActionFailed {
			continue
		}
		settled := received
		if run.CompletionTime != nil {
			settled = run.CompletionTime.Time
		}
		i := c.index(settled)
		if i < 0 {
			continue
		}
		total, target := c.at(ev, i)
		if run.State == problemhookv1alpha1.ActionSucceeded {
			total.Succeeded++
			target.Succeeded++
		} else {
			total.Failed++
			target.Failed++
		}
	}
}

// at is bucket i of every target and of ev's target.
func (c *bucketCounter) at(ev *problemhookv1alpha1.ProblemEvent, i int) (total, target *Counts) {
	key := targetKey{ev.Namespace, ev.Spec.Target}
	if c.lastCounts == nil || key != c.last {
		counts := c.perTarget[key]
		if counts == nil {
			counts = make([]Counts, len(c.total))
			c.perTarget[key] = counts
		}
		c.last, c.lastCounts = key, counts
	}
	return &c.total[i], &c.lastCounts[i]
}

// buckets are the counts, oldest first, each with the targets that have
// any in it.
func (c *bucketCounter) buckets() []Bucket {
	keys := make([]targetKey, 0, len(c.perTarget))
	for k := range c.perTarget {
		keys = append(keys, k)
	}
	slices.SortFunc(keys, func(a, b targetKey) int {
		return cmp.Or(cmp.Compare(a.namespace, b.namespace), cmp.Compare(a.name, b.name))
	})
	names := make([]string, len(keys))
	for i, k := range keys {
		names[i] = k.namespace + "/" + k.name
	}
	out := make([]Bucket, len(c.total))
	for i := range out {
		out[i] = Bucket{Start: c.first.Add(time.Duration(i) * c.step).UTC(), Counts: c.total[i]}
		for t, k := range keys {
			if n := c.perTarget[k][i]; n != (Counts{}) {
				if out[i].ByTarget == nil {
					out[i].ByTarget = map[string]Counts{}
				}
				out[i].ByTarget[names[t]] = n
			}
		}
	}
	return out
}

// Chart is a bar chart of buckets laid out for the overview's inline
// SVG: the page draws it with no script, and its stylesheet colours it.
type Chart struct {
	// ID is the svg element's id.
	ID    string
	Label string
	// Width and Height are the viewBox's; the stylesheet scales it.
	Width, Height int
	// The plot lies between Left and Width, Top and Base; Max is the
	// value at Top.
	Left, Top, Base, Max int
	Bars                 []Bar
	Ticks                []Tick
}

// PlotHeight is the height of the plot, from Top to Base.
func (c *Chart) PlotHeight() int { return c.Base - c.Top }

// Bar is one bucket: Segments stacked from the base line, drawn between
// BarX and BarX+BarWidth, within a hit area as wide as the bucket and as
// tall as the plot, so that its Title shows wherever the pointer is.
type Bar struct {
	Start          string
	X, Width       int
	BarX, BarWidth int
	Title          string
	Segments       []Segment
}

// Segment is one series of a bar, its Class naming the series.
type Segment struct {
	Class string
	Value int
	Y, H  int
}

// Tick labels the time at X.
type Tick struct {
	X     int
	Label string
}

// Chart geometry, in viewBox units.
const (
	chartPlotWidth = 840 // 35 per hour of a day, 30 per 6 hours of a week
	chartLeft      = 40  // room for the y axis's label
	chartTop       = 10
	chartBottom    = 28 // room for the time labels
)

// series is one stacked series: its class and how to read it.
type series struct {
	class string
	value func(Counts) int
}

var (
	eventSeries  = []series{{"open", func(n Counts) int { return n.Open }}, {"resolved", func(n Counts) int { return n.Resolved }}}
	actionSeries = []series{{"succeeded", func(n Counts) int { return n.Succeeded }}, {"failed", func(n Counts) int { return n.Failed }}}
)

// newChart lays out the buckets of r as stacked bars of ss, height high.
func newChart(id, label string, r ChartRange, buckets []Bucket, ss []series, height int) *Chart {
	c := &Chart{ID: id, Label: label, Width: chartLeft + chartPlotWidth, Height: height, Left: chartLeft, Top: chartTop, Base: height - chartBottom}
	for _, b := range buckets {
		sum := 0
		for _, s := range ss {
			sum += s.value(b.Counts)
		}
		c.Max = max(c.Max, sum)
	}
	plot := c.Base - c.Top
	// A scale of at least 1 keeps an empty chart's axis meaningful.
	scale := max(c.Max, 1)
	step := chartPlotWidth / max(len(buckets), 1)
	// Time labels every 6 hours of a day, and every midnight of a week.
	tickEvery, format := 6*time.Hour, "15:04"
	if r.Span > 24*time.Hour {
		tickEvery, format = 24*time.Hour, "Jan 2"
	}
	for i, b := range buckets {
		x := chartLeft + i*step
		bar := Bar{Start: b.Start.Format(time.RFC3339), X: x, Width: step, BarX: x + step/8, BarWidth: step - step/4, Title: bucketTitle(b, r.Step, ss)}
		y := c.Base
		for _, s := range ss {
			v := s.value(b.Counts)
			// Rounded up, so that a single event is never invisible.
			h := (v*plot + scale - 1) / scale
			y -= h
			bar.Segments = append(bar.Segments, Segment{Class: s.class, Value: v, Y: y, H: h})
		}
		c.Bars = append(c.Bars, bar)
		if b.Start.Truncate(tickEvery).Equal(b.Start) {
			c.Ticks = append(c.Ticks, Tick{X: chartLeft + i*step, Label: b.Start.Format(format)})
		}
	}
	return c
}

// bucketTitle is a bar's tooltip: its time, its counts, and each
// target's on a line of its own.
func bucketTitle(b Bucket, step time.Duration, ss []series) string {
	var sb strings.Builder
	sb.WriteString(b.Start.Format("2006-01-02 15:04"))
	sb.WriteString("–")
	sb.WriteString(b.Start.Add(step).Format("15:04 UTC"))
	sb.WriteString(": ")
	sb.WriteString(seriesText(b.Counts, ss))
	names := make([]string, 0, len(b.ByTarget))
	for name, n := range b.ByTarget {
		if seriesText(n, ss) != "none" {
			names = append(names, name)
		}
	}
	slices.Sort(names)
	for _, name := range names {
		fmt.Fprintf(&sb, "\n%s: %s", name, seriesText(b.ByTarget[name], ss))
	}
	return sb.String()
}

// seriesText is e.g. "2 open, 1 resolved", or "none".
func seriesText(n Counts, ss []series) string {
	parts := make([]string, 0, len(ss))
	for _, s := range ss {
		parts = append(parts, fmt.Sprintf("%d %s", s.value(n), s.class))
	}
	if slices.ContainsFunc(ss, func(s series) bool { return s.value(n) != 0 }) {
		return strings.Join(parts, ", ")
	}
	return "none"
}
