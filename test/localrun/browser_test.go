package localrun

import (
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	. "github.com/onsi/gomega"

	"github.com/problemhook/problemhook/test/harness/browsertest"
	"github.com/problemhook/problemhook/test/harness/controlplane"
)

// TestDashboardInABrowser is what a person does after `make run`: post the
// printed notification, open the printed dashboard in a real browser, find
// the event in the table, open it and see its Jobs, and read the problem
// feed of a week. A screenshot of each page is left in bin/screenshots.
func TestDashboardInABrowser(t *testing.T) {
	browser := browsertest.Require(t)
	g := NewWithT(t)
	tmp := t.TempDir()
	t.Setenv("KUBECONFIG", filepath.Join(tmp, "no-such-kubeconfig"))
	var stdout controlplane.SyncBuffer
	lr := &localRun{
		manager: controlplane.BuildManager(t), root: controlplane.RepoRoot(), kubeconfig: filepath.Join(tmp, "kubeconfig"),
		receiverAddr: controlplane.FreeAddr(t), probeAddr: controlplane.FreeAddr(t), metricsAddr: controlplane.FreeAddr(t),
		dashboardAddr: controlplane.FreeAddr(t), out: &stdout, errOut: os.Stderr,
	}
	start(t, lr)
	dashboard := "http://" + lr.dashboardAddr + "/"
	g.Eventually(stdout.String).WithTimeout(60*time.Second).Should(ContainSubstring("\n  "+dashboard+"\n"), "no dashboard URL printed")
	// What the printed curl does; the receiver's cache may be a moment
	// behind the target turning Ready, and a sender retries a 503.
	g.Eventually(func(g Gomega) {
		req, err := http.NewRequest(http.MethodPost, "http://"+lr.receiverAddr+"/hooks/problemhook-demo/dynatrace",
			strings.NewReader(`{"State":"OPEN","ProblemID":"1234","PID":"`+demoPID+`","ProblemTitle":"CPU saturation","ProblemSeverity":"RESOURCE_CONTENTION","ProblemImpact":"INFRASTRUCTURE"}`))
		g.Expect(err).NotTo(HaveOccurred())
		req.SetBasicAuth("dynatrace", "change-me")
		req.Header.Set("Content-Type", "application/json")
		resp, err := http.DefaultClient.Do(req)
		g.Expect(err).NotTo(HaveOccurred())
		_ = resp.Body.Close()
		g.Expect(resp.StatusCode).To(Equal(http.StatusAccepted))
	}).WithTimeout(5 * time.Second).Should(Succeed())

	screenshots := filepath.Join(controlplane.RepoRoot(), "bin", "screenshots")
	g.Expect(os.MkdirAll(screenshots, 0o755)).To(Succeed())
	ctx := browsertest.Context(t, browser, 3*time.Minute)
	do := func(what string, steps ...chromedp.Action[chromedp.Void]) {
		t.Helper()
		if err := chromedp.Do(ctx, steps...); err != nil {
			t.Fatalf("%s: %v", what, err)
		}
	}
	text := func(sel string) string {
		t.Helper()
		s, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS(sel)))
		if err != nil {
			t.Fatalf("reading %s: %v", sel, err)
		}
		return s
	}
	shot := func(name string) {
		t.Helper()
		png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100)) // 100: PNG, not JPEG
		if err != nil {
			t.Fatalf("taking %s: %v", name, err)
		}
		g.Expect(os.WriteFile(filepath.Join(screenshots, name), png, 0o644)).To(Succeed())
	}

	do("opening the overview", chromedp.Navigate(dashboard), chromedp.WaitVisible(chromedp.ID("targets")))
	g.Expect(text("#targets")).To(ContainSubstring("problemhook-demo/dynatrace"))
	shot("overview.png")

	// The notification is in the events table, and so is the problem the
	// poller caught up on.
	do("opening the events table",
		chromedp.Click(chromedp.Search(`//nav/a[text()="Events"]`)),
		chromedp.WaitVisible(chromedp.ID("events")))
	g.Expect(text("#events")).To(ContainSubstring("CPU saturation"))
	// The first poll runs once the target is Ready: the page is read again
	// until it has.
	g.Eventually(func() string {
		do("reloading the events table", chromedp.Reload(), chromedp.WaitVisible(chromedp.ID("events")))
		return text("#events")
	}).WithTimeout(30 * time.Second).WithPolling(time.Second).Should(ContainSubstring("Response time degradation"))
	shot("events.png")

	// Its page shows the Jobs the sample route made, one per entity; the
	// page is read again until they are there.
	do("opening the event",
		chromedp.Click(chromedp.Search(`//table[@id="events"]//tr[td[contains(., "CPU saturation")]]//a`)),
		chromedp.WaitVisible(chromedp.ID("event")))
	g.Eventually(func() string {
		do("reloading the event", chromedp.Reload(), chromedp.WaitVisible(chromedp.ID("event")))
		actions, err := chromedp.Run(ctx, chromedp.Evaluate[string](`(document.getElementById("actions") || {innerText: ""}).innerText`))
		if err != nil {
			t.Fatalf("reading the actions: %v", err)
		}
		return actions
	}).WithTimeout(30 * time.Second).WithPolling(time.Second).Should(And(
		ContainSubstring("legacy-incident"), ContainSubstring("HOST-0000000000000001"), ContainSubstring("HOST-0000000000000002"),
	))
	shot("event.png")

	do("opening the problem feed of a week",
		chromedp.Navigate(dashboard),
		chromedp.Click(chromedp.Search(`//table[@id="targets"]//a[text()="problem feed"]`)),
		chromedp.WaitVisible(chromedp.CSS(`button[value="week"]`)),
		chromedp.Click(chromedp.CSS(`button[value="week"]`)),
		chromedp.WaitVisible(chromedp.CSS(`button.current[value="week"]`)),
		chromedp.WaitVisible(chromedp.ID("feed")))
	g.Expect(text("button.current")).To(Equal("week"))
	g.Expect(text("#feed")).To(And(ContainSubstring("P-1234"), ContainSubstring("P-1233")))
	shot("feed.png")

	// On a phone's screen the tables scroll inside the page, which itself
	// is no wider than the screen.
	do("opening the overview on a phone's screen",
		chromedp.EmulateViewport(390, 844),
		chromedp.Navigate(dashboard),
		chromedp.WaitVisible(chromedp.ID("targets")))
	overflow, err := chromedp.Run(ctx, chromedp.Evaluate[bool](`document.documentElement.scrollWidth > window.innerWidth`))
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(overflow).To(BeFalse(), "the page is wider than a phone's screen")
	shot("overview-phone.png")
	t.Logf("Screenshots are in %s", screenshots)
}
