package table

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/natreveal/natreveal/lab"
)

// sample is a result as a run fills it in, every method of Methods with
// made-up measurements, some contradicting the claims.
func sample() *Result {
	r := &Result{Date: "2025-01-02T03:04:05Z", Kernel: "6.1.0-test", Quick: true, N: 20, PerfSeconds: 0.5, Seconds: 31,
		Paths: lab.Paths, Baseline: map[string]float64{"ipv4": 9000, "ipv6": 8000}}
	for i, m := range Methods {
		mr := MethodResult{Name: m.Name, Column: m.Column, Family: m.Family, Carried: map[Transport]*Carried{},
			Success: map[lab.Path]*Success{}, ServerReads: m.ServerReads, KernelChange: m.KernelChange,
			Configured: m.Configured, Claim: m.Claim, Deployable: "yes"}
		for _, tr := range m.Transports {
			ok := i%3 != 2 || tr != TLS
			mr.Carried[tr] = &Carried{OK: ok, Hosts: []HostResult{{Host: "c1", Want: "0x0002", Got: "0x0002", Completed: true, OK: ok}}}
		}
		for j, p := range lab.Paths {
			done := 20 - (i*j)%21
			s := &Success{Count: Count{Attempted: 20, Completed: done, Revealed: done - j}}
			s.finish()
			mr.Success[p] = s
		}
		if m.ReadConn != nil {
			ratio := 1.1 - 0.1*float64(i)
			mr.Perf = &Perf{Conns: 4000, Rate: 9000 * ratio, BaselineRate: 9000, Ratio: ratio, Level: perfLevel(ratio)}
		}
		if m.NeedsEndHosts {
			mr.Deployable = "no"
		}
		r.Methods = append(r.Methods, mr)
	}
	r.Methods[0].Deployable = "partly: not on opt-drop"
	return r
}

// The terminal table fits 100 columns, a method per row, contradictions
// marked.
func TestCompact(t *testing.T) {
	r := sample()
	out := r.Compact()
	for ln := range strings.Lines(out) {
		if n := utf8.RuneCountInString(strings.TrimSuffix(ln, "\n")); n > Width {
			t.Errorf("line of %d columns: %q", n, ln)
		}
	}
	for _, m := range r.Methods {
		if !strings.Contains(out, "\n"+m.Name+" ") {
			t.Errorf("no row for %s:\n%s", m.Name, out)
		}
	}
	for _, want := range []string{"method", "second-nat", markYes, markNo + markDiffers, markDiffers, "partly" + markDiffers} {
		if !strings.Contains(out, want) {
			t.Errorf("no %q in\n%s", want, out)
		}
	}
}

// The page is self-contained: nothing to fetch.
func TestHTMLSelfContained(t *testing.T) {
	page := sample().HTML()
	for _, bad := range []string{"<script src", "<link", "@import", "url(", "http://", "https://"} {
		if strings.Contains(strings.ReplaceAll(page, `xmlns="http://www.w3.org/2000/svg"`, ""), bad) {
			t.Errorf("page has %q", bad)
		}
	}
	for _, want := range []string{`<table id="table1">`, `<tr id="m-ip-option"`, `class="differs"`, `<svg id="rate-chart"`, `<svg id="success-chart"`} {
		if !strings.Contains(page, want) {
			t.Errorf("page has no %q", want)
		}
	}
}

// A browser renders the page: the DOM holds Table 1's rows and the charts'
// bars, and a screenshot of it is more than a blank page.
func TestHTMLInChromium(t *testing.T) {
	browser := ""
	for _, b := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(b); err == nil {
			browser = p
			break
		}
	}
	if browser == "" {
		if os.Getenv("CI") == "true" {
			t.Fatal("no chromium in CI (.ci/run installs it)")
		}
		t.Skip("no chromium (apt-get install chromium)")
	}
	dir := t.TempDir()
	r := sample()
	file := filepath.Join(dir, "lab.html")
	if err := os.WriteFile(file, []byte(r.HTML()), 0o644); err != nil {
		t.Fatal(err)
	}
	run := func(args ...string) []byte {
		ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
		defer cancel()
		args = append([]string{"--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
			"--user-data-dir=" + filepath.Join(dir, "profile")}, args...)
		out, err := exec.CommandContext(ctx, browser, append(args, "file://"+file)...).Output()
		if err != nil {
			t.Fatalf("%s %s: %v", browser, strings.Join(args, " "), err)
		}
		return out
	}
	dom := string(run("--dump-dom"))
	for _, m := range r.Methods {
		if !strings.Contains(dom, `<tr id="m-`+m.Name+`"`) {
			t.Errorf("DOM has no table row for %s", m.Name)
		}
		if m.Perf != nil && !strings.Contains(dom, `class="bar `) {
			t.Errorf("DOM has no bar for %s", m.Name)
		}
	}
	if n := strings.Count(dom, `<rect class="bar done"`); n != len(r.Methods)*len(r.Paths) {
		t.Errorf("success chart: %d bars, want %d", n, len(r.Methods)*len(r.Paths))
	}
	if !strings.Contains(dom, `<svg id="rate-chart"`) {
		t.Error("DOM has no rate chart")
	}
	png := filepath.Join(dir, "lab.png")
	run("--screenshot="+png, "--window-size=1400,1000", "--hide-scrollbars")
	st, err := os.Stat(png)
	if err != nil {
		t.Fatalf("no screenshot: %v", err)
	}
	if st.Size() < 20000 {
		t.Errorf("screenshot of %d bytes: a blank page?", st.Size())
	}
}
