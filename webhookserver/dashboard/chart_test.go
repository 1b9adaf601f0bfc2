package dashboard_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	. "github.com/onsi/gomega"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	problemhookv1alpha1 "github.com/problemhook/problemhook/api/v1alpha1"
	"github.com/problemhook/problemhook/test/harness/browsertest"
	"github.com/problemhook/problemhook/webhookserver/dashboard"
)

// chartWant is what one bucket should hold: its counts, and each
// target's.
type chartWant struct {
	total    dashboard.Counts
	byTarget map[string]dashboard.Counts
}

// seedChart stores events of two targets received over the last hours
// and days before now, some with action runs, and returns a dashboard on
// now's clock and what its 24-hour and 7-day charts should show, by
// bucket start (RFC3339); every other bucket is empty. now is a half
// hour past 15:00, years ahead of the other tests' events and of other
// calls' now, so that only the events stored here fall in its charts.
func seedChart(t *testing.T, now time.Time) (srv *httptest.Server, day, week map[string]chartWant) {
	t.Helper()
	g := NewWithT(t)
	tg := env.NewTarget(t, problemhookv1alpha1.FormatDynatrace)
	other := env.NewTarget(t, problemhookv1alpha1.FormatGuance)
	open, resolved := problemhookv1alpha1.StateOpen, problemhookv1alpha1.StateResolved
	ago := func(d time.Duration) time.Time { return now.Add(-d) }
	run := func(state problemhookv1alpha1.ActionState, settled *time.Time) problemhookv1alpha1.ActionStatus {
		a := problemhookv1alpha1.ActionStatus{Route: "page", Action: "call", Type: problemhookv1alpha1.ActionTypeJob, State: state}
		if settled != nil {
			a.CompletionTime = &metav1.Time{Time: *settled}
		}
		return a
	}
	withRuns := func(ev *problemhookv1alpha1.ProblemEvent, runs ...problemhookv1alpha1.ActionStatus) {
		ev.Status.Actions = runs
		g.Expect(env.Client.Status().Update(context.Background(), ev)).To(Succeed())
	}
	storeEvent(t, tg, 1, open, ago(10*time.Minute))
	storeEvent(t, tg, 2, open, ago(20*time.Minute))
	storeEvent(t, tg, 3, resolved, ago(2*time.Hour))
	withRuns(storeEvent(t, tg, 4, open, ago(5*time.Hour)),
		run(problemhookv1alpha1.ActionSucceeded, new(ago(4*time.Hour))),
		run(problemhookv1alpha1.ActionFailed, new(ago(25*time.Minute))),
		run(problemhookv1alpha1.ActionRunning, nil))
	// A run that settled with no completionTime counts when its event
	// was received.
	withRuns(storeEvent(t, other, 5, open, ago(30*time.Minute)), run(problemhookv1alpha1.ActionFailed, nil))
	storeEvent(t, other, 6, resolved, ago(23*time.Hour))
	storeEvent(t, other, 7, open, ago(3*24*time.Hour))
	storeEvent(t, other, 8, open, ago(8*24*time.Hour))  // before either chart
	storeEvent(t, other, 9, open, now.Add(2*time.Hour)) // after now: a clock that is ahead

	a, b := tg.NS+"/"+tg.Name, other.NS+"/"+other.Name
	hour := func(h int) string {
		return now.Truncate(time.Hour).Add(time.Duration(h) * time.Hour).Format(time.RFC3339)
	}
	sixHours := func(h int) string {
		return now.Truncate(6 * time.Hour).Add(time.Duration(h) * time.Hour).Format(time.RFC3339)
	}
	day = map[string]chartWant{
		hour(-23): {dashboard.Counts{Resolved: 1}, map[string]dashboard.Counts{b: {Resolved: 1}}},
		hour(-5):  {dashboard.Counts{Open: 1}, map[string]dashboard.Counts{a: {Open: 1}}},
		hour(-4):  {dashboard.Counts{Succeeded: 1}, map[string]dashboard.Counts{a: {Succeeded: 1}}},
		hour(-2):  {dashboard.Counts{Resolved: 1}, map[string]dashboard.Counts{a: {Resolved: 1}}},
		hour(0):   {dashboard.Counts{Open: 3, Failed: 2}, map[string]dashboard.Counts{a: {Open: 2, Failed: 1}, b: {Open: 1, Failed: 1}}},
	}
	week = map[string]chartWant{
		sixHours(-72): {dashboard.Counts{Open: 1}, map[string]dashboard.Counts{b: {Open: 1}}},
		sixHours(-24): {dashboard.Counts{Resolved: 1}, map[string]dashboard.Counts{b: {Resolved: 1}}},
		sixHours(-6):  {dashboard.Counts{Open: 1, Succeeded: 1}, map[string]dashboard.Counts{a: {Open: 1, Succeeded: 1}}},
		sixHours(0): {dashboard.Counts{Open: 3, Resolved: 1, Failed: 2}, map[string]dashboard.Counts{
			a: {Open: 2, Resolved: 1, Failed: 1}, b: {Open: 1, Failed: 1}}},
	}
	srv = newDashboard(t, func(d *dashboard.Server) { d.Now = func() time.Time { return now } })
	// The cache has every event, and every run, once the week's chart
	// counts them all.
	g.Eventually(func(g Gomega) {
		var o dashboard.Overview
		getJSON(g, srv, "/api/overview?range=7d", http.StatusOK, &o)
		var sum dashboard.Counts
		for _, b := range o.EventsOverTime {
			sum.Open, sum.Resolved, sum.Succeeded, sum.Failed = sum.Open+b.Open, sum.Resolved+b.Resolved, sum.Succeeded+b.Succeeded, sum.Failed+b.Failed
		}
		g.Expect(sum).To(Equal(dashboard.Counts{Open: 5, Resolved: 2, Succeeded: 1, Failed: 2}))
	}).Should(Succeed())
	return srv, day, week
}

