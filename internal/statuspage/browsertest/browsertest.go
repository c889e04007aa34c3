// Package browsertest drives Debian's headless chromium from tests, with the
// flags that keep it off the network. Without a chromium the test is skipped
// locally but fails under CI=true or MIM_REQUIRE_DB=1, as the database tests
// do, so CI can never pass by skipping (./scripts/setup installs it).
package browsertest

import (
	"context"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/mimwarehouse/mim/internal/pgtest"
)

// Chromium returns the path of the headless browser, or skips (fails when
// tests are required to run) without one.
func Chromium(t testing.TB) string {
	t.Helper()
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	msg := "no chromium on PATH (./scripts/setup installs Debian's chromium)"
	if pgtest.Required() {
		t.Fatal(msg)
	}
	t.Skip(msg)
	return ""
}

// Headless runs the browser on url with extra flags (--dump-dom,
// --screenshot=FILE, ...) and returns what it printed.
func Headless(t testing.TB, browser, url string, extra ...string) []byte {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	args := append([]string{"--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
		"--disable-background-networking", "--disable-component-update", "--disable-sync", "--disable-dev-shm-usage",
		"--user-data-dir=" + t.TempDir()}, extra...)
	cmd := exec.CommandContext(ctx, browser, append(args, url)...)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("chromium %s: %v\n%s", strings.Join(extra, " "), err, stderr.String())
	}
	return out
}
