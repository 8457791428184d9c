package test

import (
	"bytes"
	"fmt"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/natreveal/natreveal/lab"
	"github.com/natreveal/natreveal/method/ipoption"
)

const udpAddr = lab.ServerAddr + ":5353"

// ip-option over TCP and UDP, two inside hosts: the SYN and the first three
// datagrams of each UDP flow arrive with the RFC 4727 option carrying the
// host's HOST_ID; a standard Linux server accepts them (TCP_SAVED_SYN and
// IP_RECVOPTS show the option), later datagrams arrive without it.
func TestIPOptionTCPAndUDP(t *testing.T) {
	l := newLab(t)
	s := listen(t, l)
	u, err := lab.ListenUDP(l.Srv, udpAddr)
	if err != nil {
		t.Fatal(err)
	}
	defer u.Close()
	d := startDaemon(t, l, "--inside", lab.InsidePrefix, "--methods", "ip-option,ip-id")

	hosts := []struct {
		ns   string
		want uint32
	}{{l.C1, 0x0002}, {l.C2, 0x0003}}
	for i, h := range hosts {
		got := connect(t, s, h.ns, fmt.Sprintf("tcp%d", i), 0)
		id, n, ok := ipoption.IPOptionHostID(got.SYN, 30)
		if !ok || n != 2 || id != h.want {
			t.Errorf("TCP from %s: ip-option %v len %d id %#x, want %#x (SYN % x)", h.ns, ok, n, id, h.want, got.SYN)
		}
		if got.Bytes != 16 {
			t.Errorf("TCP from %s: %d bytes arrived, want 16", h.ns, got.Bytes)
		}
	}
	for i, h := range hosts {
		var labels []string
		for k := 0; k < 5; k++ {
			labels = append(labels, fmt.Sprintf("udp%d-%d", i, k))
		}
		if err := lab.SendUDP(h.ns, udpAddr, labels, 20*time.Millisecond); err != nil {
			t.Fatal(err)
		}
	}
	deadline := time.Now().Add(10 * time.Second)
	for len(u.Seen()) < 10 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	seen := u.Seen()
	if len(seen) != 10 {
		t.Fatalf("server received %d of 10 datagrams: %+v", len(seen), seen)
	}
	for _, dg := range seen {
		var host, k int
		fmt.Sscanf(dg.Head, "udp%d-%d", &host, &k)
		if !strings.HasPrefix(dg.Src, lab.NATPublic+":") {
			t.Errorf("%s: source %s, want the NAT's address", dg.Head, dg.Src)
		}
		id, _, ok := ipoption.HostIDFromIPOptions(dg.Options, 30)
		switch {
		case k < 3 && (!ok || id != hosts[host].want):
			t.Errorf("%s: options % x: want HOST_ID %#x", dg.Head, dg.Options, hosts[host].want)
		case k >= 3 && len(dg.Options) != 0:
			t.Errorf("%s: options % x, want none after the first 3 datagrams", dg.Head, dg.Options)
		}
	}
	st := d.stop(t)
	t.Logf("counters: %v", st)
	// 6 datagrams exactly (3 of each flow: the flow counts them, and UDP is
	// not retransmitted), and the 2 SYNs, each written again if retransmitted.
	for _, k := range []string{"ip-option/written", "ip-id/written"} {
		if got := st[k]; got < 6 || !retx(got-6, 2) {
			t.Errorf("%s %d, want 8 (2 SYNs, 3 datagrams of 2 flows; up to 10 with SYN retransmissions)", k, got)
		}
	}
}

// An inside host that writes the option type itself (IP_OPTIONS on its
// socket) does not get its value through: natreveal replaces it.
func TestForgedIPOptionReplaced(t *testing.T) {
	l := newLab(t)
	s := listen(t, l)
	forge := func(fd int) error {
		return unix.SetsockoptString(fd, unix.IPPROTO_IP, unix.IP_OPTIONS, string([]byte{30, 4, 0xde, 0xad}))
	}
	if err := lab.ConnectWith(l.C1, srvAddr, []byte(fmt.Sprintf("%-16s", "forged-alone")), 10*time.Second, forge); err != nil {
		t.Fatal(err)
	}
	if id, _, ok := ipoption.IPOptionHostID(waitSeen(t, s, "forged-alone").SYN, 30); !ok || id != 0xdead {
		t.Fatalf("without natreveal the forged option did not arrive (%#x %v): the test cannot forge", id, ok)
	}
	d := startDaemon(t, l, "--inside", lab.InsidePrefix, "--methods", "ip-option")
	if err := lab.ConnectWith(l.C1, srvAddr, []byte(fmt.Sprintf("%-16s", "forged-nat")), 10*time.Second, forge); err != nil {
		t.Fatal(err)
	}
	got := waitSeen(t, s, "forged-nat")
	if id, _, ok := ipoption.IPOptionHostID(got.SYN, 30); !ok || id != 0x0002 {
		t.Errorf("forged ip-option: server saw %#x %v, want 0x0002", id, ok)
	}
	if n := bytes.Count(got.SYN[20:(got.SYN[0]&0x0f)*4], []byte{30, 4}); n != 1 {
		t.Errorf("%d options of type 30 in the SYN's header % x, want exactly 1", n, got.SYN[:(got.SYN[0]&0x0f)*4])
	}
	if st := d.stop(t); !retx(st["ip-option/written"], 1) {
		t.Errorf("counters %v: want ip-option/written 1 (2 with a SYN retransmission)", st)
	}
}
