package test

import (
	"os/exec"
	"strings"
	"testing"

	"github.com/natreveal/natreveal/lab"
)

// A bad value exits 2 with one line naming the key, before anything is installed.
func TestRunRejectsBadConfig(t *testing.T) {
	for _, c := range []struct {
		args []string
		key  string
	}{
		{[]string{"--methods", "tcp-option"}, "inside"},
		{[]string{"--inside", "100.64.0.0/24", "--methods", "tcp-option", "--tcp-option-length", "3"}, "tcp_option.length"},
		{[]string{"--inside", "100.64.0.0/24", "--methods", "carrier-pigeon"}, "methods"},
		{[]string{"--inside", "100.64.0.0/24", "--methods", "ip-id", "--hostid-source", "hash"}, "hostid.key_file"},
		{[]string{"--inside", "100.64.0.0/24", "--methods", "ip-id", "--hostid-source", "map", "--hostid-map-file", "/nonexistent"}, "hostid.map_file"},
	} {
		out, err := exec.Command(binary, append([]string{"run"}, c.args...)...).CombinedOutput()
		ee, ok := err.(*exec.ExitError)
		if !ok || ee.ExitCode() != 2 {
			t.Errorf("run %v: exit %v, want 2; output %q", c.args, err, out)
			continue
		}
		lines := strings.Split(strings.TrimSpace(string(out)), "\n")
		if len(lines) != 1 || !strings.HasPrefix(lines[0], "natreveal: "+c.key+": ") {
			t.Errorf("run %v: output %q, want one line naming %s", c.args, out, c.key)
		}
	}
}

// `rules print` is the exact ruleset `run` installs, and `check` names the
// queue mechanism.
func TestRulesPrintIsInstalledRuleset(t *testing.T) {
	l := newLab(t)
	args := []string{"--inside", lab.InsidePrefix + ",100.64.1.0/24", "--methods", "tcp-option,ip-id", "--queue-num", "3", "--queue-count", "2"}
	printed, err := l.Exec(l.NAT, append([]string{binary, "rules", "print"}, args...)...)
	if err != nil {
		t.Fatal(err)
	}
	d := startDaemon(t, l, args...)
	listed, err := l.Exec(l.NAT, "nft", "list", "table", "ip", "natreveal")
	if err != nil {
		t.Fatal(err)
	}
	d.stop(t)
	// nft adds a warning comment for tables holding compat (xtables)
	// expressions, and shows the mss chain's xor operand with a type it
	// cannot read back (rules/text.go, mssChainText).
	listed = strings.ReplaceAll(listed, " [invalid type] return\n", " return\n")
	var kept []string
	for _, ln := range strings.Split(listed, "\n") {
		if !strings.HasPrefix(ln, "# Warning:") {
			kept = append(kept, ln)
		}
	}
	if got := strings.Join(kept, "\n"); got != printed {
		t.Errorf("rules print differs from the installed ruleset.\nprinted:\n%s\nnft lists:\n%s", printed, got)
	}
	out, err := l.Exec(l.NAT, binary, "check")
	if err != nil {
		t.Fatalf("check failed on this kernel: %v\n%s", err, out)
	}
	if !strings.Contains(out, "queue") || !(strings.Contains(out, "xtables NFQUEUE") || strings.Contains(out, "native nft queue")) {
		t.Errorf("check does not name the queue mechanism:\n%s", out)
	}
	t.Logf("natreveal check:\n%s", out)
}

// A configuration whose keys pass but whose ruleset cannot be installed
// (here overlapping inside prefixes) exits 2 with one line, from run before
// anything is set up (no table, no metrics endpoint), from check and from
// rules print, rather than failing at run time (exit 1, restarted forever).
func TestInvalidRulesetIsUsage(t *testing.T) {
	args := []string{"--inside", "100.64.0.0/24,100.64.0.0/16", "--methods", "tcp-option", "--table", "nrinvalid",
		"--status-socket", "", "--metrics-listen", "127.0.0.1:0"}
	for _, cmd := range [][]string{{"run"}, {"check"}, {"rules", "print", "--mechanism", "native"}} {
		out, err := exec.Command(binary, append(cmd, args...)...).CombinedOutput()
		ee, ok := err.(*exec.ExitError)
		if !ok || ee.ExitCode() != 2 {
			t.Errorf("%v: exit %v, want 2; output %q", cmd, err, out)
			continue
		}
		lines := strings.Split(strings.TrimSpace(string(out)), "\n")
		if len(lines) != 1 || !strings.HasPrefix(lines[0], "natreveal: ") || !strings.Contains(lines[0], "overlap") {
			t.Errorf("%v: output %q, want one line naming the overlap", cmd, out)
		}
	}
	if out, err := exec.Command("nft", "list", "table", "ip", "nrinvalid").CombinedOutput(); err == nil {
		t.Errorf("run installed a table:\n%s", out)
	}
}
