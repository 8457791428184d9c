package test

import (
	"bufio"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

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
	// Type=notify-reload came with systemd 253; an older systemd-analyze
	// (Debian 12 has 252) names it unknown. TestSystemdPID1 verifies the
	// unit under the systemd 257 that runs it.
	old := systemdVersion(t, sa) < 253
	var bad []string
	for _, ln := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		if old && strings.Contains(ln, "Failed to parse service type, ignoring: notify-reload") {
			t.Logf("systemd-analyze older than 253: %s", ln)
			continue
		}
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

// systemdVersion is the version number of the systemd tool at path.
func systemdVersion(t *testing.T, path string) int {
	t.Helper()
	out, err := exec.Command(path, "--version").Output()
	if f := strings.Fields(string(out)); err == nil && len(f) > 1 {
		if v, err := strconv.Atoi(f[1]); err == nil {
			return v
		}
	}
	t.Fatalf("%s --version: %v %q", path, err, out)
	return 0
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

// The unit under a real systemd as PID 1: a Debian root (debootstrap) booted
// with systemd-nspawn, driven with nsenter (the host needs neither systemd
// nor dbus). What a container cannot show: loading kernel modules (the
// host's kernel serves the container; ProtectKernelModules forbids it
// anyway), and nspawn's own read-only /proc/sys/net, which --private-network
// replaces by the container's own netns (the read-only case is rebuilt below
// by dropping the unit's ReadWritePaths carve-out). Marking traffic under
// the unit's privileges is TestUnitPrivilegesSuffice's.

// debianRelease is the root's release: its systemd (257) has
// Type=notify-reload (253 or later) and SystemCallErrorNumber=kill.
const debianRelease = "trixie"

// rootPackages: systemd as PID 1, nft to look at the table.
const rootPackages = "systemd,systemd-sysv,dbus,nftables"

// needContainer returns the tools the PID 1 test runs; it skips without
// them, except in CI where a missing prerequisite fails (.ci/run installs
// debootstrap and systemd-container).
func needContainer(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		missingPrereqs(t, []string{"root"})
	}
	needTools(t, "debootstrap", "systemd-nspawn", "nsenter")
}

// debianMirror is the mirror apt uses here ($NATREVEAL_DEBIAN_MIRROR first).
func debianMirror() string {
	if m := os.Getenv("NATREVEAL_DEBIAN_MIRROR"); m != "" {
		return m
	}
	files, _ := filepath.Glob("/etc/apt/sources.list.d/*")
	for _, f := range append([]string{"/etc/apt/sources.list"}, files...) {
		b, err := os.ReadFile(f)
		if err != nil {
			continue
		}
		for _, w := range strings.Fields(string(b)) {
			if strings.HasPrefix(w, "http") && strings.HasSuffix(strings.TrimSuffix(w, "/"), "/debian") {
				return w
			}
		}
	}
	return "http://deb.debian.org/debian"
}

// debianRoot returns a minimal Debian root with systemd, made once per
// release and package list under the user's cache directory and reused
// read-only (nspawn --volatile=overlay): debootstrap takes a minute or two.
func debianRoot(t *testing.T) string {
	t.Helper()
	cache, err := os.UserCacheDir()
	if err != nil {
		cache = os.TempDir()
	}
	key := strings.NewReplacer(",", "-").Replace(debianRelease + "-" + rootPackages)
	root := filepath.Join(cache, "natreveal", "rootfs-"+key)
	if _, err := os.Stat(filepath.Join(root, "usr/lib/systemd/systemd")); err == nil {
		return root
	}
	if err := os.MkdirAll(filepath.Dir(root), 0o755); err != nil {
		t.Fatal(err)
	}
	tmp, err := os.MkdirTemp(filepath.Dir(root), "building-")
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(tmp)
	start := time.Now()
	args := []string{"--variant=minbase", "--include=" + rootPackages}
	if kr := "/usr/share/keyrings/debian-archive-keyring.gpg"; fileExists(kr) {
		args = append(args, "--keyring="+kr)
	}
	args = append(args, debianRelease, tmp, debianMirror())
	if out, err := exec.Command("debootstrap", args...).CombinedOutput(); err != nil {
		t.Fatalf("debootstrap %s: %v\n%s", strings.Join(args, " "), err, lastLines(string(out), 20))
	}
	t.Logf("debootstrap %s: %s", debianRelease, time.Since(start).Round(time.Second))
	if err := os.Rename(tmp, root); err != nil && !fileExists(filepath.Join(root, "usr/lib/systemd/systemd")) {
		t.Fatal(err)
	}
	return root
}

func fileExists(p string) bool { _, err := os.Stat(p); return err == nil }

func lastLines(s string, n int) string {
	ls := strings.Split(strings.TrimSpace(s), "\n")
	return strings.Join(ls[max(0, len(ls)-n):], "\n")
}

// container is a booted systemd-nspawn container.
type container struct {
	t      *testing.T
	leader int // PID 1 of the container, as the host sees it
}

// bootContainer boots root with the test's binary, the unit and conf (a
// directory the test writes, mounted at /etc/natreveal) bound in, a private
// network (the container's own netns, whose /proc/sys/net is writable) and
// a tmpfs overlay that keeps root as it is.
func bootContainer(t *testing.T, root, conf, unit string) *container {
	t.Helper()
	console, err := os.Create(filepath.Join(t.TempDir(), "console"))
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("systemd-nspawn", "-D", root, "--boot", "--register=no", "--keep-unit",
		"--private-network", "--volatile=overlay", "--console=read-only", "-M", "natreveal-test",
		"--bind-ro="+binary+":/usr/bin/natreveal", "--bind-ro="+unit+":/etc/systemd/system/natreveal.service",
		"--bind="+conf+":/etc/natreveal")
	cmd.Env = append(os.Environ(), "SYSTEMD_NSPAWN_UNIFIED_HIERARCHY=1")
	cmd.Stdout, cmd.Stderr = console, console
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { cmd.Wait(); close(done) }()
	c := &container{t: t}
	t.Cleanup(func() {
		if c.leader != 0 {
			c.sh("systemctl poweroff --no-block")
		}
		select {
		case <-done:
		case <-time.After(20 * time.Second):
			cmd.Process.Kill()
			<-done
		}
		console.Close()
	})
	deadline := time.Now().Add(90 * time.Second)
	for time.Now().Before(deadline) {
		// The container's PID 1 (nspawn may first fork a helper that is
		// not: take the descendant that is PID 1 of its own namespace).
		if c.leader == 0 || !pidOne(c.leader) {
			c.leader = containerInit(cmd.Process.Pid)
		}
		if c.leader != 0 {
			if out, _ := c.run("systemctl", "is-system-running"); out == "running" || out == "degraded" {
				return c
			}
		}
		time.Sleep(200 * time.Millisecond)
	}
	b, _ := os.ReadFile(console.Name())
	t.Fatalf("the container did not boot within 90 s:\n%s", lastLines(string(b), 30))
	return nil
}

// pidOne reports whether host process pid is PID 1 of its PID namespace
// (the last field of NSpid, proc(5)).
func pidOne(pid int) bool {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return false
	}
	for _, l := range strings.Split(string(b), "\n") {
		if f := strings.Fields(l); len(f) > 2 && f[0] == "NSpid:" {
			return f[len(f)-1] == "1"
		}
	}
	return false
}

