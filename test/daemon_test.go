package test

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/natreveal/natreveal/test/lab"
)

var binary string // the natreveal binary under test

func TestMain(m *testing.M) {
	os.Exit(func() int {
		dir, err := os.MkdirTemp("", "natreveal-test")
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		defer os.RemoveAll(dir)
		binary = filepath.Join(dir, "natreveal")
		if out, err := exec.Command("go", "build", "-o", binary, "../cmd/natreveal").CombinedOutput(); err != nil {
			fmt.Fprintf(os.Stderr, "build natreveal: %v\n%s", err, out)
			return 1
		}
		return m.Run()
	}())
}

// needRoot skips without root, except in CI where a missing prerequisite fails.
func needRoot(t *testing.T) {
	t.Helper()
	var missing []string
	if os.Geteuid() != 0 {
		missing = append(missing, "root")
	}
	for _, tool := range []string{"ip", "nft", "iptables-nft"} {
		if _, err := exec.LookPath(tool); err != nil {
			missing = append(missing, tool)
		}
	}
	if len(missing) == 0 {
		return
	}
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
type daemon struct {
	cmd    *exec.Cmd
	mu     sync.Mutex
	stderr bytes.Buffer
	ready  chan struct{}
	done   chan struct{}
}

func startDaemon(t *testing.T, l *lab.Lab, args ...string) *daemon {
	t.Helper()
	d := &daemon{ready: make(chan struct{}), done: make(chan struct{})}
	d.cmd = exec.Command("ip", append([]string{"netns", "exec", l.NAT, binary, "run"}, args...)...)
	pipe, err := d.cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := d.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		sc := bufio.NewScanner(pipe)
		once := sync.Once{}
		for sc.Scan() {
			d.mu.Lock()
			d.stderr.WriteString(sc.Text() + "\n")
			d.mu.Unlock()
			if strings.Contains(sc.Text(), "running:") {
				once.Do(func() { close(d.ready) })
			}
		}
		d.cmd.Wait()
		close(d.done)
	}()
	t.Cleanup(func() { d.cmd.Process.Kill(); <-d.done })
	select {
	case <-d.ready:
	case <-d.done:
		t.Fatalf("natreveal run exited early:\n%s", d.log())
	case <-time.After(15 * time.Second):
		t.Fatalf("natreveal run not ready after 15s:\n%s", d.log())
	}
	return d
}

func (d *daemon) log() string {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.stderr.String()
}

// stop sends SIGTERM, waits for exit and returns the final counters.
func (d *daemon) stop(t *testing.T) map[string]uint64 {
	t.Helper()
	d.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-d.done:
	case <-time.After(15 * time.Second):
		t.Fatalf("natreveal did not stop on SIGTERM:\n%s", d.log())
	}
	if code := d.cmd.ProcessState.ExitCode(); code != 0 {
		t.Fatalf("natreveal exited %d after SIGTERM:\n%s", code, d.log())
	}
	log := d.log()
	i := strings.LastIndex(log, "stats ")
	if i < 0 {
		t.Fatalf("no stats line in:\n%s", log)
	}
	line := log[i+len("stats "):]
	line = line[:strings.IndexByte(line, '\n')]
	stats := map[string]uint64{}
	if err := json.Unmarshal([]byte(line), &stats); err != nil {
		t.Fatalf("stats line %q: %v", line, err)
	}
	return stats
}
