package unixsock

import (
	"errors"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// A regular file or a directory at the path is refused and stays: only a
// socket is ever removed.
func TestListenLeavesOtherFiles(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "file")
	if err := os.WriteFile(file, []byte("keep"), 0o644); err != nil {
		t.Fatal(err)
	}
	sub := filepath.Join(dir, "dir")
	if err := os.Mkdir(sub, 0o755); err != nil {
		t.Fatal(err)
	}
	for path, want := range map[string]string{file: "a regular file", sub: "a directory"} {
		ln, err := Listen(path, 100*time.Millisecond)
		if err == nil {
			ln.Close()
			t.Fatalf("Listen(%s): no error", path)
		}
		if !errors.Is(err, ErrNotSocket) || !strings.Contains(err.Error(), want) {
			t.Errorf("Listen(%s): %v, want ErrNotSocket naming %q", path, err, want)
		}
		if _, err := os.Lstat(path); err != nil {
			t.Errorf("%s removed: %v", path, err)
		}
	}
	if b, _ := os.ReadFile(file); string(b) != "keep" {
		t.Errorf("file now holds %q", b)
	}
}

// A socket nobody answers on is replaced; one a process answers on is
// ErrInUse.
func TestListenReplacesStaleSocket(t *testing.T) {
	path := filepath.Join(t.TempDir(), "s", "control.sock")
	ln, err := Listen(path, 100*time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Stat(path); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("socket: %v, mode %v", err, fi.Mode())
	}
	if _, err := Listen(path, 100*time.Millisecond); !errors.Is(err, ErrInUse) {
		t.Fatalf("second Listen: %v, want ErrInUse", err)
	}
	// A killed process's socket: the file stays, nobody answers.
	ln.(*net.UnixListener).SetUnlinkOnClose(false)
	ln.Close()
	if _, err := os.Lstat(path); err != nil {
		t.Fatal(err)
	}
	ln, err = Listen(path, 100*time.Millisecond)
	if err != nil {
		t.Fatalf("Listen over a stale socket: %v", err)
	}
	ln.Close()
}

func TestCheckPath(t *testing.T) {
	long := "/" + strings.Repeat("x", MaxPath)
	if err := CheckPath(long); err == nil || !strings.Contains(err.Error(), "at most 107") {
		t.Errorf("CheckPath(%d bytes): %v", len(long), err)
	}
	if _, err := Listen(long, time.Millisecond); err == nil || !strings.Contains(err.Error(), "sun_path") {
		t.Errorf("Listen(%d bytes): %v", len(long), err)
	}
	if err := CheckPath(""); err == nil {
		t.Error("CheckPath(\"\"): no error")
	}
	if err := CheckPath("/" + strings.Repeat("x", MaxPath-1)); err != nil {
		t.Errorf("CheckPath(%d bytes): %v", MaxPath, err)
	}
	// The longest path CheckPath allows binds.
	dir := t.TempDir()
	full := filepath.Join(dir, strings.Repeat("y", MaxPath-len(dir)-1))
	ln, err := Listen(full, time.Millisecond)
	if err != nil {
		t.Fatalf("Listen(%d bytes): %v", len(full), err)
	}
	ln.Close()
}
