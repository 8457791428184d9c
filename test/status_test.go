package test

import (
	"encoding/json"
	"errors"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/natreveal/natreveal/lab"
)

// statusOut is what the test reads of `natreveal status --json`.
type statusOut struct {
	Marking bool   `json:"marking"`
	Verdict string `json:"verdict"`
	Daemon  *struct {
		Version  string            `json:"version"`
		Methods  []string          `json:"methods"`
		Rules    string            `json:"rules"`
		Counters map[string]uint64 `json:"counters"`
	} `json:"daemon"`
	Kernel struct {
		Tables map[string]bool `json:"tables"`
		Queues []struct {
			Num        int    `json:"num"`
			PeerPortID uint32 `json:"peer_portid"`
		} `json:"queues"`
	} `json:"kernel"`
}

// status runs `natreveal status` in the NAT namespace: its exit code, its
// report (--json) and its screen.
func status(t *testing.T, l *lab.Lab, sock string) (int, statusOut, string) {
	t.Helper()
	run := func(args ...string) (int, []byte) {
		out, err := exec.Command("ip", append([]string{"netns", "exec", l.NAT, binary, "status", "--socket", sock}, args...)...).Output()
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			return ee.ExitCode(), out
		} else if err != nil {
			t.Fatal(err)
		}
		return 0, out
	}
	code, js := run("--json")
	var rep statusOut
	if err := json.Unmarshal(js, &rep); err != nil {
		t.Fatalf("status --json: %v\n%s", err, js)
	}
	code2, screen := run()
	if code2 != code || !strings.Contains(string(screen), "verdict: "+rep.Verdict) {
		t.Errorf("status and status --json disagree: exit %d vs %d, %q vs\n%s", code2, code, rep.Verdict, screen)
	}
	return code, rep, string(screen)
}

// natreveal status tells marking from each way of not marking, in the
// daemon's network namespace: no daemon, marking, the table deleted behind
// its back (what a firewall reload does), and the daemon killed with its
// table left (the queue has no listener).
func TestStatus(t *testing.T) {
	l := newLab(t)
	sock := filepath.Join(t.TempDir(), "control.sock")
	want := func(code int, rep statusOut, screen string, wantCode int, verdict string) {
		t.Helper()
		if code != wantCode || !strings.HasPrefix(rep.Verdict, verdict) {
			t.Fatalf("exit %d, verdict %q; want %d, %q\n%s", code, rep.Verdict, wantCode, verdict, screen)
		}
	}

	code, rep, screen := status(t, l, sock)
	want(code, rep, screen, 1, "no daemon")

	d := startDaemon(t, l, "--inside", lab.InsidePrefix, "--methods", "tcp-option", "--queue-count", "2", "--status-socket", sock)
	srv, err := lab.Listen(l.Srv, lab.ServerAddr+":8080")
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	if err := lab.Connect(l.C1, srv.Addr(), []byte("status-probe-000"), 10*time.Second); err != nil {
		t.Fatal(err)
	}
	code, rep, screen = status(t, l, sock)
	want(code, rep, screen, 0, "marking")
	if rep.Daemon == nil || rep.Daemon.Counters["tcp-option/written"] < 1 || !strings.Contains(rep.Daemon.Rules, "table ip natreveal") ||
		!strings.Contains(rep.Daemon.Rules, "queue") {
		t.Errorf("the daemon's report lacks its counters or rules: %+v", rep.Daemon)
	}
	bound := 0
	for _, q := range rep.Kernel.Queues {
		if q.PeerPortID != 0 {
			bound++
		}
	}
	if bound != 2 {
		t.Errorf("%d queues with a listener, want 2: %+v", bound, rep.Kernel.Queues)
	}
	for _, s := range []string{"marked     tcp-option ", "table ip natreveal {", "tables     ip natreveal", "queues     0-1 via"} {
		if !strings.Contains(screen, s) {
			t.Errorf("no %q on the screen:\n%s", s, screen)
		}
	}

	// A firewall reload (fw4 reload, nft flush ruleset) drops the table;
	// the daemon puts it back (TestFirewallReloadRestoresTables), and status
	// counts it. (The "table missing" verdict, for a daemon that could not,
	// is internal/control's unit test.)
	if out, err := exec.Command("ip", "netns", "exec", l.NAT, "nft", "delete", "table", "ip", "natreveal").CombinedOutput(); err != nil {
		t.Fatalf("nft delete table: %v: %s", err, out)
	}
	d.waitLog(t, "installed again", 1)
	code, rep, screen = status(t, l, sock)
	want(code, rep, screen, 0, "marking")
	if n := rep.Daemon.Counters["tables-restored"]; n != 1 {
		t.Errorf("status counts tables-restored %d, want 1", n)
	}
	// A reload installs it as well.
	d.Signal(syscall.SIGHUP)
	d.waitLog(t, "reloaded:", 1)
	code, rep, screen = status(t, l, sock)
	want(code, rep, screen, 0, "marking")

	// Killed: the table stays, its queues have no listener.
	d.Signal(syscall.SIGKILL)
	<-d.Done()
	code, rep, screen = status(t, l, sock)
	want(code, rep, screen, 1, "queue unbound")
}
