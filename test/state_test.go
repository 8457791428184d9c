package test

import (
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/natreveal/natreveal/lab"
)

// Issue 17 item 12: after SIGKILL nf_conntrack_acct and
// nf_conntrack_tcp_be_liberal stayed 1, and the next run, finding 1, never
// restored them. The daemon records the values it found in its state
// directory; `rules remove` and the next run restore them.
func TestSysctlsRestoredAfterKill(t *testing.T) {
	l := newLab(t)
	state := t.TempDir()
	env := []string{"NATREVEAL_STATE_DIR=" + state}
	conf := writeConfig(t, "inside: [100.64.0.0/24]\nmethods: [tcp-option, http-header]\nhttp_header:\n  ports: [80]\n")
	both := func(want string) {
		t.Helper()
		if a, b := ctAcct(t, l), beLiberal(t, l); a != want || b != want {
			t.Errorf("nf_conntrack_acct=%s nf_conntrack_tcp_be_liberal=%s, want %s", a, b, want)
		}
	}
	kill := func(d *daemon) {
		t.Helper()
		d.Signal(syscall.SIGKILL)
		select {
		case <-d.Done():
		case <-time.After(15 * time.Second):
			t.Fatal("natreveal did not die on SIGKILL")
		}
	}
	both("0")

	// Killed, then `natreveal rules remove` (systemd's ExecStopPost).
	d := startDaemonEnv(t, l, env, "--config", conf)
	both("1")
	kill(d)
	both("1")
	if m, _ := filepath.Glob(filepath.Join(state, "sysctl.*")); len(m) != 2 {
		t.Fatalf("records after SIGKILL: %v, want 2\n%s", m, d.Output())
	}
	if out, err := l.Exec(l.NAT, "env", env[0], binary, "rules", "remove"); err != nil {
		t.Fatalf("rules remove: %v\n%s", err, out)
	} else {
		t.Logf("rules remove:\n%s", out)
	}
	both("0")
	if m, _ := filepath.Glob(filepath.Join(state, "sysctl.*")); len(m) != 0 {
		t.Errorf("records left after rules remove: %v", m)
	}

	// Killed, then a run that sets neither (ident only): restored at start.
	d = startDaemonEnv(t, l, env, "--config", conf)
	kill(d)
	both("1")
	d = startDaemonEnv(t, l, env, "--inside", lab.InsidePrefix, "--methods", "ident", "--ident-listen", lab.NATPublic+":113")
	both("0")
	d.stopLog(t)

	// Killed, then the same configuration again: it finds 1, restores 0 at
	// its exit.
	d = startDaemonEnv(t, l, env, "--config", conf)
	kill(d)
	d = startDaemonEnv(t, l, env, "--config", conf)
	both("1")
	d.stopLog(t)
	both("0")
	if m, _ := filepath.Glob(filepath.Join(state, "sysctl.*")); len(m) != 0 {
		t.Errorf("records left after a clean stop: %v", m)
	}
}
