package test

// What TestHAPairFailover waits on instead of fixed sleeps: the state the
// takeover needs, read where it lives (n1's conntrack table, n2's conntrackd
// external cache, n2's conntrack table after the commit, the notify
// script's record of keepalived's transitions).

import (
	"fmt"
	"net/netip"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	ct "github.com/ti-mo/conntrack"

	"github.com/natreveal/natreveal/lab"
)

// haSelectBit is the ct mark bit of selected flows (marks.select's default,
// which the HA configuration keeps).
const haSelectBit = 0x40000

// haCT is what the test reads of one TCP conntrack entry.
type haCT struct {
	mark   uint32
	seqAdj bool   // IPS_SEQ_ADJUST with a client-side offset: handed to the kernel
	helper string // the conntrack helper: none once the SYN-ACK took the seqadj carrier off
}

// haCTKey names a TCP flow by its original source and destination port.
func haCTKey(src netip.AddrPort, dport uint16) string {
	return fmt.Sprintf("%s>%d", src, dport)
}

// kernelCT dumps the TCP entries of ns's conntrack table.
func kernelCT(ns string) (map[string]haCT, error) {
	var flows []ct.Flow
	err := lab.Do(ns, func() error {
		c, err := ct.Dial(nil)
		if err != nil {
			return err
		}
		defer c.Close()
		flows, err = c.Dump(nil)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("conntrack dump in %s: %w", ns, err)
	}
	m := map[string]haCT{}
	for _, f := range flows {
		o := f.TupleOrig
		if o.Proto.Protocol != 6 {
			continue
		}
		m[haCTKey(netip.AddrPortFrom(o.IP.SourceAddress, o.Proto.SourcePort), o.Proto.DestinationPort)] = haCT{
			mark:   f.Mark,
			seqAdj: f.Status.SeqAdjust() && f.SeqAdjOrig.OffsetAfter != 0,
			helper: f.Helper.Name,
		}
	}
	return m, nil
}

// externalCT reads the TCP entries of node n's conntrackd external cache
// (`conntrackd -e`: "tcp 6 ESTABLISHED src=A dst=B sport=P dport=Q ...
// mark=M ..."; the first src/sport/dport are the original tuple's). Its text
// has no sequence adjustment: conntrackd forwards it with the ct mark
// (ctnetlink reports both in the event of natreveal's update), so a proxy
// flow's cleared select bit there stands for both.
func (h *haLab) externalCT(n *haNode) (map[string]haCT, error) {
	out, err := h.ctdClient(n, "-e")
	if err != nil {
		return nil, err
	}
	m, err := parseExternalCT(out)
	if err != nil {
		return nil, fmt.Errorf("%s: conntrackd -e: %w", n.name, err)
	}
	return m, nil
}

// parseExternalCT parses the TCP entries of `conntrackd -e`.
func parseExternalCT(out string) (map[string]haCT, error) {
	m := map[string]haCT{}
	for _, ln := range strings.Split(out, "\n") {
		f := strings.Fields(ln)
		if len(f) == 0 || f[0] != "tcp" {
			continue
		}
		attr := map[string]string{}
		for _, kv := range f {
			if k, v, ok := strings.Cut(kv, "="); ok {
				if _, dup := attr[k]; !dup {
					attr[k] = v
				}
			}
		}
		src, err1 := netip.ParseAddr(attr["src"])
		sport, err2 := strconv.ParseUint(attr["sport"], 10, 16)
		dport, err3 := strconv.ParseUint(attr["dport"], 10, 16)
		if err1 != nil || err2 != nil || err3 != nil {
			continue
		}
		var c haCT
		if v, ok := attr["mark"]; ok {
			mark, err := strconv.ParseUint(v, 10, 32)
			if err != nil {
				return nil, fmt.Errorf("%q: %w", ln, err)
			}
			c.mark = uint32(mark)
		}
		m[haCTKey(netip.AddrPortFrom(src, uint16(sport)), uint16(dport))] = c
	}
	return m, nil
}

// ctdClient runs conntrackd's client against node n's daemon.
func (h *haLab) ctdClient(n *haNode, args ...string) (string, error) {
	out, err := (&lab.Lab{}).Exec(n.ns, append([]string{h.ctdBin, "-C", n.ctdConf}, args...)...)
	if err != nil {
		return "", fmt.Errorf("%s: %w", n.name, err)
	}
	return out, nil
}

func TestParseExternalCT(t *testing.T) {
	out := "tcp      6 ESTABLISHED src=100.64.0.2 dst=198.51.100.1 sport=35690 dport=7000 src=198.51.100.1 dst=192.0.2.1 sport=7000 dport=4361 [ASSURED] mark=131072 helper=ftp [active since 3s]\n" +
		"udp      17 src=100.64.0.3 dst=198.51.100.1 sport=40000 dport=9003 mark=65536 [active since 1s]\n" +
		"tcp      6 ESTABLISHED src=100.64.0.3 dst=198.51.100.1 sport=51000 dport=9000 [ASSURED] [active since 2s]\n"
	m, err := parseExternalCT(out)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]haCT{
		"100.64.0.2:35690>7000": {mark: 0x20000},
		"100.64.0.3:51000>9000": {},
	}
	if len(m) != len(want) {
		t.Fatalf("got %v, want %v", m, want)
	}
	for k, w := range want {
		if got, ok := m[k]; !ok || got != w {
			t.Errorf("%s: got %+v (%v), want %+v", k, got, ok, w)
		}
	}
	if _, err := parseExternalCT("tcp 6 src=1.2.3.4 dst=5.6.7.8 sport=1 dport=2 mark=x\n"); err == nil {
		t.Error("a mark that is no number parsed")
	}
}

