// Package browsertest drives a real headless Chromium for tests of Sluice's
// web pages: it finds the browser, starts it with a throwaway profile and
// nothing running in the background, and gives the test a tab whose steps
// stop the test when the browser fails.
//
// A machine without Chromium skips the test, except under CI (the CI
// environment variable set), where a missing browser is a failure.
package browsertest

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// Chromium returns the path of the Chromium (or Chrome) binary. Without one
// it skips the test, or fails it when the CI environment variable is set.
// Call it before starting anything the test would otherwise start for
// nothing.
func Chromium(t testing.TB) string {
	t.Helper()
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	if os.Getenv("CI") != "" {
		t.Fatal("chromium is not installed (make deps installs it)")
	}
	t.Skip("chromium is not installed; run make deps")
	return ""
}

// Tab is the tab of a headless Chromium that one test drives. Its methods
// stop or fail the test, saying which step went wrong; Context gives the
// tab to chromedp for anything they do not cover.
type Tab struct {
	// ServerLog, when set, returns the log of the server the page talks
	// to; a step that fails prints it, since the cause is often there.
	ServerLog func() string

	t   testing.TB
	ctx context.Context
}

// New starts the Chromium at exe headless, with an empty profile in a
// temporary directory, a 1280×900 window and English as its language
// (pages that follow the browser's language open in English whatever the
// machine's locale), and without QUIC, sync, component updates or other
// background traffic that would reach past the server under test. The
// whole session must end within timeout; the browser stops when the test
// ends.
func New(t testing.TB, exe string, timeout time.Duration) *Tab {
	t.Helper()
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(exe), chromedp.NoSandbox, chromedp.DisableGPU,
		chromedp.Flag("disable-quic", true), chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true), chromedp.Flag("disable-sync", true),
		chromedp.Flag("lang", "en-US"), chromedp.UserDataDir(t.TempDir()), chromedp.WindowSize(1280, 900))
	actx, cancel := chromedp.NewExecAllocator(context.Background(), opts...)
	t.Cleanup(cancel)
	ctx, cancel := chromedp.NewContext(actx)
	t.Cleanup(cancel)
	ctx, cancel = context.WithTimeout(ctx, timeout)
	t.Cleanup(cancel)
	return &Tab{t: t, ctx: ctx}
}

// Context is the tab's context, for chromedp calls the methods do not
// cover.
func (tab *Tab) Context() context.Context { return tab.ctx }

// Run does the steps in order and stops the test at the first that fails,
// naming the whole as what.
func (tab *Tab) Run(what string, steps ...chromedp.Action[chromedp.Void]) {
	tab.t.Helper()
	if err := chromedp.Do(tab.ctx, steps...); err != nil {
		if tab.ServerLog != nil {
			tab.t.Fatalf("%s: %v\nserver log:\n%s", what, err, tab.ServerLog())
		}
		tab.t.Fatalf("%s: %v", what, err)
	}
}

// Eval returns the value of the JavaScript expression js, a string, and
// stops the test when it cannot be evaluated.
func (tab *Tab) Eval(js string) string {
	tab.t.Helper()
	s, err := chromedp.Run(tab.ctx, chromedp.Evaluate[string](js))
	if err != nil {
		tab.t.Fatalf("evaluating %s: %v", js, err)
	}
	return s
}

// pollTimeout is how long Poll and Expect wait for a condition to hold.
const pollTimeout = 15 * time.Second

// Poll waits up to 15s for the JavaScript condition cond to hold; when it
// does not, it stops the test with what and the value of the JavaScript
// expression explain.
func (tab *Tab) Poll(what, cond, explain string) {
	tab.t.Helper()
	if err := tab.wait(cond); err != nil {
		tab.t.Fatalf("%s: %s (%v)", what, tab.Eval(explain), err)
	}
}

// Expect is Poll for a condition the test can go on without: when cond
// does not hold within 15s, it marks the test failed and returns.
func (tab *Tab) Expect(what, cond, explain string) {
	tab.t.Helper()
	if err := tab.wait(cond); err != nil {
		tab.t.Errorf("%s: %s (%v)", what, tab.Eval(explain), err)
	}
}

func (tab *Tab) wait(cond string) error {
	_, err := chromedp.Run(tab.ctx, chromedp.Poll[bool](cond, chromedp.WithPollingTimeout(pollTimeout)))
	return err
}

// NoOverflow is the JavaScript condition that the page is not wider than
// the window: nothing makes it scroll sideways.
const NoOverflow = `document.documentElement.scrollWidth <= document.documentElement.clientWidth &&
	document.documentElement.clientWidth <= window.innerWidth`

// Widths is a JavaScript expression that explains a failed NoOverflow: the
// page's widths and the first elements that stick out past the window.
const Widths = `JSON.stringify({ scrollWidth: document.documentElement.scrollWidth, clientWidth: document.documentElement.clientWidth,
	innerWidth: window.innerWidth, widest: [...document.querySelectorAll("body *")].filter(e => e.getBoundingClientRect().right > document.documentElement.clientWidth + 0.5)
		.slice(0, 3).map(e => e.tagName + "#" + e.id + "." + e.className) })`

// Fits waits for the page to be no wider than the window, width pixels
// wide, and stops the test when it stays wider; where names what the page
// shows, for the message.
func (tab *Tab) Fits(where string, width int64) {
	tab.t.Helper()
	tab.Poll(fmt.Sprintf("%s is wider than the window at %d px", where, width), NoOverflow, Widths)
}

// Screenshot writes a PNG of the whole page to path when the environment
// variable SLUICE_SCREENSHOTS is 1 (how the pictures in docs/ are made),
// and does nothing otherwise.
func (tab *Tab) Screenshot(path string) {
	tab.t.Helper()
	if os.Getenv("SLUICE_SCREENSHOTS") != "1" {
		return
	}
	png, err := chromedp.Run(tab.ctx, chromedp.FullScreenshot(100))
	if err != nil {
		tab.t.Fatal(err)
	}
	if err := os.WriteFile(path, png, 0o644); err != nil {
		tab.t.Fatal(err)
	}
	tab.t.Logf("screenshot: %s", path)
}
