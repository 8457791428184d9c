package main

import (
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// Issue 17 item 12: a daemon killed while its sysctls are set leaves its
// record behind; `rules remove` (restoreLeftSysctls) or the next run that
// does not set them writes back what the first run found.
func TestSysctlStateSurvivesKill(t *testing.T) {
	dir := t.TempDir()
	t.Setenv(stateDirEnv, filepath.Join(dir, "state")) // created on demand
	t.Setenv("RUNTIME_DIRECTORY", filepath.Join(dir, "ignored"))
	path := filepath.Join(dir, "nf_conntrack_tcp_be_liberal")
	if err := os.WriteFile(path, []byte("0\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	read := func() string { b, _ := os.ReadFile(path); return strings.TrimSpace(string(b)) }
	name := strings.ReplaceAll(strings.TrimPrefix(path, "/proc/sys/"), "/", ".")
	record := sysctlStateFile(name)
	if !strings.HasPrefix(record, filepath.Join(dir, "state")+"/sysctl.") {
		t.Fatalf("record at %s, want under %s", record, stateDirEnv)
	}

	if _, err := sysctlOn(log, path, "who", "why"); err != nil { // then SIGKILL: no restore
		t.Fatal(err)
	}
	if got := read(); got != "1" {
		t.Fatalf("set: %q", got)
	}
	if b, err := os.ReadFile(record); err != nil || string(b) != "0\n" {
		t.Fatalf("record %s: %q, %v; want the value found", record, b, err)
	}
	if fi, err := os.Stat(record); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("record mode %v, %v; want 0600", fi.Mode(), err)
	}
	if m, _ := filepath.Glob(record + ".tmp"); len(m) != 0 {
		t.Errorf("temporary file left: %v", m)
	}

	// A run that sets it again keeps the record for its own exit.
	withPath(t, path, func() { restoreLeftSysctls(log, path) })
	if got := read(); got != "1" {
		t.Errorf("kept sysctl restored early: %q", got)
	}
	// `rules remove`, or a run that does not set it: restored, record gone.
	withPath(t, path, func() { restoreLeftSysctls(log) })
	if got := read(); got != "0" {
		t.Errorf("after restoreLeftSysctls: %q, want 0", got)
	}
	if _, err := os.Stat(record); !os.IsNotExist(err) {
		t.Errorf("record left: %v", err)
	}
	// Nothing recorded: nothing written.
	os.WriteFile(path, []byte("1"), 0o644)
	withPath(t, path, func() { restoreLeftSysctls(log) })
	if got := read(); got != "1" {
		t.Errorf("without a record: %q, want untouched", got)
	}
}

// withPath runs fn with restoredSysctls pointed at path alone.
func withPath(t *testing.T, path string, fn func()) {
	saved := restoredSysctls
	restoredSysctls = []string{path}
	defer func() { restoredSysctls = saved }()
	fn()
}