// checkBuckets expects n buckets step apart ending with the one now is
// in, holding what want says and nothing else.
func checkBuckets(g Gomega, got []dashboard.Bucket, now time.Time, n int, step time.Duration, want map[string]chartWant) {
	g.Expect(got).To(HaveLen(n))
	g.Expect(got[n-1].Start).To(Equal(now.Truncate(step)))
	for i, b := range got {
		g.Expect(b.Start).To(Equal(got[n-1].Start.Add(-time.Duration(n-1-i)*step)), "buckets are %s apart, oldest first", step)
		w := want[b.Start.Format(time.RFC3339)]
		g.Expect(b.Counts).To(Equal(w.total), b.Start.String())
		g.Expect(b.ByTarget).To(Equal(w.byTarget), b.Start.String())
	}
}

// The overview's JSON counts the events received in each hour of the last
// day, or each 6 hours of the last week, by state and by target, and the
// action runs by when they settled; the page draws them as inline SVG,
// one bar per bucket with its counts as data and its targets in its title.
func TestDashboardEventsOverTime(t *testing.T) {
	g := NewWithT(t)
	now := time.Date(2036, 3, 14, 15, 30, 0, 0, time.UTC)
	srv, day, week := seedChart(t, now)

	var o, o7 dashboard.Overview
	getJSON(g, srv, "/api/overview", http.StatusOK, &o)
	g.Expect(o.Range).To(Equal("24h"))
	checkBuckets(g, o.EventsOverTime, now, 24, time.Hour, day)
	getJSON(g, srv, "/api/overview?range=7d", http.StatusOK, &o7)
	g.Expect(o7.Range).To(Equal("7d"))
	checkBuckets(g, o7.EventsOverTime, now, 28, 6*time.Hour, week)
	var fail map[string]string
	getJSON(g, srv, "/api/overview?range=1y", http.StatusBadRequest, &fail)
	g.Expect(fail["error"]).To(Equal(`range "1y" is not one of 24h, 7d`))

	status, page, _ := get(t, srv, "/")
	g.Expect(status).To(Equal(http.StatusOK))
	g.Expect(page).To(ContainSubstring(`<svg class="chart" id="events-chart"`))
	g.Expect(page).To(ContainSubstring(`<a href="/?range=7d#over-time">`), "the week's chart is linked")
	g.Expect(regexp.MustCompile(`data-series="open"`).FindAllString(page, -1)).To(HaveLen(24))
	g.Expect(page).To(ContainSubstring(`<g class="bucket" data-start="2036-03-14T15:00:00Z"><title>2036-03-14 15:00–16:00 UTC: 3 open, 0 resolved`))
	g.Expect(page).NotTo(MatchRegexp(`style=|<script`), "the Content-Security-Policy allows neither")
	_, page, _ = get(t, srv, "/?range=7d")
	g.Expect(regexp.MustCompile(`data-series="failed"`).FindAllString(page, -1)).To(HaveLen(28))
}