// containerInit finds, below process pid (two levels at most), the process
// that is PID 1 of its own namespace; 0 when none is there yet.
func containerInit(pid int) int {
	children := func(p int) []int {
		b, _ := os.ReadFile(fmt.Sprintf("/proc/%d/task/%d/children", p, p))
		var out []int
		for _, f := range strings.Fields(string(b)) {
			if n, err := strconv.Atoi(f); err == nil {
				out = append(out, n)
			}
		}
		return out
	}
	for _, c := range children(pid) {
		if pidOne(c) {
			return c
		}
		for _, g := range children(c) {
			if pidOne(g) {
				return g
			}
		}
	}
	return 0
}

// run runs argv in the container (every namespace of its PID 1).
func (c *container) run(argv ...string) (string, error) {
	out, err := exec.Command("nsenter", append([]string{"-t", strconv.Itoa(c.leader), "-a"}, argv...)...).CombinedOutput()
	return strings.TrimSpace(string(out)), err
}

func (c *container) sh(script string) (string, error) { return c.run("sh", "-c", script) }

// must runs script and fails the test when it fails.
func (c *container) must(script string) string {
	c.t.Helper()
	out, err := c.sh(script)
	if err != nil {
		c.t.Fatalf("%s: %v\n%s", script, err, out)
	}
	return out
}

