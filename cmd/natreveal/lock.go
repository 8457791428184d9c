package main

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// netnsLockFile is the file whose lock `natreveal run` holds for its life:
// one daemon per network namespace (its sysctls, records and tables are
// the namespace's), named per namespace as the sysctl records are.
func netnsLockFile() string { return filepath.Join(stateDir(), "run.lock"+netnsSuffix()) }

// heldError: another process holds the lock; pid is the one it wrote
// there (0: not yet written, or unreadable).
type heldError struct{ pid int }

func (e *heldError) Error() string {
	if e.pid == 0 {
		return "another natreveal run holds this network namespace"
	}
	return fmt.Sprintf("another natreveal run holds this network namespace (pid %d, from the lock file)", e.pid)
}

// lockNetns takes this network namespace's lock (flock, exclusive,
// non-blocking) and writes the pid into the file; release lets it go. A
// lock held elsewhere is a *heldError. A lock file that cannot be opened
// (no state directory) is only logged: nothing tells then, as before.
func lockNetns(log *slog.Logger) (release func(), err error) {
	path := netnsLockFile()
	f, err := flockFile(path)
	var held *heldError
	if errors.As(err, &held) {
		return nil, err
	}
	if err != nil {
		log.Warn("a second natreveal run in this network namespace will not be refused", "err", err)
		return func() {}, nil
	}
	return func() { f.Close() }, nil
}

// flockFile opens (creates) path and locks it: LOCK_EX|LOCK_NB, so a second
// open, in this process or another, fails while f stays open. flock locks
// belong to the open file description: closing f (or the process ending,
// however) releases it.
func flockFile(path string) (*os.File, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, err
	}
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, err
	}
	if err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB); err != nil {
		defer f.Close()
		if errors.Is(err, unix.EWOULDBLOCK) {
			b := make([]byte, 32)
			n, _ := f.ReadAt(b, 0)
			pid, _ := strconv.Atoi(strings.TrimSpace(string(b[:n])))
			return nil, &heldError{pid: pid}
		}
		return nil, fmt.Errorf("lock %s: %w", path, err)
	}
	if err := f.Truncate(0); err == nil {
		f.WriteAt([]byte(strconv.Itoa(os.Getpid())+"\n"), 0)
	}
	return f, nil
}
