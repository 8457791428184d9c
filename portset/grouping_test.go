package portset

import (
	"fmt"
	"strings"
	"testing"
)

func TestGroupingContiguous(t *testing.T) {
	g, err := NewGrouping(64, nil)
	if err != nil {
		t.Fatal(err)
	}
	if s := g.SetOf(1000); s != (Set{First: 960, Width: 64}) {
		t.Fatalf("SetOf(1000) = %v", s)
	}
	// Narrow twice: 1000 ends in [992,1008); its old neighbours keep 64.
	g.Narrow(1000)
	if s := g.Narrow(1000); s != (Set{First: 992, Width: 16}) {
		t.Fatalf("narrowed twice: %v", s)
	}
	if s := g.SetOf(960); s != (Set{First: 960, Width: 32}) {
		t.Errorf("SetOf(960) after narrowing 1000 = %v", s)
	}
	if s := g.SetOf(1024); s != (Set{First: 1024, Width: 64}) {
		t.Errorf("SetOf(1024) = %v", s)
	}
	// Widening past the default merges the split buddies and the neighbour.
	g.Widen(1000)
	g.Widen(1000)
	if s := g.Widen(1000); s != (Set{First: 896, Width: 128}) {
		t.Errorf("widened three times: %v", s)
	}
	if s := g.SetOf(960); s != (Set{First: 896, Width: 128}) {
		t.Errorf("SetOf(960) after widening = %v", s)
	}
	if p := g.Ports(Set{First: 10, Width: 3}); fmt.Sprint(p) != "[10 11 12]" {
		t.Errorf("Ports = %v", p)
	}
	for _, w := range []int{0, 3, 65537, -8} {
		if _, err := NewGrouping(w, nil); err == nil {
			t.Errorf("width %d accepted", w)
		}
	}
	one, _ := NewGrouping(1, nil)
	if s := one.Narrow(5); s != (Set{First: 5, Width: 1}) {
		t.Errorf("narrowing a one-port set: %v", s)
	}
	all, _ := NewGrouping(65536, nil)
	if s := all.Widen(5); s != (Set{First: 0, Width: 65536}) {
		t.Errorf("widening the whole space: %v", s)
	}
}

func TestGroupingKeyedIsAPartition(t *testing.T) {
	g, err := NewGrouping(32, keyFromUint64(7))
	if err != nil {
		t.Fatal(err)
	}
	seen := make([]bool, 65536)
	for pos := 0; pos < 65536; pos++ {
		p := g.port(uint16(pos))
		if seen[p] {
			t.Fatalf("port %d twice: not a permutation", p)
		}
		seen[p] = true
		if g.position(p) != uint16(pos) {
			t.Fatalf("position(port(%d)) = %d", pos, g.position(p))
		}
	}
	s := g.SetOf(40000)
	ports := g.Ports(s)
	if len(ports) != 32 {
		t.Fatalf("set %v has %d ports", s, len(ports))
	}
	contiguous := true
	for i, p := range ports {
		if g.SetOf(p) != s {
			t.Fatalf("port %d of set %v is in %v", p, s, g.SetOf(p))
		}
		if i > 0 && p != ports[i-1]+1 {
			contiguous = false
		}
	}
	if contiguous {
		t.Errorf("keyed set %v is a contiguous run: %v", s, ports)
	}
	h, _ := NewGrouping(32, keyFromUint64(8))
	if fmt.Sprint(h.Ports(h.SetOf(40000))) == fmt.Sprint(ports) {
		t.Errorf("two keys, one partition")
	}
}

// trace is a synthetic NAT port trace with a known truth: hosts behind one
// public address, conns connections each.
type trace struct {
	name  string
	conns []Conn
}

// rfc7422Trace: each host draws its ports at random inside its own block
// (block ports from 1024, sequential), as a deterministic NAT does.
func rfc7422Trace(hosts, perHost, block int, r *Rand) trace {
	var cs []Conn
	for h := range hosts {
		for range perHost {
			cs = append(cs, Conn{Host: h, Port: uint16(1024 + h*block + r.Intn(block))})
		}
	}
	return trace{fmt.Sprintf("RFC 7422 blocks of %d", block), cs}
}

