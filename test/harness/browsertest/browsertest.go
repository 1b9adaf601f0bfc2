// Package browsertest drives a real Chromium for the dashboard's browser
// tests, the same way in each.
package browsertest

import (
	"context"
	"os"
	"os/exec"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// Require returns the Chromium to drive, $CHROMIUM or Debian's chromium,
// or skips t, saying how to get one.
func Require(t *testing.T) string {
	t.Helper()
	if path := os.Getenv("CHROMIUM"); path != "" {
		return path
	}
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if path, err := exec.LookPath(name); err == nil {
			return path
		}
	}
	t.Skip("No Chromium to drive: install Debian's chromium package (make chromium does, and make test when it runs as root), or set CHROMIUM to a Chromium or Chrome binary")
	return ""
}

// Context returns a context that drives browser, a window of 1366×900,
// for at most timeout; it ends with t. The browser starts at the first
// action.
func Context(t *testing.T, browser string, timeout time.Duration) context.Context {
	t.Helper()
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(browser),
		chromedp.NoSandbox, // root in a container has no user namespace to sandbox in
		chromedp.DisableGPU,
		chromedp.WindowSize(1366, 900),
	)
	allocCtx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancel := chromedp.NewContext(allocCtx, chromedp.WithLogf(t.Logf))
	ctx, cancelTimeout := context.WithTimeout(ctx, timeout)
	t.Cleanup(func() {
		cancelTimeout()
		cancel()
		cancelAlloc()
	})
	return ctx
}
