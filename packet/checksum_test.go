package packet

import (
	"math/rand/v2"
	"testing"

	"github.com/gopacket/gopacket"
)

func TestChecksumRFC1624Example(t *testing.T) {
	// RFC 1624 §4: m = 0x5555 -> m' = 0x3285, the other words sum to 0xCD7A.
	if hc := Checksum([]byte{0xcd, 0x7a, 0x55, 0x55}, 0); hc != 0xdd2f {
		t.Fatalf("HC = %#04x, want 0xdd2f", hc)
	}
	if got := Adjust(0xdd2f, 0x5555, 0x3285); got != 0x0000 {
		t.Errorf("eqn 3 gives %#04x, want 0x0000 (eqn 2 would give 0xffff)", got)
	}
	if got := Checksum([]byte{0xcd, 0x7a, 0x32, 0x85}, 0); got != 0 {
		t.Errorf("from scratch %#04x", got)
	}
}

// TestChecksumAgainstGopacket compares with gopacket's RFC 1071 code.
func TestChecksumAgainstGopacket(t *testing.T) {
	r := rand.New(rand.NewPCG(7, 7))
	for i := 0; i < 2000; i++ {
		b := make([]byte, r.IntN(1600))
		for j := range b {
			b[j] = byte(r.Uint32())
		}
		if i%10 == 0 {
			for j := range b {
				b[j] = 0xff
			}
		}
		init := r.Uint32() & 0xffffff
		if got, want := Checksum(b, init), gopacket.FoldChecksum(gopacket.ComputeChecksum(b, init)); got != want {
			t.Fatalf("len %d: %#04x, want %#04x", len(b), got, want)
		}
	}
}

// TestChecksumAdjust checks eqn 3 against recomputation from scratch, using
// the receiver's test (sum over data and checksum is all ones).
func TestAdjust(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for i := 0; i < 100000; i++ {
		b := make([]byte, 2+2*r.IntN(10))
		for j := range b {
			b[j] = byte(r.Uint32())
		}
		if i%7 == 0 {
			b[0], b[1] = 0, 0 // around zero
		}
		hc := Checksum(b, 0)
		k := 2 * r.IntN(len(b)/2)
		old := uint16(b[k])<<8 | uint16(b[k+1])
		nw := uint16(r.Uint32())
		if i%5 == 0 {
			nw = ^old
		}
		b[k], b[k+1] = byte(nw>>8), byte(nw)
		got := Adjust(hc, old, nw)
		if Fold(Sum(b, uint64(got))) != 0xffff {
			t.Fatalf("%x: adjusted %#04x does not verify (from scratch %#04x)", b, got, Checksum(b, 0))
		}
	}
}

func TestChecksumNoAllocs(t *testing.T) {
	data := make([]byte, 1500)
	for name, f := range map[string]func(){
		"Checksum":       func() { Checksum(data, 0) },
		"ChecksumAdjust": func() { Adjust(1, 2, 3) },
	} {
		if a := testing.AllocsPerRun(100, f); a != 0 {
			t.Errorf("%s: %v allocs/op", name, a)
		}
	}
}
