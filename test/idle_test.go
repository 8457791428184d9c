package test

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/natreveal/natreveal/lab"
)

// An idle daemon wakes nothing: once its queues have been quiet for a
// moment, its pinned lanes park in the Go poller, and no thread of it runs
// until the next packet (queue/nlsock.go, readHot and park). Before, each
// lane's bounded wait woke the runtime's sysmon about 1,100 times a second
// (12 ms of CPU a second on the 2-CPU VM): a router's idle CPU. The test
// counts the daemon's context switches, a number, not a time; and a
// connection after the quiet spell, which wakes a parked lane, still
// carries its HOST_ID.
func TestIdleDaemonSleeps(t *testing.T) {
	l := newLab(t)
	s := listen(t, l)
	d := startDaemon(t, l, "--inside", lab.InsidePrefix, "--methods", "tcp-option", "--queue-count", "2")
	check := func(label, ns string, want uint32) {
		t.Helper()
		got := connect(t, s, ns, label, 0)
		if !got.HasOption || got.OptionID != want {
			t.Errorf("%s from %s: HOST_ID option %v id %#x, want %#x", label, ns, got.HasOption, got.OptionID, want)
		}
	}
	// Traffic first, so that the lanes were busy and have to park.
	check("before", l.C1, 0x0002)
	time.Sleep(500 * time.Millisecond) // the lanes park 20 ms after their last packet

	const window = 2 * time.Second
	before := switches(t, d.Pid())
	time.Sleep(window)
	after := switches(t, d.Pid())
	// Room for the runtime's rare own work (a forced GC, a timer); the
	// bounded waits this test guards against made some 2,000 a window.
	if n := after - before; n > 40 {
		t.Errorf("idle daemon: %d context switches in %s, want at most 40 (its threads should sleep)", n, window)
	}
	check("after", l.C2, 0x0003)
}

// switches is the sum of every thread's voluntary and involuntary context
// switches of process pid (/proc/PID/task/*/status).
func switches(t *testing.T, pid int) int {
	t.Helper()
	tasks, err := filepath.Glob(fmt.Sprintf("/proc/%d/task/*/status", pid))
	if err != nil || len(tasks) == 0 {
		t.Fatalf("threads of %d: %v", pid, err)
	}
	sum := 0
	for _, f := range tasks {
		b, err := os.ReadFile(f)
		if err != nil {
			continue // a thread that ended
		}
		for _, line := range strings.Split(string(b), "\n") {
			if k, v, ok := strings.Cut(line, ":"); ok && strings.HasSuffix(k, "ctxt_switches") {
				n, err := strconv.Atoi(strings.TrimSpace(v))
				if err != nil {
					t.Fatalf("%s: %q", f, line)
				}
				sum += n
			}
		}
	}
	return sum
}
