package test

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/natreveal/natreveal/lab"
)

// netnsList lists the namespaces of this test process (names carry its pid;
// other processes may run labs meanwhile).
func netnsList(t *testing.T, l *lab.Lab) string {
	t.Helper()
	out, err := exec.Command("ip", "netns", "list").CombinedOutput()
	if err != nil {
		t.Fatalf("ip netns list: %v\n%s", err, out)
	}
	prefix := strings.TrimSuffix(l.NAT, "nat")
	var mine []string
	for _, ln := range strings.Split(string(out), "\n") {
		if name, _, _ := strings.Cut(ln, " "); strings.HasPrefix(name, prefix) {
			mine = append(mine, name)
		}
	}
	sort.Strings(mine)
	return strings.Join(mine, "\n")
}

// 20 restarts leave the ruleset identical and no namespace behind; 20
// reloads in one daemon leak no goroutine and no file descriptor.
func TestRestartsAndReloadsLeakNothing(t *testing.T) {
	l := newLab(t)
	s := listen(t, l)
	before, nsBefore := ruleset(t, l), netnsList(t, l)
	args := []string{"--inside", lab.InsidePrefix, "--methods", "tcp-option,ip-id", "--queue-count", "2"}
	for i := 0; i < 20; i++ {
		d := startDaemon(t, l, args...)
		if i%5 == 0 {
			if got := connect(t, s, l.C1, fmt.Sprintf("restart%d", i), 0); got.OptionID != 0x0002 {
				t.Errorf("restart %d: server saw %+v", i, got)
			}
		}
		d.stopLog(t)
		if after := ruleset(t, l); after != before {
			t.Fatalf("restart %d changed the ruleset:\n%s\nwas:\n%s", i, after, before)
		}
	}
	if got := netnsList(t, l); got != nsBefore {
		t.Errorf("namespaces changed over the restarts:\n%s\nwas:\n%s", got, nsBefore)
	}

	d := startDaemon(t, l, args...)
	m0 := scrape(t, l, "127.0.0.1:9850")
	for i := 1; i <= 20; i++ {
		d.Signal(syscall.SIGHUP)
		d.waitLog(t, "reloaded: ", i)
	}
	connect(t, s, l.C2, "after-reloads", 0)
	// Goroutines and descriptors of earlier scrapes and of the reloads end
	// asynchronously: scrape again until the counts are back near the
	// baseline; only a count that stays up is a leak.
	keys := []string{"go_goroutines", "process_open_fds"}
	var m1 map[string]float64
	for deadline := time.Now().Add(10 * time.Second); ; {
		m1 = scrape(t, l, "127.0.0.1:9850")
		ok := true
		for _, k := range keys {
			ok = ok && m1[k] <= m0[k]+2
		}
		if ok || time.Now().After(deadline) {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	for _, k := range keys {
		if m1[k] > m0[k]+2 {
			t.Errorf("%s grew over 20 reloads (still after 10s): %v -> %v", k, m0[k], m1[k])
		}
		t.Logf("%s: %v -> %v over 20 reloads", k, m0[k], m1[k])
	}
	d.stop(t)
	if after := ruleset(t, l); after != before {
		t.Errorf("ruleset changed:\n%s", after)
	}
}

// A full queue fails open: with a one-packet kernel queue and one worker,
// a burst of connections all succeed (no kernel drops of user packets);
// those that found the queue full go out unmarked, and the endpoint shows
// no kernel drop.
func TestFullQueueFailsOpen(t *testing.T) {
	l := newLab(t)
	s := listen(t, l)
	d := startDaemonEnv(t, l, []string{"NATREVEAL_QUEUE_MAX_LEN=1", "NATREVEAL_QUEUE_WORKERS=1", "NATREVEAL_QUEUE_BACKLOG=1"},
		"--inside", lab.InsidePrefix, "--methods", "tcp-option")
	const n = 150
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for i := 0; i < n; i++ {
		ns := l.C1
		if i%2 == 1 {
			ns = l.C2
		}
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			errs <- lab.Connect(ns, srvAddr, []byte(fmt.Sprintf("%-16s", fmt.Sprintf("burst%d", i))), 20*time.Second)
		}(i)
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Error(err)
		}
	}
	marked := 0
	for i := 0; i < n; i++ {
		if waitSeen(t, s, fmt.Sprintf("burst%d", i)).HasOption {
			marked++
		}
	}
	m := scrape(t, l, "127.0.0.1:9850")
	st := d.stop(t)
	t.Logf("%d of %d connections marked; counters %v", marked, n, st)
	if m[`natreveal_kernel_queue_dropped_total{queue="0"}`] != 0 {
		t.Errorf("the kernel dropped %v packets", m[`natreveal_kernel_queue_dropped_total{queue="0"}`])
	}
	if marked == 0 {
		t.Error("no connection marked at all")
	}
}