// journal is the unit's journal since cursor-less boot, message text only.
func (c *container) journal() string {
	out, _ := c.sh("journalctl --no-pager -o cat -u natreveal.service")
	return out
}

// Start, reload, watchdog, stop, hardening, sysctls and a bad configuration
// under systemd as PID 1.
func TestSystemdPID1(t *testing.T) {
	needContainer(t)
	unit, err := os.ReadFile("../systemd/natreveal.service")
	if err != nil {
		t.Fatal(err)
	}
	example, err := os.ReadFile("../systemd/natreveal.yaml")
	if err != nil {
		t.Fatal(err)
	}
	dir, conf := t.TempDir(), t.TempDir()
	unitFile := filepath.Join(dir, "natreveal.service")
	if err := os.WriteFile(unitFile, unit, 0o644); err != nil {
		t.Fatal(err)
	}
	good := strings.Replace(string(example), "127.0.0.1:9850", `""`, 1) // no port shared with other tests' daemons
	if err := os.WriteFile(filepath.Join(conf, "natreveal.yaml"), []byte(good), 0o644); err != nil {
		t.Fatal(err)
	}
	c := bootContainer(t, debianRoot(t), conf, unitFile)
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("journal:\n%s", lastLines(c.journal(), 60))
		}
	})
	const acct = "/proc/sys/net/netfilter/nf_conntrack_acct"

	// systemd-analyze verify passes under the systemd that runs the unit.
	if out, err := c.run("systemd-analyze", "verify", "--man=no", "/etc/systemd/system/natreveal.service"); err != nil || strings.Contains(out, "natreveal") {
		t.Errorf("systemd-analyze verify: %v\n%s", err, out)
	}
	// The test's drop-in: a watchdog short enough to wait for, and a
	// denied system call kills the daemon (SIGSYS, "status=31/SYS" in the
	// journal) instead of failing with EPERM unseen.
	c.must(`mkdir -p /etc/systemd/system/natreveal.service.d && printf '[Service]\nWatchdogSec=3s\nRestartSec=1s\nSystemCallErrorNumber=kill\n' > /etc/systemd/system/natreveal.service.d/test.conf && systemctl daemon-reload`)
	before := c.must("cat " + acct)

	// Type=notify-reload: `systemctl start` returns once READY=1 came,
	// which the daemon sends after installing its table.
	c.must("systemctl start natreveal")
	if out, err := c.sh("nft list table ip natreveal >/dev/null 2>&1 && systemctl is-active natreveal"); err != nil || out != "active" {
		t.Fatalf("after start: table or state: %v %q", err, out)
	}
	if j := c.journal(); !strings.Contains(j, "running: ") || strings.Index(j, "running: ") > strings.LastIndex(j, "Started natreveal.service") {
		t.Errorf("READY=1 before the table was installed:\n%s", j)
	}
	// The conntrack sysctl, set through the ReadWritePaths carve-out.
	if got := c.must("cat " + acct); got != "1" {
		t.Errorf("%s under the unit: %s, want 1", acct, got)
	}

	// reload re-applies the configuration: a table deleted behind the
	// daemon's back is back once `systemctl reload` returns.
	c.must("nft delete table ip natreveal && systemctl reload natreveal")
	if _, err := c.sh("nft list table ip natreveal"); err != nil {
		t.Errorf("reload did not re-install the table")
	}
	if !strings.Contains(c.journal(), "reloaded: ") {
		t.Errorf("no reload in the journal")
	}

	// The watchdog: a daemon that stops answering (SIGSTOP) is ended and
	// restarted, with one line in the journal, not a goroutine dump.
	pid := c.must("systemctl show -P MainPID natreveal")
	c.must("kill -STOP " + pid)
	deadline := time.Now().Add(30 * time.Second)
	for {
		now := c.must("systemctl show -P MainPID natreveal")
		state, _ := c.sh("systemctl is-active natreveal")
		if now != pid && now != "0" && state == "active" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no watchdog restart within 30 s (MainPID %s, %s)", now, state)
		}
		time.Sleep(200 * time.Millisecond)
	}
	j := c.journal()
	for _, want := range []string{"Watchdog timeout", "watchdog: SIGABRT from systemd", "Scheduled restart job"} {
		if !strings.Contains(j, want) {
			t.Errorf("journal lacks %q", want)
		}
	}
	if strings.Contains(j, "SIGABRT: abort") || strings.Contains(j, "goroutine 1 ") {
		t.Errorf("a goroutine dump in the journal")
	}
	if _, err := c.sh("nft list table ip natreveal"); err != nil {
		t.Errorf("no table after the watchdog restart")
	}
	// The lock of one daemon per network namespace, in RuntimeDirectory
	// (writable under ProtectSystem=strict): it names the running daemon,
	// and ExecStopPost's `rules close` ran after the killed one let it go.
	if got, now := c.must("cat /run/natreveal/run.lock*"), c.must("systemctl show -P MainPID natreveal"); got != now {
		t.Errorf("the lock file holds %q, want the MainPID %s", got, now)
	}
	if j := c.journal(); strings.Contains(j, "holds this network namespace") || strings.Contains(j, "will not be refused") {
		t.Errorf("the lock refused or could not be taken:\n%s", lastLines(j, 20))
	}

	// stop removes the table and restores the sysctl.
	c.must("systemctl stop natreveal")
	if _, err := c.sh("nft list table ip natreveal"); err == nil {
		t.Errorf("table left after stop")
	}
	if got := c.must("cat " + acct); got != before {
		t.Errorf("%s after stop: %s, want %s as before", acct, got, before)
	}
	// The hardening let it run: no system call denied.
	if j := c.journal(); strings.Contains(j, "status=31/SYS") || strings.Contains(j, "signal=SYS") {
		t.Errorf("a system call was denied:\n%s", j)
	}

	// Without the carve-out /proc/sys/net is read-only to the daemon: the
	// failed write is one line. The kernel turns accounting on all the same
	// (nft_ct does for the ruleset's `ct original packets`), and the
	// sandbox keeps the daemon from writing back what was there: one more
	// line, at stop. That is what the carve-out is for.
	c.must(`printf '[Service]\nReadWritePaths=\n' > /etc/systemd/system/natreveal.service.d/ro.conf && systemctl daemon-reload && systemctl start natreveal`)
	if j := c.journal(); !strings.Contains(j, "cannot set net.netfilter.nf_conntrack_acct=1 (tcp_option.max_segments") {
		t.Errorf("no line for the failed sysctl write")
	}
	c.must("systemctl stop natreveal && rm /etc/systemd/system/natreveal.service.d/ro.conf && systemctl daemon-reload")
	if got := c.must("cat " + acct); got != before && !strings.Contains(c.journal(), "cannot restore net.netfilter.nf_conntrack_acct="+before) {
		t.Errorf("%s left at %s (was %s) without a line saying so", acct, got, before)
	}
	c.must("echo " + before + " > " + acct)

	// A bad configuration fails ExecStartPre with its one line.
	bad := strings.Replace(good, "methods: [tcp-option]", "methods: [tcp-opton]", 1)
	if err := os.WriteFile(filepath.Join(conf, "natreveal.yaml"), []byte(bad), 0o644); err != nil {
		t.Fatal(err)
	}
	if out, err := c.sh("systemctl start natreveal"); err == nil {
		t.Errorf("started with a bad configuration: %s", out)
	}
	j = c.journal()
	// ExecStartPre is the unit's control process while starting.
	if !strings.Contains(j, "natreveal: methods: unknown method \"tcp-opton\" (want one of") || !strings.Contains(j, "Control process exited, code=exited, status=2") {
		t.Errorf("the bad configuration's line is not in the journal:\n%s", lastLines(j, 10))
	}
	if _, err := c.sh("nft list table ip natreveal"); err == nil {
		t.Errorf("a table after the failed start")
	}
}
