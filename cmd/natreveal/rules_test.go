package main

import (
	"bytes"
	"net/netip"
	"strings"
	"testing"

	"github.com/natreveal/natreveal/internal/cli"
)

// natreveal runs the command line args in process: exit code, stdout, stderr.
func natreveal(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	root := rootCmd()
	cli.Prepare(root, "test")
	var out, errOut bytes.Buffer
	root.SetOut(&out)
	code := cli.Run(root, args, &errOut)
	return code, out.String(), errOut.String()
}

// A configuration whose keys pass but whose ruleset rules.Apply refuses is
// caught before anything is installed (validRules, in run's load, check
// and rules print).
func TestValidRules(t *testing.T) {
	c := load(t, "--inside=100.64.0.0/24", "--methods=tcp-option")
	if err := validRules(c); err != nil {
		t.Fatalf("a valid configuration: %v", err)
	}
	c.Inside = append(c.Inside, netip.MustParsePrefix("100.64.0.0/16")) // what config may let through
	err := validRules(c)
	if err == nil || !strings.Contains(err.Error(), "overlap") || strings.Contains(err.Error(), "\n") {
		t.Errorf("overlapping inside prefixes: validRules = %v, want one line naming the overlap", err)
	}
	ident := load(t, "--inside=100.64.0.0/24", "--methods=ident")
	if err := validRules(ident); err != nil {
		t.Errorf("ident only installs no queue table, which is valid: %v", err)
	}
}

// `rules print` prints every table run installs, says so when there is no
// queue table, and exits 2 on a ruleset run could not install.
func TestRulesPrintEveryTable(t *testing.T) {
	ps := []string{"--inside=100.64.0.0/28", "--port-set-public=192.0.2.1", "--port-set-block-size=256", "--mechanism=native", "--status-socket="}
	code, out, errOut := natreveal(t, append([]string{"rules", "print", "--methods=tcp-option,port-set"}, ps...)...)
	if code != 0 || !strings.Contains(out, "table ip natreveal {") || !strings.Contains(out, "table ip natreveal_portset {") {
		t.Errorf("tcp-option and port-set: exit %d, stderr %q, want both tables:\n%s", code, errOut, out)
	}
	code, out, errOut = natreveal(t, append([]string{"rules", "print", "--methods=port-set"}, ps...)...)
	if code != 0 || !strings.HasPrefix(out, "# natreveal: no queue table") || !strings.Contains(out, "table ip natreveal_portset {") ||
		strings.Contains(out, "invalid") {
		t.Errorf("port-set only: exit %d, stderr %q, want a comment and the port-set table:\n%s", code, errOut, out)
	}
	code, out, errOut = natreveal(t, "rules", "print", "--methods=ident", "--inside=100.64.0.0/24", "--mechanism=native")
	if code != 0 || out != "# natreveal: no queue table: no packet is queued for ident\n" {
		t.Errorf("ident only: exit %d, stderr %q, stdout %q, want one comment line", code, errOut, out)
	}
}
