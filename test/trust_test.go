package test

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
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
