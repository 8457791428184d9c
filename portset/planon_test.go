package portset

import (
	"net/netip"
	"testing"
)

// Two active NATs, one policy over both boxes' addresses: each box's part
// of the plan is disjoint from the other's, together they are the plan, and
// Lookup names the host behind a port of either box.
func TestPlanOnTwoBoxes(t *testing.T) {
	a, b := netip.MustParseAddr("192.0.2.11"), netip.MustParseAddr("192.0.2.12")
	for _, asg := range []Assignment{Sequential, Staggered} {
		p, err := Policy{Inside: []netip.Prefix{netip.MustParsePrefix("100.64.0.0/24")},
			Public: []netip.Addr{a, b}, BlockSize: 256, Assignment: asg}.Normalize()
		if err != nil {
			t.Fatal(err)
		}
		onA, err := p.PlanOn([]netip.Addr{a})
		if err != nil {
			t.Fatal(err)
		}
		onB, err := p.PlanOn([]netip.Addr{b})
		if err != nil {
			t.Fatal(err)
		}
		if len(onA)+len(onB) != len(p.Plan()) || len(onA) != 127 {
			t.Fatalf("%s: %d + %d blocks, plan %d", asg, len(onA), len(onB), len(p.Plan()))
		}
		hosts := map[netip.Addr]bool{}
		for box, blocks := range [][]Block{onA, onB} {
			want := []netip.Addr{a, b}[box]
			for _, bl := range blocks {
				if bl.Public != want || hosts[bl.Inside] {
					t.Fatalf("%s: box %d block %+v: another box's address or a host twice", asg, box, bl)
				}
				hosts[bl.Inside] = true
				for _, port := range []uint16{bl.Ports.First, bl.Ports.Last} {
					if in, ok := p.Lookup(netip.AddrPortFrom(bl.Public, port)); !ok || in != bl.Inside {
						t.Fatalf("%s: lookup %v:%d = %v %v, want %v", asg, bl.Public, port, in, ok, bl.Inside)
					}
				}
			}
		}
		// Sequential fills the first address first: the lower half of the
		// /24 is box a's, the upper half box b's (a split of the prefix).
		if asg == Sequential && (onA[len(onA)-1].Inside.String() != "100.64.0.127" || onB[0].Inside.String() != "100.64.0.128") {
			t.Errorf("sequential: box a ends at %v, box b starts at %v", onA[len(onA)-1].Inside, onB[0].Inside)
		}
		if all, err := p.PlanOn(nil); err != nil || len(all) != len(p.Plan()) {
			t.Errorf("%s: PlanOn(nil): %d blocks, %v", asg, len(all), err)
		}
	}
	p, _ := Policy{Inside: []netip.Prefix{netip.MustParsePrefix("100.64.0.0/28")},
		Public: []netip.Addr{a, b}, BlockSize: 256}.Normalize()
	for _, own := range [][]netip.Addr{
		{netip.MustParseAddr("192.0.2.13")}, // not the policy's
		{a, a},                              // twice
	} {
		if _, err := p.PlanOn(own); err == nil {
			t.Errorf("PlanOn(%v): no error", own)
		}
	}
	// 14 hosts, C = 7: both addresses have blocks; with ratio 14 all hosts
	// are on a and b has none.
	q, _ := Policy{Inside: []netip.Prefix{netip.MustParsePrefix("100.64.0.0/28")},
		Public: []netip.Addr{a, b}, BlockSize: 256, Ratio: 14}.Normalize()
	if _, err := q.PlanOn([]netip.Addr{b}); err == nil {
		t.Errorf("PlanOn on an address without blocks: no error")
	}
}
