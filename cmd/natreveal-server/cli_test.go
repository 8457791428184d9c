package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/natreveal/natreveal/internal/cli"
)

// runCLI runs natreveal-server with args as main does and returns the exit
// code, stdout and stderr.
func runCLI(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	root := rootCmd()
	cli.Prepare(root, "test")
	var stdout, stderr bytes.Buffer
	root.SetOut(&stdout)
	root.SetErr(&stderr)
	code := cli.Run(root, args, &stderr)
	return code, stdout.String(), stderr.String()
}

// wantUsage runs args and wants exit 2 with one stderr line holding each
// of want.
func wantUsage(t *testing.T, args []string, want ...string) {
	t.Helper()
	code, _, stderr := runCLI(t, args...)
	lines := strings.Split(strings.TrimSuffix(stderr, "\n"), "\n")
	if code != cli.ExitUsage || len(lines) != 1 {
		t.Errorf("%s: exit %d, stderr %q; want exit 2, one line", strings.Join(args, " "), code, stderr)
		return
	}
	for _, w := range want {
		if !strings.Contains(lines[0], w) {
			t.Errorf("%s: stderr %q, want %q in it", strings.Join(args, " "), lines[0], w)
		}
	}
}

// observe --control never removes a file that is not a socket: it is
// refused, exit 2, and stays.
func TestListenControlLeavesOtherFiles(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "notes.txt")
	if err := os.WriteFile(file, []byte("keep"), 0o644); err != nil {
		t.Fatal(err)
	}
	sub := filepath.Join(dir, "sub")
	if err := os.Mkdir(sub, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, path := range []string{file, sub} {
		ln, err := listenControl(path)
		if err == nil {
			ln.Close()
		}
		if cli.Code(err) != cli.ExitUsage || !strings.Contains(err.Error(), "not a socket") {
			t.Errorf("listenControl(%s): %v, want a usage error saying it is not a socket", path, err)
		}
		if _, err := os.Lstat(path); err != nil {
			t.Errorf("%s: %v", path, err)
		}
	}
	if b, _ := os.ReadFile(file); string(b) != "keep" {
		t.Errorf("%s holds %q", file, b)
	}
	sock := filepath.Join(dir, "run", "observe.sock")
	ln, err := listenControl(sock)
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	if _, err := listenControl(sock); cli.Code(err) != cli.ExitUsage || !strings.Contains(err.Error(), "another observe") {
		t.Errorf("second listenControl: %v", err)
	}
}

// A --control path too long for sun_path is bad input, said before
// anything is installed.
func TestObserveControlPathTooLong(t *testing.T) {
	long := filepath.Join(t.TempDir(), strings.Repeat("x", 120))
	wantUsage(t, []string{"observe", "--control", long}, "--control:", "at most 107")
	wantUsage(t, []string{"who", "--control", long, "192.0.2.1:4000"}, "--control:", "at most 107")
}
