package test

import (
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/natreveal/natreveal/lab"
)

// guardRun runs `natreveal-server guard ARGS` in the server's namespace.
func guardRun(t *testing.T, l *lab.Lab, args ...string) (string, error) {
	t.Helper()
	out, err := exec.Command("ip", append([]string{"netns", "exec", l.Srv, serverBinary(t), "guard"}, args...)...).CombinedOutput()
	return string(out), err
}

func mustGuard(t *testing.T, l *lab.Lab, args ...string) string {
	t.Helper()
	out, err := guardRun(t, l, args...)
	if err != nil {
		t.Fatalf("guard %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return out
}

// guardEntry is one line of `guard list`.
type guardEntry struct {
	Addr    string `json:"addr"`
	HostID  string `json:"host_id"`
	Method  string `json:"method"`
	IDBytes int    `json:"id_bytes"`
	Packets uint64 `json:"packets_dropped"`
}

func guardList(t *testing.T, l *lab.Lab) []guardEntry {
	t.Helper()
	var out []guardEntry
	if err := json.Unmarshal([]byte(mustGuard(t, l, "list")), &out); err != nil {
		t.Fatalf("guard list: %v", err)
	}
	return out
}

// connects opens n connections from ns to addr, one after another, and
// returns how many completed (the server answered "ok").
func connects(ns, addr string, n int) int {
	ok := 0
	for i := 0; i < n; i++ {
		if lab.Connect(ns, addr, []byte(fmt.Sprintf("%-16s", fmt.Sprintf("g%s%d", ns[len(ns)-2:], i))), 3*time.Second) == nil {
			ok++
		}
	}
	return ok
}

// A server blocks one host behind the CGN by its HOST_ID, in its own kernel:
// for each method a stock server can match, after `guard block 192.0.2.1
// <c1's HOST_ID>` c1 completes none of 20 connections and its neighbour c2,
// behind the same public address, all 20; `guard remove` leaves the
// server's ruleset as it was.
func TestGuardBlocksOneHost(t *testing.T) {
	l := newLab(t)
	s4 := listen(t, l)
	s6, err := lab.Listen(l.Srv, srvAddr6)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s6.Close)
	// Someone's own table on the server, which guard must leave alone.
	if err := l.Nft(l.Srv, "add table inet theirs; add chain inet theirs in { type filter hook input priority 0; }; add rule inet theirs in tcp dport 8080 accept"); err != nil {
		t.Fatal(err)
	}
	withTheirs := rulesetIn(t, l, l.Srv)

	for _, tc := range []struct {
		method, inside, dst, pub string
	}{
		{"tcp-option", lab.InsidePrefix, srvAddr, lab.NATPublic},
		{"ip-id", lab.InsidePrefix, srvAddr, lab.NATPublic},
		{"ip-option", lab.InsidePrefix, srvAddr, lab.NATPublic},
		{"tcp-option", lab.InsidePrefix6, srvAddr6, lab.NATPublic6},
		{"dest-opt", lab.InsidePrefix6, srvAddr6, lab.NATPublic6},
	} {
		t.Run(tc.method+"/"+tc.pub, func(t *testing.T) {
			d := startDaemon(t, l, "--inside", tc.inside, "--methods", tc.method)
			defer d.stop(t)
			mustGuard(t, l, "install", "--nat", tc.pub, "--methods", tc.method, "--action", "reject")
			mustGuard(t, l, "block", tc.pub, "2") // c1: lower16 of .2 / ::2
			if got := connects(l.C1, tc.dst, 20); got != 0 {
				t.Errorf("c1, blocked: %d of 20 connections completed, want 0", got)
			}
			if got := connects(l.C2, tc.dst, 20); got != 20 {
				t.Errorf("c2, its neighbour: %d of 20 connections completed, want 20", got)
			}
			var dropped uint64
			for _, e := range guardList(t, l) {
				if e.Method == tc.method && e.Addr == tc.pub && e.IDBytes == 2 {
					dropped += e.Packets
				}
			}
			if dropped < 20 {
				t.Errorf("guard list counts %d packets for c1's pair, want at least 20", dropped)
			}
			mustGuard(t, l, "remove")
			if after := rulesetIn(t, l, l.Srv); after != withTheirs {
				t.Errorf("ruleset after guard remove:\n%s\nwant as before install:\n%s", after, withTheirs)
			}
		})
	}
	_ = s4
}

// The rest of guard on tcp-option: a per-pair rate limit holds one host to
// its rate while the neighbour is unaffected; a block with --for expires; an
// ID from a source outside --nat is not acted on; bad input exits 2.
func TestGuardLimitExpiryTrust(t *testing.T) {
	l := newLab(t)
	listen(t, l)
	d := startDaemon(t, l, "--inside", lab.InsidePrefix, "--methods", "tcp-option")
	defer d.stop(t)

	// Bad input: one line, exit 2, nothing installed.
	for _, args := range [][]string{
		{"install"}, // no --nat
		{"install", "--nat", lab.NATPublic, "--methods", "bogus"},
		{"install", "--nat", lab.NATPublic, "--limit", "ten"},
		{"block", lab.NATPublic, "2"}, // not installed
	} {
		out, err := guardRun(t, l, args...)
		if code := exitCode(err); code != 2 || strings.Count(strings.TrimSpace(out), "\n") != 0 {
			t.Errorf("guard %s: exit %d, output %q; want exit 2 and one line", strings.Join(args, " "), code, out)
		}
	}
	if r := rulesetIn(t, l, l.Srv); strings.Contains(r, "natreveal_guard") {
		t.Fatalf("bad input left a table:\n%s", r)
	}

	mustGuard(t, l, "install", "--nat", lab.NATPublic, "--methods", "tcp-option", "--action", "reject",
		"--limit", "10/second", "--burst", "5")
	for _, args := range [][]string{
		{"block", "198.51.100.7", "2"},          // outside --nat
		{"block", lab.NATPublic, "0x1ffffffff"}, // wider than 32 bits
		{"block", lab.NATPublic6, "2"},          // no IPv6 NAT trusted
		{"unblock", lab.NATPublic, "9"},         // not blocked
	} {
		if out, err := guardRun(t, l, args...); exitCode(err) != 2 {
			t.Errorf("guard %s: exit %d (%s), want 2", strings.Join(args, " "), exitCode(err), out)
		}
	}

	// c1 opens connections as fast as it can for 5 s; c2 opens 20 meanwhile.
	const window = 5 * time.Second
	var c1ok, c2ok int
	var wg sync.WaitGroup
	wg.Add(2)
	go func() {
		defer wg.Done()
		lab.Do(l.C1, func() error {
			end := time.Now().Add(window)
			for time.Now().Before(end) {
				if c, err := net.DialTimeout("tcp", srvAddr, time.Second); err == nil {
					c1ok++
					c.Close()
				}
			}
			return nil
		})
	}()
	go func() {
		defer wg.Done()
		for i := 0; i < 20; i++ {
			c2ok += connects(l.C2, srvAddr, 1)
			time.Sleep(window / 25)
		}
	}()
	wg.Wait()
	rate := float64(c1ok-5) / window.Seconds() // the burst comes first
	t.Logf("limit 10/second burst 5: c1 completed %d connections in %s (%.1f/s beyond the burst); c2 %d of 20", c1ok, window, rate, c2ok)
	if rate < 8 || rate > 12 {
		t.Errorf("c1 got %.1f new connections/s, want 10/s ± 20%%", rate)
	}
	if c2ok != 20 {
		t.Errorf("c2 completed %d of 20 while c1 was limited, want 20", c2ok)
	}

	// Without the limit: a block for 2 s expires.
	mustGuard(t, l, "install", "--replace", "--nat", lab.NATPublic, "--methods", "tcp-option", "--action", "reject")
	mustGuard(t, l, "block", "--for", "2s", lab.NATPublic, "2")
	if got := connects(l.C1, srvAddr, 3); got != 0 {
		t.Errorf("c1 blocked for 2s: %d of 3 completed, want 0", got)
	}
	time.Sleep(2500 * time.Millisecond)
	if got := connects(l.C1, srvAddr, 3); got != 3 {
		t.Errorf("c1 after its block expired: %d of 3 completed, want 3", got)
	}
	if l := guardList(t, l); len(l) != 0 {
		t.Errorf("expired pairs still listed: %+v", l)
	}

	// Trust: the pair stays blocked, but its public address is no longer a
	// trusted NAT: the HOST_ID is ignored.
	mustGuard(t, l, "block", lab.NATPublic, "2")
	if got := connects(l.C1, srvAddr, 3); got != 0 {
		t.Fatalf("c1 blocked: %d of 3 completed, want 0", got)
	}
	mustGuard(t, l, "install", "--replace", "--nat", "192.0.2.128/25", "--methods", "tcp-option", "--action", "reject")
	if got := connects(l.C1, srvAddr, 3); got != 3 {
		t.Errorf("c1's pair from an untrusted source: %d of 3 completed, want 3 (not acted on)", got)
	}
	mustGuard(t, l, "remove")
	if out, err := guardRun(t, l, "remove"); exitCode(err) != 2 || !strings.Contains(out, "nothing to remove: guard is not installed") {
		t.Errorf("second guard remove: exit %d, output %q; want exit 2, nothing to remove", exitCode(err), out)
	}
}

// exitCode is a command's exit status (0 without error, -1 when it did not
// run).
func exitCode(err error) int {
	if err == nil {
		return 0
	}
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		return ee.ExitCode()
	}
	return -1
}

