package test

import (
	"bytes"
	"fmt"
	"net"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/natreveal/natreveal/lab"
)

var srvAddr6 = net.JoinHostPort(lab.ServerAddr6, "8080")

// IPv6 through NAT66: two inside hosts, tcp-option and dest-opt together.
// The server sees the NAT's public IPv6 address, the RFC 7974 option and the
// Destination Option, both with the host's lower16 HOST_ID; a 1 MiB upload
// arrives whole; SIGTERM removes both tables.
func TestIPv6TCPOptionAndDestOpt(t *testing.T) {
	l := newLab(t)
	s, err := lab.Listen(l.Srv, srvAddr6)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	before := ruleset(t, l)

	// Without natreveal the lab's NAT66 works and nothing is marked.
	if err := lab.Connect(l.C1, srvAddr6, []byte(fmt.Sprintf("%-16s", "plain6")), 10*time.Second); err != nil {
		t.Fatal(err)
	}
	if got := waitSeen(t, s, "plain6"); !strings.HasPrefix(got.Src, "["+lab.NATPublic6+"]:") || got.HasOption || got.HasDstOpt {
		t.Fatalf("without natreveal: server saw %+v", got)
	}

	d := startDaemon(t, l, "--inside", lab.InsidePrefix+","+lab.InsidePrefix6, "--methods", "tcp-option,dest-opt")
	rs := ruleset(t, l)
	if !strings.Contains(rs, "table ip natreveal") || !strings.Contains(rs, "table ip6 natreveal") {
		t.Fatalf("natreveal tables not installed:\n%s", rs)
	}
	for i, c := range []struct {
		ns   string
		want uint32
	}{{l.C1, 0x0002}, {l.C2, 0x0003}, {l.C1, 0x0002}, {l.C2, 0x0003}} {
		extra := 0
		if i >= 2 {
			extra = 1 << 20
		}
		label := fmt.Sprintf("v6conn%d", i)
		payload := append([]byte(fmt.Sprintf("%-16s", label)), bytes.Repeat([]byte("x"), extra)...)
		if err := lab.Connect(c.ns, srvAddr6, payload, 20*time.Second); err != nil {
			t.Fatalf("%s: %v\n%s", label, err, d.Output())
		}
		got := waitSeen(t, s, label)
		if !strings.HasPrefix(got.Src, "["+lab.NATPublic6+"]:") {
			t.Errorf("%s: server saw source %s, want the NAT's %s (NAT66 masquerade)", label, got.Src, lab.NATPublic6)
		}
		if !got.HasOption || got.OptionLen != 2 || got.OptionID != c.want {
			t.Errorf("%s: HOST_ID option %v len %d id %#x, want %#x", label, got.HasOption, got.OptionLen, got.OptionID, c.want)
		}
		if !got.HasDstOpt || got.DstOptLen != 2 || got.DstOptID != c.want {
			t.Errorf("%s: Destination Option %v len %d id %#x, want %#x (saved SYN % x)", label, got.HasDstOpt, got.DstOptLen, got.DstOptID, c.want, got.SYN)
		}
		if got.Bytes != 16+extra {
			t.Errorf("%s: server received %d bytes, want %d", label, got.Bytes, 16+extra)
		}
	}
	st := d.stop(t)
	t.Logf("counters: %v", st)
	// The Destination Option goes on SYNs only: a retransmitted SYN gets it
	// again, and is tracked again; a retransmitted SYN-ACK is lowered again.
	// Each flow ends exactly once.
	if !retx(st["dest-opt/written"], 4) || st["tcp-option/written"] <= 4 {
		t.Errorf("counters %v: want 4 Destination Options (up to 8 with SYN retransmissions) and more than 4 TCP options (RFC 7974 §4.2)", st)
	}
	if !retx(st["flows-tracked"], 4) || st["track-done"] != 4 || !retx(st["mss-lowered"], 4) {
		t.Errorf("counters %v: want 4 flows tracked, done, MSS lowered (tracked and lowered up to 8 with retransmissions)", st)
	}
	if after := ruleset(t, l); after != before {
		t.Errorf("SIGTERM left the ruleset changed.\nbefore:\n%s\nafter:\n%s", before, after)
	}
}

// post-nat cannot carry an IPv6 source in the 32-bit mark: refused at
// configuration time with one line and exit 2.
func TestIPv6PostNATRefused(t *testing.T) {
	out, err := exec.Command(binary, "rules", "print", "--inside", lab.InsidePrefix6, "--methods", "tcp-option",
		"--placement", "post-nat").CombinedOutput()
	ee, ok := err.(*exec.ExitError)
	if !ok || ee.ExitCode() != 2 || strings.Count(strings.TrimSpace(string(out)), "\n") != 0 ||
		!strings.Contains(string(out), "placement") {
		t.Fatalf("exit %v, output %q: want exit 2 and one line naming placement", err, out)
	}
}
