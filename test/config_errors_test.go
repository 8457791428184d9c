package test

import (
	"os"
	"os/exec"
	"strings"
	"testing"
)

// Values the configuration once let through, to fail later in run or to
// mean something else, exit 2 with one line naming the key or flag.
func TestConfigRejectsAtLoad(t *testing.T) {
	v4 := []string{"--inside", "100.64.0.0/24", "--methods", "ip-id"}
	for _, c := range []struct {
		args []string
		key  string // what the line names after "natreveal: "
	}{
		{append(v4, "--metrics-listen", ":99999"), "metrics.listen"},
		{append(v4, "--status-socket", "/run/"+strings.Repeat("s", 110)), "status.socket"},
		{[]string{"--inside", "100.64.0.0/24", "--methods", "ident", "--ident-listen", ":99999"}, "ident.listen"},
		{[]string{"--inside", "fe80::%eth0/64", "--methods", "dest-opt"}, "inside"},
		{[]string{"--inside", "100.64.0.0/10,100.64.1.0/24", "--methods", "ip-id"}, "inside"},
		{[]string{"--inside", "100.64.0.0/24,100.64.0.0/24", "--methods", "ip-id"}, "inside"},
		{[]string{"--inside", "2001:db8::/64", "--methods", "http-header"}, "methods"},
		{append(v4, "--table", "9abc"), "table"},
		{append(v4, "--table", "natreveal_probe"), "table"},
		{append(v4, "--table", strings.Repeat("a", 250)), "table"},
		{[]string{"--inside", "100.64.0.0/24", "--methods", "port-set", "--port-set-public", "192.0.2.1", "--port-set-ports", "1024", "--port-set-block-size", "2"}, "port_set.ports"},
		{append(v4, "--queue-num", "010"), `invalid argument "010" for "--queue-num" flag`},
		{append(v4, "--config", writeConfig(t, "metrics:\n  listen:\n")), "metrics.listen"},
		{append(v4, "--config", writeConfig(t, "queue:\n  num: 7.9\n")), "queue.num"},
		{append(v4, "--config", writeConfig(t, "queue:\n  num: true\n")), "queue.num"},
	} {
		for _, sub := range []string{"run", "check"} {
			out, err := exec.Command(binary, append([]string{sub}, c.args...)...).CombinedOutput()
			ee, ok := err.(*exec.ExitError)
			if !ok || ee.ExitCode() != 2 {
				t.Errorf("%s %v: exit %v, want 2; output %q", sub, c.args, err, out)
				continue
			}
			lines := strings.Split(strings.TrimSpace(string(out)), "\n")
			if len(lines) != 1 || !strings.HasPrefix(lines[0], "natreveal: "+c.key) {
				t.Errorf("%s %v: output %q, want one line naming %s", sub, c.args, out, c.key)
			}
		}
	}
	// The environment, as strictly.
	cmd := exec.Command(binary, append([]string{"check"}, v4...)...)
	cmd.Env = append(os.Environ(), "NATREVEAL_QUEUE_NUM=010")
	if out, err := cmd.CombinedOutput(); !strings.HasPrefix(string(out), "natreveal: queue.num: ") {
		t.Errorf("NATREVEAL_QUEUE_NUM=010: %v, %q", err, out)
	}
}