// `guard metrics` serves guard's counters to Prometheus: after c1's blocked
// connections its pair's dropped packets are scraped, the same number guard
// list counts; c2's pair is not blocked and has no series; a scrape before
// install says so (installed 0); SIGTERM ends it with status 0.
func TestGuardMetrics(t *testing.T) {
	l := newLab(t)
	listen(t, l)
	d := startDaemon(t, l, "--inside", lab.InsidePrefix, "--methods", "tcp-option")
	defer d.stop(t)

	const addr = "127.0.0.1:9851"
	cmd := exec.Command("ip", "netns", "exec", l.Srv, serverBinary(t), "guard", "metrics", "--listen", addr)
	var out strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	stopped := false
	t.Cleanup(func() {
		if !stopped {
			cmd.Process.Kill()
			cmd.Wait()
		}
	})
	scrape := func() string {
		t.Helper()
		var body string
		deadline := time.Now().Add(10 * time.Second)
		for {
			err := lab.Do(l.Srv, func() error {
				c, err := net.DialTimeout("tcp", addr, time.Second)
				if err != nil {
					return err
				}
				defer c.Close()
				c.SetDeadline(time.Now().Add(5 * time.Second))
				if _, err := c.Write([]byte("GET /metrics HTTP/1.0\r\nHost: x\r\n\r\n")); err != nil {
					return err
				}
				var b strings.Builder
				buf := make([]byte, 4096)
				for {
					n, err := c.Read(buf)
					b.Write(buf[:n])
					if err != nil {
						break
					}
				}
				body = b.String()
				return nil
			})
			if err == nil && strings.HasPrefix(body, "HTTP/1.0 200") {
				return body
			}
			if time.Now().After(deadline) {
				t.Fatalf("scrape %s: %v %q\n%s", addr, err, body, out.String())
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
	if got := scrape(); !strings.Contains(got, "\nnatreveal_guard_installed 0\n") {
		t.Errorf("scrape before install:\n%s", got)
	}

	mustGuard(t, l, "install", "--nat", lab.NATPublic, "--methods", "tcp-option", "--action", "reject")
	t.Cleanup(func() { guardRun(t, l, "remove") })
	mustGuard(t, l, "block", lab.NATPublic, "2")
	if got := connects(l.C1, srvAddr, 20); got != 0 {
		t.Errorf("c1, blocked: %d of 20 connections completed, want 0", got)
	}
	if got := connects(l.C2, srvAddr, 5); got != 5 {
		t.Errorf("c2: %d of 5 connections completed, want 5", got)
	}
	var listed uint64
	for _, e := range guardList(t, l) {
		if e.Method == "tcp-option" && e.Addr == lab.NATPublic && e.HostID == "0x0002" && e.IDBytes == 2 {
			listed = e.Packets
		}
	}
	got := scrape()
	series := `natreveal_guard_dropped_packets_total{addr="` + lab.NATPublic + `",family="ipv4",host_id="0x0002",id_bytes="2",method="tcp-option"} `
	var scraped uint64
	for ln := range strings.Lines(got) {
		if v, ok := strings.CutPrefix(strings.TrimSpace(ln), series); ok {
			fmt.Sscan(v, &scraped)
		}
	}
	if listed < 20 || scraped != listed {
		t.Errorf("c1's pair: scraped %d dropped packets, guard list %d; want equal, at least 20:\n%s", scraped, listed, got)
	}
	for _, want := range []string{"\nnatreveal_guard_installed 1\n",
		`natreveal_guard_blocked_pairs{family="ipv4",id_bytes="2",method="tcp-option"} 1`,
		`natreveal_guard_dropped_bytes_total{addr="` + lab.NATPublic + `",family="ipv4",host_id="0x0002",id_bytes="2",method="tcp-option"} `} {
		if !strings.Contains(got, want) {
			t.Errorf("scrape lacks %q:\n%s", want, got)
		}
	}
	if strings.Contains(got, `host_id="0x0003"`) {
		t.Errorf("c2's pair, never blocked, has a series:\n%s", got)
	}

	cmd.Process.Signal(syscall.SIGTERM)
	err := cmd.Wait()
	stopped = true
	if err != nil {
		t.Errorf("guard metrics after SIGTERM: %v\n%s", err, out.String())
	}
}