// natreveal works beside rules from iptables-legacy, iptables-nft and plain
// nft loaded before it starts, and leaves them untouched: while it runs,
// after SIGTERM, and after SIGKILL plus `natreveal rules remove`.
func TestCoexistence(t *testing.T) {
	l := newLab(t)
	s := listen(t, l)
	legacy := false
	if _, err := exec.LookPath("iptables-legacy"); err == nil {
		if _, err := l.Exec(l.NAT, "iptables-legacy", "-A", "FORWARD", "-s", "100.64.0.99", "-j", "DROP"); err != nil {
			t.Logf("iptables-legacy unusable here: %v", err)
		} else {
			legacy = true
		}
	} else if os.Getenv("CI") == "true" {
		t.Fatal("iptables-legacy missing in CI (package iptables)")
	}
	if _, err := l.Exec(l.NAT, "iptables-nft", "-A", "FORWARD", "-s", "100.64.0.98", "-j", "DROP"); err != nil {
		t.Fatal(err)
	}
	if err := l.Nft(l.NAT, "table inet mine {\n\tchain forward_mine {\n\t\ttype filter hook forward priority filter; policy accept;\n\t\tip saddr 100.64.0.97 drop\n\t}\n}\n"); err != nil {
		t.Fatal(err)
	}
	state := func() string {
		r := ruleset(t, l)
		if legacy {
			out, err := l.Exec(l.NAT, "iptables-legacy-save")
			if err != nil {
				t.Fatal(err)
			}
			out = regexp.MustCompile(`(?m)^#.*\n`).ReplaceAllString(out, "")
			r += regexp.MustCompile(`\[\d+:\d+\]`).ReplaceAllString(out, "") // policy counters move with traffic
		}
		return r
	}
	before := state()
	args := []string{"--inside", lab.InsidePrefix, "--methods", "tcp-option,ip-id"}
	d := startDaemon(t, l, args...)
	during := state()
	for _, want := range []string{"table inet mine", "100.64.0.98", "table ip natreveal"} {
		if !strings.Contains(during, want) {
			t.Errorf("while running, no %q in:\n%s", want, during)
		}
	}
	if legacy && !strings.Contains(during, "-A FORWARD -s 100.64.0.99/32 -j DROP") {
		t.Errorf("iptables-legacy rule gone while running:\n%s", during)
	}
	if got := connect(t, s, l.C1, "coexist", 0); got.OptionID != 0x0002 || got.IPID != 0x0002 {
		t.Errorf("server saw %+v", got)
	}
	d.stop(t)
	if after := state(); after != before {
		t.Errorf("after SIGTERM:\n%s\nwas:\n%s", after, before)
	}
	d = startDaemon(t, l, args...)
	d.Kill()
	if out, err := l.Exec(l.NAT, binary, "rules", "remove"); err != nil {
		t.Fatalf("rules remove: %v\n%s", err, out)
	}
	if after := state(); after != before {
		t.Errorf("after SIGKILL and rules remove:\n%s\nwas:\n%s", after, before)
	}
}

// A configuration with a bad prefix, an unknown method or an unreadable key
// file exits 2 with one line naming the key, and installs nothing.
func TestBadConfigInstallsNothing(t *testing.T) {
	l := newLab(t)
	before := ruleset(t, l)
	dir := t.TempDir()
	file := func(name, body string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	for _, c := range []struct {
		args []string
		key  string
	}{
		{[]string{"--inside", "100.64.0.1/24", "--methods", "tcp-option"}, "inside"},
		{[]string{"--inside", "100.64.0.0/33", "--methods", "tcp-option"}, "inside"},
		{[]string{"--config", file("prefix.yaml", "inside: [not-a-prefix]\nmethods: [tcp-option]\n")}, "inside"},
		{[]string{"--config", file("method.yaml", "inside: [100.64.0.0/24]\nmethods: [tcp-option, carrier-pigeon]\n")}, "methods"},
		{[]string{"--config", file("key.yaml", "inside: [100.64.0.0/24]\nmethods: [ip-id]\nhostid:\n  source: hash\n  key_file: "+dir+"\n")}, "hostid.key_file"},
		{[]string{"--config", file("typo.yaml", "inside: [100.64.0.0/24]\nmethods: [ip-id]\nmetrics:\n  listne: x\n")}, "metrics.listne"},
		{[]string{"--inside", "100.64.0.0/24", "--methods", "ip-id", "--metrics-listen", "nope"}, "metrics.listen"},
		{[]string{"--inside", "100.64.0.0/24", "--methods", "ip-id", "--log-format", "xml"}, "log.format"},
	} {
		for _, sub := range []string{"run", "check"} {
			o, err := exec.Command("ip", append([]string{"netns", "exec", l.NAT, binary, sub}, c.args...)...).CombinedOutput()
			out := string(o)
			ee, ok := err.(*exec.ExitError)
			if !ok || ee.ExitCode() != 2 {
				t.Errorf("%s %v: %v, want exit 2; output %q", sub, c.args, err, out)
				continue
			}
			lines := strings.Split(strings.TrimSpace(out), "\n")
			if len(lines) != 1 || !strings.HasPrefix(lines[0], "natreveal: "+c.key+": ") {
				t.Errorf("%s %v: output %q, want one line naming %s", sub, c.args, out, c.key)
			}
		}
		if after := ruleset(t, l); after != before {
			t.Fatalf("%v installed something:\n%s", c.args, after)
		}
	}
}