// haDport is the server port of a long-lived TCP flow kind.
func haDport(kind string) uint16 {
	switch kind {
	case "syn-methods":
		return 9000
	case "proxy-protocol":
		return 7000
	case "http-header":
		return 80
	}
	return 0
}

// ctKey is the conntrack key of TCP flow f ("" for UDP or a flow without
// a socket).
func (f *haFlow) ctKey() string {
	src, err := netip.ParseAddrPort(f.local)
	if err != nil || haDport(f.kind) == 0 {
		return ""
	}
	return haCTKey(src, haDport(f.kind))
}

// waitUntil polls check until it reports nothing left to wait for, and
// fails the test with check's last answer after within.
func waitUntil(t *testing.T, what string, within time.Duration, check func() string) time.Duration {
	t.Helper()
	start := time.Now()
	for {
		left := check()
		if left == "" {
			return time.Since(start)
		}
		if time.Since(start) > within {
			t.Fatalf("%s: not after %v: %s", what, within, left)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// waitNotified waits until the notify script recorded state for node n
// after since (it appends "<unix time> <state>" once its conntrackd
// commands ran).
func (h *haLab) waitNotified(t *testing.T, n *haNode, state string, since time.Time, within time.Duration) {
	t.Helper()
	waitUntil(t, fmt.Sprintf("%s notified %s", n.name, state), within, func() string {
		b, _ := os.ReadFile(n.ctdConf + ".states")
		for _, ln := range strings.Split(string(b), "\n") {
			at, st, ok := strings.Cut(ln, " ")
			sec, err := strconv.ParseFloat(at, 64)
			if ok && err == nil && st == state && sec >= float64(since.UnixNano())/1e9 {
				return ""
			}
		}
		return fmt.Sprintf("not since %s: %q", since.Format(time.RFC3339Nano), b)
	})
}

// synced reports what keeps the flows from being ready for a failover of
// active to backup, "" when nothing does: every flow exchanged at least 3
// rounds checked whole; the TCP flows expected to survive (syn-methods,
// proxy-protocol) are in the backup's external cache with the ct mark they
// have on the active node, proxy-protocol flows handed to the kernel there
// (sequence adjustment set, select bit clear); http-header flows are in
// the external cache with their select bit, so that the backup knows them
// for selected flows (and resets them) rather than dropping their packets
// as invalid.
func (h *haLab) synced(flows []*haFlow, active, backup *haNode) string {
	var left []string
	for _, f := range flows {
		if r := f.rounds.Load(); r < 3 {
			left = append(left, fmt.Sprintf("%s flow %s: %d rounds", f.kind, f.local, r))
		}
	}
	if len(left) > 0 {
		return strings.Join(left, "; ")
	}
	kern, err := kernelCT(active.ns)
	if err != nil {
		return err.Error()
	}
	ext, err := h.externalCT(backup)
	if err != nil {
		return err.Error()
	}
	for _, f := range flows {
		k := f.ctKey()
		if k == "" {
			continue
		}
		a, okA := kern[k]
		b, okB := ext[k]
		switch {
		case !okA:
			left = append(left, fmt.Sprintf("%s flow %s: not in %s's conntrack table", f.kind, k, active.name))
		case !okB:
			left = append(left, fmt.Sprintf("%s flow %s: not in %s's external cache", f.kind, k, backup.name))
		case f.kind == "http-header":
			if b.mark&haSelectBit == 0 {
				left = append(left, fmt.Sprintf("http-header flow %s: mark %#x in %s's external cache", k, b.mark, backup.name))
			}
		case f.kind == "proxy-protocol" && (!a.seqAdj || a.mark&haSelectBit != 0):
			left = append(left, fmt.Sprintf("proxy-protocol flow %s: not handed to the kernel on %s (mark %#x, seqadj %v)", k, active.name, a.mark, a.seqAdj))
		case a.mark != b.mark:
			left = append(left, fmt.Sprintf("%s flow %s: mark %#x on %s, %#x in %s's external cache", f.kind, k, a.mark, active.name, b.mark, backup.name))
		}
	}
	return strings.Join(left, "; ")
}

// committed reports which surviving TCP flows the new master's conntrack
// table lacks or holds with other state than the old master had (want,
// read by synced's caller before the failure), "" when none.
func committed(flows []*haFlow, n *haNode, want map[string]haCT) string {
	kern, err := kernelCT(n.ns)
	if err != nil {
		return err.Error()
	}
	var left []string
	for _, f := range flows {
		if f.kind != "syn-methods" && f.kind != "proxy-protocol" {
			continue
		}
		k := f.ctKey()
		got, ok := kern[k]
		if !ok {
			left = append(left, fmt.Sprintf("%s flow %s: not in %s's conntrack table", f.kind, k, n.name))
		} else if w := want[k]; got != w {
			left = append(left, fmt.Sprintf("%s flow %s: %+v on %s, %+v before the failure", f.kind, k, got, n.name, w))
		}
	}
	return strings.Join(left, "; ")
}
