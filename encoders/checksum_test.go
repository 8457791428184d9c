package encoders

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
	if got := ChecksumAdjust(0xdd2f, 0x5555, 0x3285); got != 0x0000 {
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
func TestChecksumAdjust(t *testing.T) {
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
		got := ChecksumAdjust(hc, old, nw)
		if fold(sum(b, uint64(got))) != 0xffff {
			t.Fatalf("%x: adjusted %#04x does not verify (from scratch %#04x)", b, got, Checksum(b, 0))
		}
	}
}

func TestChecksumOK(t *testing.T) {
	pkt := build(t, ipHdr(), dataHdr(oNOP(), oNOP(), oTS()), []byte("odd"))
	if !TCPChecksumOK(pkt) || !IPv4ChecksumOK(pkt) {
		t.Fatal("gopacket-built packet does not verify")
	}
	for i := range pkt {
		bad := clone(pkt)
		bad[i] ^= 0x10
		ipOK, tcpOK := IPv4ChecksumOK(bad), TCPChecksumOK(bad)
		if i < 20 && ipOK && i != 2 && i != 3 {
			t.Errorf("IP byte %d flipped: IPv4 checksum still OK", i)
		}
		if i >= 12 && tcpOK {
			t.Errorf("byte %d flipped: TCP checksum still OK", i)
		}
	}
	if TCPChecksumOK(nil) || IPv4ChecksumOK(nil) || TCPChecksumOK(pkt[:30]) {
		t.Error("short input OK")
	}
}
