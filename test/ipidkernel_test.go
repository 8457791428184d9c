package test

import (
	"fmt"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/natreveal/natreveal/lab"
)

// ip-id in the kernel (ip_id.kernel): the daemon learns each inside host
// from its first queued SYN and adds it to the nft map; from then on the
// kernel writes the IP-ID (with a valid header checksum: the server's
// kernel drops bad ones) and that host's SYNs no longer reach the daemon.
// A reload starts an empty map and the hosts are learned again.
func TestIPIDKernel(t *testing.T) {
	l := newLab(t)
	s := listen(t, l)
	before := ruleset(t, l)
	d := startDaemonEnv(t, l, []string{"NATREVEAL_IP_ID_UDP_PACKETS=0"},
		"--inside", lab.InsidePrefix, "--methods", "ip-id", "--ip-id-kernel")
	rs := ruleset(t, l)
	for _, want := range []string{
		"map hostid {\n\t\ttypeof ip saddr : ip id\n\t\tsize 65536\n\t\ttimeout 1h\n",
		"tcp flags syn / fin,syn,rst,ack ip frag-off & 32767 == 16384 ip id set ip saddr map @hostid\n",
		"ip saddr @inside goto from_inside\n",
		"\t\tip saddr != @hostid tcp flags syn / fin,syn,rst,ack queue",
	} {
		if !strings.Contains(rs, want) {
			t.Fatalf("ruleset lacks %q:\n%s", want, rs)
		}
	}
	hosts := []struct {
		ns   string
		want uint16
	}{{l.C1, 0x0002}, {l.C2, 0x0003}}

	round := func(name string, n int) {
		t.Helper()
		for i := 0; i < n; i++ {
			for _, h := range hosts {
				label := fmt.Sprintf("%s-%s-%d", name, h.ns[len(h.ns)-2:], i)
				got := connect(t, s, h.ns, label, 0)
				if !got.Atomic || got.IPID != h.want {
					t.Errorf("%s: IP-ID %#04x (atomic %v), want %#04x", label, got.IPID, got.Atomic, h.want)
				}
			}
		}
	}
	waitMap := func() {
		t.Helper()
		waitHostIDMap(t, l, hosts[0].want, hosts[1].want)
	}
	queued := func() uint64 {
		t.Helper()
		out, err := l.Exec(l.NAT, "cat", "/proc/net/netfilter/nfnetlink_queue")
		if err != nil {
			t.Fatal(err)
		}
		var sum uint64
		for _, line := range strings.Split(out, "\n") {
			f := strings.Fields(line)
			if len(f) >= 8 {
				var v uint64
				fmt.Sscan(f[7], &v) // id_sequence: packets queued so far
				sum += v
			}
		}
		return sum
	}

	// The first SYN of each host goes to the daemon, which writes its IP-ID
	// and learns the host.
	round("first", 1)
	waitMap()
	q0 := queued()
	// Then the kernel alone.
	round("kn", 10)
	if q := queued(); q != q0 {
		t.Errorf("SYNs of known hosts were queued: %d packets after learning, was %d", q, q0)
	}

	// A reload replaces the table: an empty map, hosts learned again.
	d.Signal(syscall.SIGHUP)
	d.waitLog(t, "reloaded:", 1)
	round("re", 1)
	waitMap()
	q1 := queued()
	round("rk", 5)
	if q := queued(); q != q1 {
		t.Errorf("after the reload, SYNs of known hosts were queued: %d packets, was %d", q, q1)
	}

	st := d.stop(t)
	t.Logf("counters: %v", st)
	// The first SYN of each host, twice. A retransmission of one of them
	// before its host was in the map is queued, written and (once the
	// learner's 1 s retry interval has passed) learned again.
	if !retx(st["packets"], 4) || !retx(st["ip-id/written"], 4) || !retx(st["ip-id-kernel/learned"], 4) {
		t.Errorf("counters %v: want 4 packets queued and written (the first SYN of each host, twice), 4 learned; up to 8 with SYN retransmissions", st)
	}
	if after := ruleset(t, l); after != before {
		t.Errorf("SIGTERM left the ruleset changed.\nbefore:\n%s\nafter:\n%s", before, after)
	}
}

// Beside tcp-option every SYN is still queued (the option is written in
// user space); the kernel has already written the IP-ID of known hosts and
// the handler leaves it (counted as by-kernel).
func TestIPIDKernelWithTCPOption(t *testing.T) {
	l := newLab(t)
	s := listen(t, l)
	d := startDaemon(t, l, "--inside", lab.InsidePrefix, "--methods", "tcp-option,ip-id", "--ip-id-kernel")
	if rs := ruleset(t, l); !strings.Contains(rs, "\t\ttcp flags syn / fin,syn,rst,ack queue") {
		t.Fatalf("SYN rule should queue every inside SYN:\n%s", rs)
	}
	for i := 0; i < 6; i++ {
		got := connect(t, s, l.C1, fmt.Sprintf("both%d", i), 0)
		if !got.Atomic || got.IPID != 0x0002 || !got.HasOption || got.OptionID != 0x0002 {
			t.Errorf("conn %d: IP-ID %#04x (atomic %v), option %v %#04x; want 0x0002 in both", i, got.IPID, got.Atomic, got.HasOption, got.OptionID)
		}
		if i == 0 {
			waitHostIDMap(t, l, 0x0002) // the learner added the host: later SYNs are the kernel's
		}
	}
	st := d.stop(t)
	t.Logf("counters: %v", st)
	if st["ip-id-kernel/learned"] < 1 || st["ip-id-kernel/by-kernel"] < 4 || st["tcp-option/written"] < 6 {
		t.Errorf("counters %v: want the host learned, later SYNs written by the kernel", st)
	}
}

// waitHostIDMap waits (10 s) until the in-kernel ip-id map of the NAT holds
// exactly len(ids) hosts, and then requires those HOST_IDs among them.
func waitHostIDMap(t *testing.T, l *lab.Lab, ids ...uint16) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		out, _ := l.Exec(l.NAT, "nft", "list", "map", "ip", "natreveal", "hostid")
		if strings.Count(out, " expires ") == len(ids) {
			for _, id := range ids {
				if !strings.Contains(out, fmt.Sprintf(" : %d", id)) {
					t.Fatalf("map lacks HOST_ID %d:\n%s", id, out)
				}
			}
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("map never held %d hosts:\n%s", len(ids), out)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
