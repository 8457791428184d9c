package test

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/natreveal/natreveal/lab"
)

var binary string // the natreveal binary under test

var labBinary string // the natreveal-lab binary under test, beside binary (it runs binary on its NAT)

func TestMain(m *testing.M) {
	os.Exit(func() int {
		dir, err := os.MkdirTemp("", "natreveal-test")
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		defer os.RemoveAll(dir)
		binary = filepath.Join(dir, "natreveal")
		// NATREVEAL_TEST_RACE=1 builds the daemon under test with the race
		// detector: the end-to-end tests then exercise its goroutines (queue
		// lanes, reload, the table watcher, the sweeps) under it, and a race
		// ends the daemon with exit status 66 and a report in its log.
		// Otherwise as `make install` builds it, without cgo (a cgo binary
		// cannot drop capabilities from its threads' bounding sets).
		build := []string{"build", "-o", binary}
		cgo := "CGO_ENABLED=0"
		if os.Getenv("NATREVEAL_TEST_RACE") == "1" {
			build, cgo = append(build, "-race"), "CGO_ENABLED=1"
		}
		cmd := exec.Command("go", append(build, "../cmd/natreveal")...)
		cmd.Env = append(os.Environ(), cgo)
		if out, err := cmd.CombinedOutput(); err != nil {
			fmt.Fprintf(os.Stderr, "build natreveal: %v\n%s", err, out)
			return 1
		}
		labBinary = filepath.Join(dir, "natreveal-lab")
		if out, err := exec.Command("go", "build", "-o", labBinary, "../cmd/natreveal-lab").CombinedOutput(); err != nil {
			fmt.Fprintf(os.Stderr, "build natreveal-lab: %v\n%s", err, out)
			return 1
		}
		return m.Run()
	}())
}

// needRoot skips without root, except in CI where a missing prerequisite fails.
func needRoot(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		missingPrereqs(t, []string{"root"})
	}
	needTools(t, "ip", "nft", "iptables-nft")
}

// needTools skips without the programs named, except in CI where a missing
// prerequisite fails.
func needTools(t *testing.T, tools ...string) {
	t.Helper()
	var missing []string
	for _, tool := range tools {
		if _, err := exec.LookPath(tool); err != nil {
			missing = append(missing, tool)
		}
	}
	if len(missing) > 0 {
		missingPrereqs(t, missing)
	}
}

func missingPrereqs(t *testing.T, missing []string) {
	t.Helper()
	if os.Getenv("CI") == "true" {
		t.Fatalf("end-to-end prerequisites missing in CI: %s", strings.Join(missing, ", "))
	}
	t.Skipf("needs %s", strings.Join(missing, ", "))
}

// newLab builds the topology and deletes it when the test ends.
func newLab(t *testing.T) *lab.Lab {
	t.Helper()
	needRoot(t)
	l, err := lab.New()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := l.Close(); err != nil {
			t.Error(err)
		}
	})
	return l
}

// daemon is a `natreveal run` in the NAT namespace.
type daemon struct{ *lab.Process }

func startDaemon(t *testing.T, l *lab.Lab, args ...string) *daemon {
	t.Helper()
	return startDaemonEnv(t, l, nil, args...)
}

// startDaemonEnv is startDaemon with extra environment variables ("K=V").
func startDaemonEnv(t *testing.T, l *lab.Lab, env []string, args ...string) *daemon {
	t.Helper()
	// A test daemon serves no status socket unless the test asks: the host's
	// /run/natreveal/control.sock is not the lab's.
	return startDaemonArgv(t, l, env, append([]string{binary, "run", "--status-socket="}, args...))
}

// startDaemonArgv runs argv (a natreveal run, possibly behind a wrapper
// such as setpriv) in the NAT namespace and waits for its "running:" line.
func startDaemonArgv(t *testing.T, l *lab.Lab, env []string, argv []string) *daemon {
	t.Helper()
	p, err := lab.StartInNS(context.Background(), l.NAT, argv, env, 30*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(p.Kill)
	return &daemon{p}
}

// waitLog waits until the log holds s at least n times.
func (d *daemon) waitLog(t *testing.T, s string, n int) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		if strings.Count(d.Output(), s) >= n {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatalf("no %q (%d times) in the log:\n%s", s, n, d.Output())
}

// stopLog sends SIGTERM, waits for a clean exit and returns the log.
func (d *daemon) stopLog(t *testing.T) string {
	t.Helper()
	d.Signal(syscall.SIGTERM)
	select {
	case <-d.Done():
	case <-time.After(15 * time.Second):
		t.Fatalf("natreveal did not stop on SIGTERM:\n%s", d.Output())
	}
	if err := d.Wait(); err != nil {
		t.Fatalf("natreveal after SIGTERM: %v\n%s", err, d.Output())
	}
	return d.Output()
}

// stop is stopLog, returning the final counters.
func (d *daemon) stop(t *testing.T) map[string]uint64 {
	t.Helper()
	return lastStats(t, d.stopLog(t))
}

// lastStats parses the last "stats" line of a daemon log: msg "stats" with
// the non-zero counters in the group "counters": a nested object (log.format
// json) or one attribute each (text: counters.accepted=41); none when
// nothing was counted.
func lastStats(t *testing.T, log string) map[string]uint64 {
	t.Helper()
	lines := strings.Split(log, "\n")
	for i := len(lines) - 1; i >= 0; i-- {
		ln := lines[i]
		if strings.HasPrefix(ln, "{") {
			var rec struct {
				Msg      string            `json:"msg"`
				Counters map[string]uint64 `json:"counters"`
			}
			if json.Unmarshal([]byte(ln), &rec) == nil && rec.Msg == "stats" {
				if rec.Counters == nil {
					rec.Counters = map[string]uint64{}
				}
				return rec.Counters
			}
			continue
		}
		if !strings.Contains(ln+" ", " msg=stats ") {
			continue
		}
		stats := map[string]uint64{}
		for _, f := range strings.Fields(ln) {
			kv, ok := strings.CutPrefix(f, "counters.")
			if !ok {
				continue
			}
			k, v, ok := strings.Cut(kv, "=")
			n, err := strconv.ParseUint(v, 10, 64)
			if !ok || err != nil {
				t.Fatalf("stats line %q: counter %q", ln, f)
			}
			stats[k] = n
		}
		return stats
	}
	t.Fatalf("no stats line in:\n%s", log)
	return nil
}
