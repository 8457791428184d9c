package main

import (
	"errors"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// flock locks belong to the open file description: a second open and lock
// of the same file conflicts even in the same process, and names the pid
// the holder wrote; closing the holder frees it.
func TestFlockFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "state", "run.lock")
	f, err := flockFile(path)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := os.ReadFile(path)
	if got, want := strings.TrimSpace(string(b)), strconv.Itoa(os.Getpid()); got != want {
		t.Errorf("lock file holds %q, want the pid %s", got, want)
	}
	_, err = flockFile(path)
	var held *heldError
	if !errors.As(err, &held) || held.pid != os.Getpid() {
		t.Fatalf("second lock: %v, want held by pid %d", err, os.Getpid())
	}
	if want := "(pid " + strconv.Itoa(os.Getpid()) + ", from the lock file)"; !strings.Contains(err.Error(), want) {
		t.Errorf("%q does not name %s", err, want)
	}
	f.Close()
	g, err := flockFile(path)
	if err != nil {
		t.Fatalf("after the holder closed: %v", err)
	}
	g.Close()
}

func TestLockNetns(t *testing.T) {
	t.Setenv(stateDirEnv, t.TempDir())
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	unlock, err := lockNetns(log)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(netnsLockFile()); err != nil {
		t.Error(err)
	}
	if _, err := lockNetns(log); err == nil || !strings.HasPrefix(err.Error(), "another natreveal run holds this network namespace") {
		t.Errorf("second lockNetns: %v", err)
	}
	unlock()
	unlock, err = lockNetns(log)
	if err != nil {
		t.Fatalf("after unlock: %v", err)
	}
	unlock()

	// No state directory to be had: run as before, unlocked.
	t.Setenv(stateDirEnv, "/proc/no-such-dir")
	unlock, err = lockNetns(log)
	if err != nil {
		t.Fatalf("unwritable state directory: %v, want a warning only", err)
	}
	unlock()
}

func TestHeldErrorWithoutPID(t *testing.T) {
	if got := (&heldError{}).Error(); got != "another natreveal run holds this network namespace" {
		t.Error(got)
	}
}
