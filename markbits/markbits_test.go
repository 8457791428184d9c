package markbits

import (
	"net/netip"
	"testing"
)

func TestSourceFromMarkRoundTrip(t *testing.T) {
	for _, s := range []string{"192.168.1.20", "10.0.0.1", "0.0.0.0", "255.255.255.255"} {
		a := netip.MustParseAddr(s)
		if got := SourceFromMark(MarkFromSource(a)); got != a {
			t.Errorf("%v: round trip gives %v", a, got)
		}
	}
}

func TestSingleBit(t *testing.T) {
	for m, want := range map[uint32]bool{0: false, 1: true, 0x10000: true, 0x30000: false, 1 << 31: true} {
		if SingleBit(m) != want {
			t.Errorf("SingleBit(%#x) = %v", m, !want)
		}
	}
}
