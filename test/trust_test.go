package test

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/natreveal/natreveal/rules"
)

// Issue 17 item 13: a configuration file every user can write, or a hash
// key file every user can read, was accepted silently. Both are refused:
// exit 2, one line naming the key.
func TestRefusesExposedFiles(t *testing.T) {
	l := newLab(t)
	dir := t.TempDir()
	write := func(name, body string, mode os.FileMode) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(p, mode); err != nil { // past the umask
			t.Fatal(err)
		}
		return p
	}
	key := write("key", "0123456789abcdef0123456789abcdef", 0o644)
	for _, c := range []struct {
		args      []string
		key, want string
	}{
		{[]string{"--config", write("open.yaml", "inside: [100.64.0.0/24]\nmethods: [ip-id]\n", 0o666)}, "config", "writable by every user"},
		{[]string{"--inside", "100.64.0.0/24", "--methods", "ip-id", "--hostid-source", "hash", "--hostid-key-file", key}, "hostid.key_file", "readable or writable by every user"},
	} {
		for _, sub := range []string{"run", "check"} {
			o, err := exec.Command("ip", append([]string{"netns", "exec", l.NAT, binary, sub}, c.args...)...).CombinedOutput()
			out := strings.TrimSpace(string(o))
			ee, ok := err.(*exec.ExitError)
			if !ok || ee.ExitCode() != 2 {
				t.Errorf("%s %v: %v, want exit 2; output %q", sub, c.args, err, out)
				continue
			}
			if strings.Contains(out, "\n") || !strings.Contains(out, c.key+": ") || !strings.Contains(out, c.want) {
				t.Errorf("%s %v: output %q, want one line naming %s: %s", sub, c.args, out, c.key, c.want)
			}
		}
	}
	// The same key, private: accepted (check validates without running).
	os.Chmod(key, 0o600)
	if o, err := exec.Command("ip", "netns", "exec", l.NAT, binary, "check", "--inside", "100.64.0.0/24",
		"--methods", "ip-id", "--hostid-source", "hash", "--hostid-key-file", key).CombinedOutput(); err != nil {
		t.Errorf("a private key file: %v\n%s", err, o)
	}
}

// Issue 17 item 13: outside systemd the daemon kept every capability. Once
// running it holds CAP_NET_ADMIN and CAP_NET_RAW only (bounding set too),
// and SIGTERM still replaces its table (with the closing one: http-header
// selects flows) and restores the sysctls it set.
func TestDropsCapabilities(t *testing.T) {
	l := newLab(t)
	// capset on every thread needs a binary without cgo (as the Makefile
	// builds it).
	bin := filepath.Join(t.TempDir(), "natreveal")
	build := exec.Command("go", "build", "-o", bin, "../cmd/natreveal")
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("build: %v\n%s", err, out)
	}
	conf := writeConfig(t, "inside: [100.64.0.0/24]\nmethods: [tcp-option, http-header]\nhttp_header:\n  ports: [80]\n")
	d := startDaemonArgv(t, l, []string{"NATREVEAL_STATE_DIR=" + t.TempDir()}, []string{bin, "run", "--config", conf})
	status, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", d.Pid()))
	if err != nil {
		t.Fatal(err)
	}
	const want = 1<<12 | 1<<13 // CAP_NET_ADMIN, CAP_NET_RAW
	for _, field := range []string{"CapEff", "CapPrm", "CapBnd"} {
		var got uint64
		for _, line := range strings.Split(string(status), "\n") {
			if v, ok := strings.CutPrefix(line, field+":"); ok {
				got, _ = strconv.ParseUint(strings.TrimSpace(v), 16, 64)
			}
		}
		if got != want {
			t.Errorf("%s = %#x, want %#x (CAP_NET_ADMIN, CAP_NET_RAW)\n%s", field, got, want, d.Output())
		}
	}
	if a, b := ctAcct(t, l), beLiberal(t, l); a != "1" || b != "1" {
		t.Fatalf("sysctls not set: acct=%s be_liberal=%s", a, b)
	}
	d.stopLog(t)
	// With http-header, what stays is the closing table (rules.Close): the
	// daemon, down to its two capabilities, could still replace the ruleset.
	if r, err := l.Exec(l.NAT, "nft", "list", "table", "ip", "natreveal"); err != nil ||
		r != rules.ClosingText(rules.Spec{Select: true, SelectBit: 0x00040000}) {
		t.Errorf("after SIGTERM, table ip natreveal is not the closing table (%v):\n%s", err, r)
	}
	if a, b := ctAcct(t, l), beLiberal(t, l); a != "0" || b != "0" {
		t.Errorf("after SIGTERM: acct=%s be_liberal=%s, want both restored to 0", a, b)
	}
}
