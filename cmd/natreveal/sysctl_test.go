package main

import (
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"testing"
)

// A daemon ended before it restored (the watchdog, a crash) leaves 1 behind;
// under systemd the next run restores what the first one found.
func TestSysctlOnRestoresAcrossRestart(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "nf_conntrack_acct")
	if err := os.WriteFile(path, []byte("0\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Setenv("RUNTIME_DIRECTORY", filepath.Join(dir))
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	read := func() string { b, _ := os.ReadFile(path); return string(b) }

	if _, err := sysctlOn(log, path, "who", "why"); err != nil { // first run: ended without restoring
		t.Fatal(err)
	}
	if got := read(); got != "1" {
		t.Fatalf("set: %q", got)
	}
	restore, err := sysctlOn(log, path, "who", "why") // its restart finds 1
	if err != nil {
		t.Fatal(err)
	}
	restore()
	if got := read(); got != "0\n" {
		t.Errorf("restored %q, want what the first run found", got)
	}
	if m, _ := filepath.Glob(filepath.Join(dir, "sysctl.*")); len(m) != 0 {
		t.Errorf("record left: %v", m)
	}
}
