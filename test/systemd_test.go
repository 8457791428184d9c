package test

import (
	"bufio"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/natreveal/natreveal/lab"
)

// makeInstall runs `make install` into a fresh DESTDIR and returns it.
func makeInstall(t *testing.T) string {
	t.Helper()
	if _, err := exec.LookPath("make"); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("make missing in CI")
		}
		t.Skip("needs make")
	}
	dest := t.TempDir()
	cmd := exec.Command("make", "-C", "..", "install", "DESTDIR="+dest, "BIN="+filepath.Join(dest, "build", "natreveal"))
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("make install: %v\n%s", err, out)
	}
	return dest
}

// `make install DESTDIR=...` puts binary, unit and example config in place.
func TestMakeInstall(t *testing.T) {
	dest := makeInstall(t)
	for _, f := range []string{"usr/bin/natreveal", "lib/systemd/system/natreveal.service",
		"etc/natreveal/natreveal.yaml", "etc/natreveal/natreveal.yaml.example"} {
		if _, err := os.Stat(filepath.Join(dest, f)); err != nil {
			t.Error(err)
		}
	}
	// The example configuration is valid as shipped.
	out, err := exec.Command(filepath.Join(dest, "usr/bin/natreveal"), "check", "--config",
		filepath.Join(dest, "etc/natreveal/natreveal.yaml")).CombinedOutput()
	if err != nil && !strings.Contains(string(out), "ok   config") {
		t.Errorf("check --config on the example: %v\n%s", err, out)
	}
}

// systemd-analyze verify passes on the unit (paths pointed at the test's
// binary and config, which verify requires to exist).
func TestUnitVerifies(t *testing.T) {
	sa, err := exec.LookPath("systemd-analyze")
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("systemd-analyze missing in CI")
		}
		t.Skip("needs systemd-analyze")
	}
	unit, err := os.ReadFile("../systemd/natreveal.service")
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	text := strings.ReplaceAll(string(unit), "/usr/bin/natreveal", binary)
	text = strings.ReplaceAll(text, "/etc/natreveal/natreveal.yaml", filepath.Join(dir, "natreveal.yaml"))
	file := filepath.Join(dir, "natreveal.service")
	if err := os.WriteFile(file, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(sa, "verify", "--man=no", file).CombinedOutput()
	var bad []string
	for _, ln := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		// verify checks the whole boot transaction too: other units of
		// this machine (or container) may be broken. Only ours counts.
		if strings.Contains(ln, "natreveal") {
			bad = append(bad, ln)
		}
	}
	if err != nil || len(bad) > 0 {
		t.Errorf("systemd-analyze verify: %v\n%s", err, out)
	}
}

// unitCaps reads the unit's capability list.
func unitCaps(t *testing.T) []string {
	t.Helper()
	f, err := os.Open("../systemd/natreveal.service")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "CapabilityBoundingSet="); ok {
			var caps []string
			for _, c := range strings.Fields(v) {
				caps = append(caps, "+"+strings.ToLower(strings.TrimPrefix(c, "CAP_")))
			}
			return caps
		}
	}
	t.Fatal("no CapabilityBoundingSet in the unit")
	return nil
}

// The unit's privileges suffice: root with every capability but the unit's
// dropped (its bounding set, no new privileges), and an unprivileged user
// holding them as ambient capabilities (what DynamicUser=yes would give),
// both install the ruleset, mark a connection and clean up on SIGTERM.
func TestUnitPrivilegesSuffice(t *testing.T) {
	l := newLab(t)
	if _, err := exec.LookPath("setpriv"); err != nil {
		t.Skip("needs setpriv (util-linux)")
	}
	s := listen(t, l)
	before := ruleset(t, l)
	caps := strings.Join(unitCaps(t), ",")
	for i, wrap := range [][]string{
		{"setpriv", "--bounding-set", "-all," + caps, "--inh-caps", "-all," + caps, "--ambient-caps", "-all," + caps, "--no-new-privs"},
		{"setpriv", "--reuid", "65534", "--regid", "65534", "--clear-groups", "--bounding-set", "-all," + caps,
			"--inh-caps", "-all," + caps, "--ambient-caps", "-all," + caps, "--no-new-privs"},
	} {
		argv := append(wrap, binary, "run", "--inside", lab.InsidePrefix, "--methods", "tcp-option,ip-id")
		d := startDaemonArgv(t, l, nil, argv)
		label := []string{"caps-root", "caps-nobody"}[i]
		if got := connect(t, s, l.C1, label, 0); got.OptionID != 0x0002 || got.IPID != 0x0002 {
			t.Errorf("%s: server saw %+v", label, got)
		}
		if st := d.stop(t); st["verdict-errors"] != 0 {
			t.Errorf("%s: %v", label, st)
		}
		if after := ruleset(t, l); after != before {
			t.Errorf("%s: ruleset left changed:\n%s", label, after)
		}
	}
}