// randomTrace: every connection gets a uniformly random port in
// 1024-65535, like Linux masquerade with random port selection (RFC 6056).
func randomTrace(hosts, perHost int, r *Rand) trace {
	var cs []Conn
	for h := range hosts {
		for range perHost {
			cs = append(cs, Conn{Host: h, Port: uint16(1024 + r.Intn(64512))})
		}
	}
	return trace{fmt.Sprintf("random, %d hosts x %d", hosts, perHost), cs}
}

// The analysis's widths (draft-boucadair-intarea-nat-reveal-analysis §3.6.1) (8, 32, 64, 512, 1024) and more, on synthetic traces:
// how often a host shares a set with another host and how often one host's
// connections are split over several sets. Wider sets share more and split
// less (the sets are nested: each width's sets are unions of the narrower
// ones), and on RFC 7422 blocks the block size itself is exact.
func TestGroupingOnTraces(t *testing.T) {
	r := NewRand(1)
	traces := []trace{
		rfc7422Trace(60, 20, 1024, r),
		rfc7422Trace(250, 8, 256, r),
		randomTrace(60, 20, r),
		randomTrace(10, 4, r),
	}
	widths := []int{8, 32, 64, 256, 512, 1024, 4096, 16384, 65536}
	var b strings.Builder
	fmt.Fprintf(&b, "\n%-24s %-10s %6s %9s %9s\n", "trace", "grouping", "width", "shared", "split")
	for _, tr := range traces {
		for _, keyed := range []bool{false, true} {
			kind := "contiguous"
			var key []byte
			if keyed {
				kind, key = "keyed", keyFromUint64(42)
			}
			prev := TraceStats{Shared: -1, Split: 2}
			for _, w := range widths {
				g, err := NewGrouping(w, key)
				if err != nil {
					t.Fatal(err)
				}
				st := Measure(g, tr.conns)
				fmt.Fprintf(&b, "%-24s %-10s %6d %8.1f%% %8.1f%%\n", tr.name, kind, w, 100*st.Shared, 100*st.Split)
				if st.Shared < prev.Shared || st.Split > prev.Split {
					t.Errorf("%s, %s, width %d: shared %.3f split %.3f after %.3f %.3f: not monotonic",
						tr.name, kind, w, st.Shared, st.Split, prev.Shared, prev.Split)
				}
				prev = st
			}
		}
	}
	t.Log(b.String())

	// Known truth: contiguous sets as wide as aligned RFC 7422 blocks are
	// the hosts exactly.
	for _, c := range []struct {
		tr    trace
		width int
	}{{traces[0], 1024}, {traces[1], 256}} {
		g, _ := NewGrouping(c.width, nil)
		if st := Measure(g, c.tr.conns); st.Shared != 0 || st.Split != 0 {
			t.Errorf("%s, width %d: %+v, want no sharing and no split", c.tr.name, c.width, st)
		}
	}
	// Random ports: nothing groups well; narrow sets split almost every
	// host, the widest share almost every host.
	g8, _ := NewGrouping(8, nil)
	g4k, _ := NewGrouping(4096, nil)
	if st := Measure(g8, traces[2].conns); st.Split < 0.9 {
		t.Errorf("random ports, width 8: split %.2f, want nearly all", st.Split)
	}
	if st := Measure(g4k, traces[2].conns); st.Shared < 0.9 {
		t.Errorf("random ports, width 4096: shared %.2f, want nearly all", st.Shared)
	}
}

// Narrowing the set of a misbehaving host spares innocent hosts that shared
// it; widening back restores the set.
func TestNarrowSparesNeighbours(t *testing.T) {
	r := NewRand(3)
	tr := rfc7422Trace(64, 10, 256, r) // blocks of 256
	g, _ := NewGrouping(1024, nil)     // too wide: 4 hosts per set
	bad := tr.conns[5*10]              // host 5
	sharing := func() int {
		n := map[int]bool{}
		s := g.SetOf(bad.Port)
		for _, c := range tr.conns {
			if g.SetOf(c.Port) == s {
				n[c.Host] = true
			}
		}
		return len(n)
	}
	if n := sharing(); n != 4 {
		t.Fatalf("hosts in the misbehaving set: %d, want 4", n)
	}
	g.Narrow(bad.Port)
	g.Narrow(bad.Port)
	if n := sharing(); n != 1 {
		t.Errorf("after narrowing twice: %d hosts in the set, want 1", n)
	}
	g.Widen(bad.Port)
	g.Widen(bad.Port)
	if n := sharing(); n != 4 {
		t.Errorf("after widening back: %d hosts, want 4", n)
	}
}
