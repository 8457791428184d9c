package test

import (
	"fmt"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/natreveal/natreveal/lab"
)

// A second `natreveal run` in the network namespace of a running one, with
// the same configuration or another, exits 1 with one line naming the
// running daemon's pid, before it touches anything: it used to take the
// running daemon's sysctl records for a killed predecessor's, restore
// nf_conntrack_tcp_be_liberal and nf_conntrack_acct to 0 under it and
// delete the records. `natreveal rules remove` and `rules close` refuse
// the same way while a daemon runs.
func TestSecondRunRefused(t *testing.T) {
	for _, tc := range []struct {
		name string
		args []string
	}{
		// The same configuration with the metrics endpoint off (it got
		// as far as the queue bind).
		{"same-config", []string{"--metrics-listen="}},
		// Another configuration (ident only): it restored the sysctls at
		// its start.
		{"ident-only", []string{"--methods", "ident", "--ident-listen", lab.NATPublic + ":113"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			l := newLab(t)
			state := t.TempDir()
			env := "NATREVEAL_STATE_DIR=" + state
			conf := writeConfig(t, "inside: [100.64.0.0/24]\nmethods: [tcp-option, http-header]\nhttp_header:\n  ports: [80]\n")
			d := startDaemonEnv(t, l, []string{env}, "--config", conf)
			both := func(when string) {
				t.Helper()
				if a, b := ctAcct(t, l), beLiberal(t, l); a != "1" || b != "1" {
					t.Errorf("%s: nf_conntrack_acct=%s nf_conntrack_tcp_be_liberal=%s, want 1 (the first daemon runs)", when, a, b)
				}
				if m, _ := filepath.Glob(filepath.Join(state, "sysctl.*")); len(m) != 2 {
					t.Errorf("%s: the running daemon's records: %v, want 2", when, m)
				}
				if !strings.Contains(ruleset(t, l), "table ip natreveal {") {
					t.Errorf("%s: table ip natreveal gone:\n%s", when, ruleset(t, l))
				}
			}
			both("first daemon")
			held := regexp.MustCompile(fmt.Sprintf(`^natreveal: another natreveal run holds this network namespace \(pid %d, from the lock file\); stop it first.*\n$`, d.Pid()))

			argv := append([]string{"env", env, "timeout", "10", binary, "run", "--status-socket=", "--config", conf}, tc.args...)
			stdout, stderr, rc := execNS(l, argv...)
			if rc != 1 || stdout != "" || !held.MatchString(stderr) {
				t.Errorf("second run: exit %d, stdout %q, stderr %q; want exit 1 and one line matching %s", rc, stdout, stderr, held)
			}
			both("after the second run")

			for _, end := range []string{"remove", "close"} {
				stdout, stderr, rc := execNS(l, "env", env, binary, "rules", end, "--config", conf)
				if rc != 1 || stdout != "" || !held.MatchString(stderr) || !strings.Contains(stderr, "systemctl stop natreveal") {
					t.Errorf("rules %s: exit %d, stdout %q, stderr %q; want exit 1 and one line matching %s, saying how to stop it", end, rc, stdout, stderr, held)
				}
				both("after rules " + end)
			}

			log := d.stopLog(t)
			if strings.Contains(log, "left set by a daemon that did not stop") {
				t.Errorf("the first daemon's log:\n%s", log)
			}
			// Stopped: the lock is free again.
			if _, stderr, rc := execNS(l, "env", env, binary, "rules", "remove", "--config", conf); rc != 0 {
				t.Errorf("rules remove after the stop: exit %d: %s", rc, stderr)
			}
		})
	}
}

// execNS runs argv in the NAT namespace: its stdout, stderr and exit code.
func execNS(l *lab.Lab, argv ...string) (stdout, stderr string, rc int) {
	var o, e strings.Builder
	cmd := exec.Command("ip", append([]string{"netns", "exec", l.NAT}, argv...)...)
	cmd.Stdout, cmd.Stderr = &o, &e
	if err := cmd.Run(); err != nil {
		rc = -1
		if x, ok := err.(*exec.ExitError); ok {
			rc = x.ExitCode()
		}
	}
	return o.String(), e.String(), rc
}
