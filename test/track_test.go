package test

import (
	"io"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/natreveal/natreveal/lab"
)

// ctAcct reads nf_conntrack_acct in the NAT namespace.
func ctAcct(t *testing.T, l *lab.Lab) string {
	t.Helper()
	out, err := l.Exec(l.NAT, "sysctl", "-n", "net.netfilter.nf_conntrack_acct")
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(out)
}

// tcp_option.max_segments bounds a flow whose server never shows itself
// established (RFC 7974 §4.2): the server's ACKs are dropped before they
// leave it, so the client keeps sending and retransmitting, and the ruleset
// ends the flow once conntrack counted the SYN and max_segments more
// (`ct original packets`, with nf_conntrack_acct that the daemon sets for
// the run and restores).
func TestMaxSegmentsBoundInKernel(t *testing.T) {
	l := newLab(t)
	if v := ctAcct(t, l); v != "0" {
		t.Fatalf("nf_conntrack_acct is %s before the run, want the default 0", v)
	}
	if err := l.Nft(l.Srv, `table ip mute {
	chain out {
		type filter hook output priority filter; policy accept;
		tcp sport 9998 tcp flags & (syn | ack) != syn | ack drop
	}
}`); err != nil {
		t.Fatal(err)
	}
	var ln net.Listener
	if err := lab.Do(l.Srv, func() (err error) { ln, err = net.Listen("tcp4", lab.ServerAddr+":9998"); return }); err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() { io.Copy(io.Discard, c); c.Close() }()
		}
	}()
	d := startDaemon(t, l, "--config", writeConfig(t, "inside: ["+lab.InsidePrefix+"]\nmethods: [tcp-option]\ntcp_option:\n  max_segments: 2\n"))
	if v := ctAcct(t, l); v != "1" {
		t.Errorf("nf_conntrack_acct is %s while the daemon runs, want 1", v)
	}
	var c net.Conn
	if err := lab.Do(l.C1, func() (err error) { c, err = net.DialTimeout("tcp4", lab.ServerAddr+":9998", 10*time.Second); return }); err != nil {
		t.Fatal(err)
	}
	// Three small segments (no Nagle: each write is one packet), then
	// their retransmissions (200 ms, 400 ms, ...). conntrack counts
	// packets as the stack hands them over: a GSO packet of several
	// segments counts once.
	for range 3 {
		if _, err := c.Write(make([]byte, 100)); err != nil {
			t.Fatal(err)
		}
		time.Sleep(50 * time.Millisecond)
	}
	time.Sleep(1500 * time.Millisecond)
	c.(*net.TCPConn).SetLinger(0)
	c.Close()
	st := d.stop(t)
	t.Logf("counters: %v", st)
	// The SYN (a retransmitted SYN takes a segment's place in the count)
	// and max_segments segments carry the option; one flow ended.
	if st["tcp-option/written"] != 3 || st["track-done"] != 1 || st["flows-tracked"] < 1 {
		t.Errorf("option written %d, flows done %d, tracked %d: want 3, 1, >= 1 (%v)",
			st["tcp-option/written"], st["track-done"], st["flows-tracked"], st)
	}
	if v := ctAcct(t, l); v != "0" {
		t.Errorf("nf_conntrack_acct is %s after the run, want 0 restored", v)
	}
}
