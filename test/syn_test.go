package test

import (
	"bytes"
	"fmt"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/natreveal/natreveal/lab"
)

const srvAddr = lab.ServerAddr + ":8080"

func listen(t *testing.T, l *lab.Lab) *lab.Server {
	t.Helper()
	s, err := lab.Listen(l.Srv, srvAddr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	return s
}

// connect opens one connection labelled label (its first payload bytes) and
// returns what the server saw of it.
func connect(t *testing.T, s *lab.Server, ns, label string, extra int) lab.Seen {
	t.Helper()
	payload := append([]byte(fmt.Sprintf("%-16s", label)), bytes.Repeat([]byte("x"), extra)...)
	if err := lab.Connect(ns, srvAddr, payload, 10*time.Second); err != nil {
		t.Fatal(err)
	}
	return waitSeen(t, s, label)
}

func waitSeen(t *testing.T, s *lab.Server, label string) lab.Seen {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		for _, x := range s.Seen() {
			if strings.TrimSpace(x.Head) == label {
				return x
			}
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatalf("server never saw connection %q", label)
	return lab.Seen{}
}

// retx reports whether got, a counter the daemon raises once per SYN or
// SYN-ACK of want connections, lies in [want, 2*want]. On a loaded machine a
// handshake can outlast the 1 s initial RTO: the client retransmits its SYN
// (the server then its SYN-ACK) and the daemon counts it again. One such
// retransmission per connection is the most a healthy run shows; more than
// that, or fewer than want, is a bug.
func retx[T uint64 | float64](got, want T) bool { return want <= got && got <= 2*want }

// ruleset is the NAT's ruleset.
func ruleset(t *testing.T, l *lab.Lab) string { t.Helper(); return rulesetIn(t, l, l.NAT) }

// rulesetIn is namespace ns's ruleset.
func rulesetIn(t *testing.T, l *lab.Lab, ns string) string {
	t.Helper()
	r, err := l.Ruleset(ns)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// Both methods at once, two inside hosts, through the kernel's masquerade:
// each connection reaches the server with its host's HOST_ID in the RFC 7974
// option and in the IP-ID, and SIGTERM restores the ruleset exactly.
func TestTwoHostsTCPOptionAndIPID(t *testing.T) { twoHostsBothMethods(t) }

// The same after the masquerade (placement post-nat): the tag rule carries
// the inside source to the daemon, conntrack is not asked.
func TestTwoHostsPostNAT(t *testing.T) {
	st := twoHostsBothMethods(t, "--placement", "post-nat")
	if st["ct-miss"]+st["ct-error"] != 0 {
		t.Errorf("tagged packets went to conntrack: %v", st)
	}
}

func twoHostsBothMethods(t *testing.T, args ...string) map[string]uint64 {
	l := newLab(t)
	s := listen(t, l)
	before := ruleset(t, l)
	args = append([]string{"--inside", lab.InsidePrefix, "--methods", "tcp-option,ip-id", "--queue-count", "2"}, args...)
	d := startDaemon(t, l, args...)
	if !strings.Contains(ruleset(t, l), "table ip natreveal") {
		t.Fatal("natreveal table not installed")
	}

	for i, c := range []struct {
		ns   string
		want uint32
	}{{l.C1, 0x0002}, {l.C2, 0x0003}, {l.C1, 0x0002}, {l.C2, 0x0003}} {
		extra := 0
		if i >= 2 {
			extra = 1 << 20 // a 1 MiB upload: the option rides on full-sized segments
		}
		got := connect(t, s, c.ns, fmt.Sprintf("conn%d", i), extra)
		if !strings.HasPrefix(got.Src, lab.NATPublic+":") {
			t.Errorf("conn%d: server saw source %s, want the NAT's %s (masquerade)", i, got.Src, lab.NATPublic)
		}
		if !got.HasOption || got.OptionLen != 2 || got.OptionID != c.want {
			t.Errorf("conn%d from %s: HOST_ID option %v len %d id %#x, want id %#x", i, c.ns, got.HasOption, got.OptionLen, got.OptionID, c.want)
		}
		if !got.Atomic || uint32(got.IPID) != c.want {
			t.Errorf("conn%d from %s: IP-ID %#x (atomic %v), want %#x", i, c.ns, got.IPID, got.Atomic, c.want)
		}
		if got.Bytes != 16+extra {
			t.Errorf("conn%d: server received %d bytes, want %d", i, got.Bytes, 16+extra)
		}
	}

	st := d.stop(t)
	t.Logf("counters: %v", st)
	if st["tcp-option/written"] < 4 || st["ip-id/written"] < 4 {
		t.Errorf("counters %v: want at least 4 SYNs written by each method", st)
	}
	// RFC 7974 §4.2: later client segments carry the option too, until the
	// server acknowledges data; every followed flow must have ended.
	if st["tcp-option/written"] <= 4 {
		t.Errorf("only SYNs carried the option (%d); RFC 7974 §4.2 wants it until data is acknowledged", st["tcp-option/written"])
	}
	// A retransmitted SYN refreshes its flow and counts as tracked again, a
	// retransmitted SYN-ACK is lowered again; each flow ends exactly once.
	if !retx(st["flows-tracked"], 4) || st["track-done"] != 4 {
		t.Errorf("flows tracked %d, done %d: want 4 (up to 8 with SYN retransmissions) and 4", st["flows-tracked"], st["track-done"])
	}
	if !retx(st["mss-lowered"], 4) || st["tcp-option/over-mtu"] != 0 {
		t.Errorf("mss-lowered %d, over-mtu %d: want 4 (up to 8 with SYN-ACK retransmissions) and 0", st["mss-lowered"], st["tcp-option/over-mtu"])
	}
	if after := ruleset(t, l); after != before {
		t.Errorf("SIGTERM left the ruleset changed.\nbefore:\n%s\nafter:\n%s", before, after)
	}
	return st
}

// A client that writes its own HOST_ID option is overridden.
func TestForgedOptionOverridden(t *testing.T) {
	l := newLab(t)
	s := listen(t, l)
	m, err := l.NewMangler(l.C1, 77, lab.AddOption([]byte{253, 6, 0x03, 0x48, 0xde, 0xad}))
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	// Without natreveal the forgery reaches the server: the test can forge.
	if got := connect(t, s, l.C1, "forged-alone", 0); !got.HasOption || got.OptionID != 0xdead {
		t.Fatalf("the mangler did not forge: server saw %+v", got)
	}
	d := startDaemon(t, l, "--inside", lab.InsidePrefix, "--methods", "tcp-option")
	got := connect(t, s, l.C1, "forged-nat", 0)
	if !got.HasOption || got.OptionID != 0x0002 {
		t.Fatalf("forged option not overridden: server saw id %#x (present %v), want 0x0002", got.OptionID, got.HasOption)
	}
	if st := d.stop(t); st["tcp-option/written"] < 1 {
		t.Errorf("counters %v", st)
	}
}

// A SYN whose options already fill the 40 bytes still connects, unmarked by
// the option but counted; the IP-ID still carries the HOST_ID.
func TestFullOptionSpace(t *testing.T) {
	l := newLab(t)
	s := listen(t, l)
	// Linux's SYN has 20 option bytes (MSS, SACK-perm, TS, NOP, WS); add a
	// 20-byte experimental option (RFC 6994 kind 254) to fill the space.
	opt := append([]byte{254, 20, 0x12, 0x34}, make([]byte, 16)...)
	m, err := l.NewMangler(l.C1, 78, lab.AddOption(opt))
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	d := startDaemon(t, l, "--inside", lab.InsidePrefix, "--methods", "tcp-option,ip-id")
	got := connect(t, s, l.C1, "full", 0)
	if got.HasOption {
		t.Errorf("a full option space got a HOST_ID option: %+v", got)
	}
	if got.IPID != 0x0002 {
		t.Errorf("IP-ID %#x, want 0x0002", got.IPID)
	}
	st := d.stop(t)
	if st["tcp-option/no-option-space"] < 1 {
		t.Errorf("full option space not counted: %v", st)
	}
}

// SIGKILL during a stream of connections loses none of them (queue bypass);
// a new daemon replaces the leftover ruleset and works; SIGTERM then
// restores the ruleset of before.
func TestKillLosesNothing(t *testing.T) {
	l := newLab(t)
	s := listen(t, l)
	before := ruleset(t, l)
	args := []string{"--inside", lab.InsidePrefix, "--methods", "tcp-option"}
	d := startDaemon(t, l, args...)
	const n = 30
	errs := make(chan error, n)
	for i := 0; i < n; i++ {
		if i == 10 {
			// Kill only once some connections went through the daemon, so
			// that "marked before the kill" is not left to the pacing.
			waitMarked(t, s, "k", 3, 5*time.Second)
			d.Signal(syscall.SIGKILL)
		}
		ns := l.C1
		if i%2 == 1 {
			ns = l.C2
		}
		label := fmt.Sprintf("k%d", i)
		go func() {
			errs <- lab.Connect(ns, srvAddr, []byte(fmt.Sprintf("%-16s", label)), 10*time.Second)
		}()
		time.Sleep(50 * time.Millisecond)
	}
	for i := 0; i < n; i++ {
		if err := <-errs; err != nil {
			t.Error(err)
		}
	}
	marked := 0
	for i := 0; i < n; i++ {
		if waitSeen(t, s, fmt.Sprintf("k%d", i)).HasOption {
			marked++
		}
	}
	if marked == 0 || marked == n {
		t.Errorf("%d of %d connections marked: want those before the kill marked, those after not", marked, n)
	}
	<-d.Done()
	if !strings.Contains(ruleset(t, l), "table ip natreveal") {
		t.Error("SIGKILL removed the ruleset; bypass rules should stay")
	}

	d2 := startDaemon(t, l, args...)
	if got := strings.Count(ruleset(t, l), "table ip natreveal {"); got != 1 {
		t.Errorf("%d natreveal tables after restart, want 1:\n%s", got, ruleset(t, l))
	}
	if got := connect(t, s, l.C2, "after-restart", 0); got.OptionID != 0x0003 {
		t.Errorf("after restart: server saw %+v, want HOST_ID 0x0003", got)
	}
	d2.stop(t)
	if after := ruleset(t, l); after != before {
		t.Errorf("ruleset changed.\nbefore:\n%s\nafter:\n%s", before, after)
	}
}

// waitMarked waits until the server has seen at least n connections whose
// label starts with prefix and whose SYN carried the HOST_ID option.
func waitMarked(t *testing.T, s *lab.Server, prefix string, n int, timeout time.Duration) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		marked := 0
		for _, x := range s.Seen() {
			if strings.HasPrefix(strings.TrimSpace(x.Head), prefix) && x.HasOption {
				marked++
			}
		}
		if marked >= n {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("only %d marked %q connections after %v, want at least %d", marked, prefix, timeout, n)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