// chartBar is one bar as the browser laid it out.
type chartBar struct {
	Start  string             `json:"start"`
	Title  string             `json:"title"`
	Values map[string]int     `json:"values"`
	Height map[string]float64 `json:"height"`
	Fill   map[string]string  `json:"fill"`
}

// readBars reads the bars of the chart with id from the page the browser
// shows, with their drawn heights and the colours the stylesheet gave them.
const readBars = `Array.from(document.querySelectorAll("#%s g.bucket")).map(g => {
	const bar = {start: g.dataset.start, title: g.querySelector("title").textContent, values: {}, height: {}, fill: {}};
	for (const r of g.querySelectorAll("rect[data-series]")) {
		bar.values[r.dataset.series] = Number(r.dataset.value);
		bar.height[r.dataset.series] = r.getBBox().height;
		bar.fill[r.dataset.series] = getComputedStyle(r).fill;
	}
	return bar;
})`

// A real browser draws the charts from what was stored: a bar per bucket
// whose heights, values and tooltip agree with the JSON, coloured by the
// stylesheet (the Content-Security-Policy blocks no part of it), and the
// link to the week's chart leads to it.
func TestDashboardChartInABrowser(t *testing.T) {
	browser := browsertest.Require(t)
	g := NewWithT(t)
	srv, _, _ := seedChart(t, time.Date(2037, 3, 14, 15, 30, 0, 0, time.UTC))

	ctx := browsertest.Context(t, browser, 2*time.Minute)

	check := func(rangeName string, n int) {
		t.Helper()
		var o dashboard.Overview
		getJSON(g, srv, "/api/overview?range="+rangeName, http.StatusOK, &o)
		for id, series := range map[string][]string{"events-chart": {"open", "resolved"}, "actions-chart": {"succeeded", "failed"}} {
			bars, err := chromedp.Run(ctx, chromedp.Evaluate[[]chartBar](strings.ReplaceAll(readBars, "%s", id)))
			g.Expect(err).NotTo(HaveOccurred())
			g.Expect(bars).To(HaveLen(n), id)
			for i, bar := range bars {
				b := o.EventsOverTime[i]
				g.Expect(bar.Start).To(Equal(b.Start.Format(time.RFC3339)))
				g.Expect(bar.Title).To(HavePrefix(b.Start.Format("2006-01-02 15:04") + "–"))
				want := map[string]int{"open": b.Open, "resolved": b.Resolved, "succeeded": b.Succeeded, "failed": b.Failed}
				for _, s := range series {
					g.Expect(bar.Values).To(HaveKeyWithValue(s, want[s]), "%s %s %s", id, bar.Start, s)
					if want[s] > 0 {
						g.Expect(bar.Height[s]).To(BeNumerically(">", 0), "%s %s %s is drawn", id, bar.Start, s)
						g.Expect(bar.Fill[s]).To(HavePrefix("rgb("), "the stylesheet colours %s", s)
					} else {
						g.Expect(bar.Height[s]).To(BeZero(), "%s %s %s", id, bar.Start, s)
					}
				}
				// Each target with something in the bar's series has its
				// line in the tooltip.
				for target, n := range b.ByTarget {
					got := map[string]int{"open": n.Open, "resolved": n.Resolved, "succeeded": n.Succeeded, "failed": n.Failed}
					if got[series[0]]+got[series[1]] > 0 {
						g.Expect(bar.Title).To(ContainSubstring("\n"+target+": "), "%s %s", id, bar.Start)
					} else {
						g.Expect(bar.Title).NotTo(ContainSubstring(target), "%s %s", id, bar.Start)
					}
				}
			}
		}
	}
	g.Expect(chromedp.Do(ctx, chromedp.Navigate(srv.URL+"/"), chromedp.WaitVisible(chromedp.ID("events-chart")))).To(Succeed())
	check("24h", 24)
	g.Expect(chromedp.Do(ctx,
		chromedp.Click(chromedp.Search(`//nav[@id="ranges"]/a[contains(@href, "range=7d")]`)),
		chromedp.WaitVisible(chromedp.CSS(`#ranges a.current[href*="range=7d"]`)))).To(Succeed())
	check("7d", 28)
}
