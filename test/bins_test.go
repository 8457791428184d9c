package test

import (
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

// The natreveal-server binary under test, built once, next to binary, by
// the first test that needs it.
var server struct {
	once sync.Once
	path string
	err  error
	out  []byte
}

// serverBinary builds natreveal-server (serve, observe, decode, portset
// lookup) once and returns its path.
func serverBinary(t *testing.T) string {
	t.Helper()
	server.once.Do(func() {
		server.path = filepath.Join(filepath.Dir(binary), "natreveal-server")
		server.out, server.err = exec.Command("go", "build", "-o", server.path, "../cmd/natreveal-server").CombinedOutput()
	})
	if server.err != nil {
		t.Fatalf("build natreveal-server: %v\n%s", server.err, server.out)
	}
	return server.path
}

// Both binaries: --version prints the version; every kind of bad input
// exits 2 with one line, a mistyped command with cobra's suggestion.
func TestCommandLine(t *testing.T) {
	for _, c := range []struct {
		bin  string
		args []string
		code int
		out  string // stdout, or the start of the one stderr line
	}{
		{binary, []string{"--version"}, 0, "natreveal "},
		{binary, []string{"version"}, 0, "natreveal "},
		{binary, []string{"--verison"}, 2, "natreveal: unknown flag: --verison"},
		{binary, []string{"run", "--inside-prefix", "10.0.0.0/8"}, 2, "natreveal: unknown flag: --inside-prefix"},
		{binary, []string{"rn"}, 2, `natreveal: unknown command "rn" for "natreveal"; did you mean "run"?`},
		{binary, []string{"serve"}, 2, `natreveal: unknown command "serve" for "natreveal"`},
		{binary, []string{"lab"}, 2, `natreveal: unknown command "lab" for "natreveal"`},
		{binary, []string{"rules", "prnt"}, 2, `natreveal: unknown command "prnt" for "natreveal rules"; did you mean "print"?`},
		{binary, []string{"check", "now"}, 2, `natreveal: check: takes no arguments (got "now")`},
		{binary, []string{"run", "--queue-num", "x"}, 2, `natreveal: invalid argument "x" for "--queue-num" flag`},
		{serverBinary(t), []string{"--version"}, 0, "natreveal-server "},
		{serverBinary(t), []string{"serv"}, 2, `natreveal-server: unknown command "serv" for "natreveal-server"; did you mean "serve"?`},
		{serverBinary(t), []string{"run"}, 2, `natreveal-server: unknown command "run" for "natreveal-server"`},
		{serverBinary(t), []string{"decode", "--bogus", "x.pcap"}, 2, "natreveal-server: unknown flag: --bogus"},
		{serverBinary(t), []string{"portset", "lookup"}, 2, "natreveal-server: requires at least 1 arg(s)"},
	} {
		cmd := exec.Command(c.bin, c.args...)
		var stdout, stderr strings.Builder
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		err := cmd.Run()
		code := 0
		if ee, ok := err.(*exec.ExitError); ok {
			code = ee.ExitCode()
		} else if err != nil {
			t.Fatal(err)
		}
		name := filepath.Base(c.bin) + " " + strings.Join(c.args, " ")
		if code != c.code {
			t.Errorf("%s: exit %d, want %d; stderr %q", name, code, c.code, stderr.String())
			continue
		}
		if c.code == 0 {
			if !strings.HasPrefix(stdout.String(), c.out) || strings.Count(stdout.String(), "\n") != 1 {
				t.Errorf("%s: stdout %q, want one line starting %q", name, stdout.String(), c.out)
			}
			continue
		}
		if lines := strings.Split(strings.TrimSuffix(stderr.String(), "\n"), "\n"); len(lines) != 1 || !strings.HasPrefix(lines[0], c.out) {
			t.Errorf("%s: stderr %q, want one line starting %q", name, stderr.String(), c.out)
		}
	}
}
