package packet_test

import (
	"encoding/binary"
	"math/rand/v2"
	"testing"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
	"github.com/natreveal/natreveal/internal/packettest"
	"github.com/natreveal/natreveal/packet"
	. "github.com/natreveal/natreveal/packet"
)

func TestChecksumOK(t *testing.T) {
	pkt := packettest.Build(t, packettest.IPHdr(), packettest.DataHdr(packettest.ONOP(), packettest.ONOP(), packettest.OTS()), []byte("odd"))
	if !TCPChecksumOK(pkt) || !IPv4ChecksumOK(pkt) {
		t.Fatal("gopacket-built packet does not verify")
	}
	for i := range pkt {
		bad := packettest.Clone(pkt)
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

func TestTCPChecksumOK6(t *testing.T) {
	for _, tc := range []struct {
		name string
		pkt  []byte
		ok   bool
	}{
		{"plain, odd payload", packettest.Build6(t, packettest.IP6Hdr(), packettest.DataHdr(packettest.ONOP(), packettest.ONOP(), packettest.OTS()), gopacket.Payload("odd")), true},
		{"Hop-by-Hop and Destination Options", packettest.Build6(t, packettest.IP6Hdr(), packettest.HBH6(), packettest.Dest6(packettest.HomeAddr()), packettest.SYNHdr()), true},
		{"Routing type 2, segments left", packettest.Build6(t, packettest.IP6Hdr(), packettest.Routing6(2, 1, packettest.Mid6), packettest.SYNHdr()), true},
		{"Routing type 0, segments left", packettest.Build6(t, packettest.IP6Hdr(), packettest.Routing6(0, 2, packettest.Mid6, packettest.Src6, packettest.Mid6), packettest.SYNHdr()), true},
		{"Routing type 4, segments left", packettest.Build6(t, packettest.IP6Hdr(), packettest.Routing6(4, 1, packettest.Mid6, packettest.Dst6), packettest.SYNHdr()), true},
		{"Routing type 2, none left", packettest.Build6(t, packettest.IP6Hdr(), packettest.Routing6(2, 0, packettest.Mid6), packettest.SYNHdr()), true},
		{"Routing type 3, segments left: unknown final address", packettest.Build6(t, packettest.IP6Hdr(), packettest.Routing6(3, 1, packettest.Mid6), packettest.SYNHdr()), false},
		{"UDP", packettest.Build6(t, packettest.IP6Hdr(), &layers.UDP{SrcPort: 1, DstPort: 2}), false},
		{"fragment", packettest.Build6(t, packettest.IP6Hdr(), &layers.IPv6Fragment{}, packettest.SYNHdr()), false},
	} {
		pkt := tc.pkt
		if got := TCPChecksumOK6(pkt); got != tc.ok {
			t.Errorf("%s: %v", tc.name, got)
		}
		if !tc.ok {
			continue
		}
		packettest.Decode6(t, pkt) // gopacket agrees
		// Covered: source, final destination, the segment (RFC 8200 §8.1).
		ip, _ := ParseIPv6(pkt)
		dst, _ := FinalDst(pkt, ip)
		dstOff := cap(pkt) - cap(dst)
		for i := 8; i < len(pkt); i++ {
			if i >= 24 && !(i >= dstOff && i < dstOff+16) && i < ip.Off {
				continue
			}
			bad := packettest.Clone(pkt)
			bad[i] ^= 0x10
			if TCPChecksumOK6(bad) {
				t.Errorf("%s: byte %d flipped, still OK", tc.name, i)
			}
		}
	}
	if TCPChecksumOK6(nil) {
		t.Error("nil OK")
	}
}

// Odd extension-header layouts are compared with gopacket's checksum code.
func TestTCPChecksumOK6AgainstGopacket(t *testing.T) {
	r := rand.New(rand.NewPCG(6, 6))
	for i := 0; i < 200; i++ {
		pay := make([]byte, r.IntN(300))
		for j := range pay {
			pay[j] = byte(r.Uint32())
		}
		var ls []gopacket.SerializableLayer
		if r.IntN(2) == 0 {
			ls = append(ls, packettest.HBH6())
		}
		if r.IntN(2) == 0 {
			ls = append(ls, packettest.Routing6(uint8(r.IntN(3)*2), uint8(r.IntN(2)), packettest.Mid6, packettest.Dst6))
		}
		if r.IntN(2) == 0 {
			ls = append(ls, packettest.Dest6(packettest.DOpt(0x11, pay[:min(len(pay), 9)])))
		}
		ls = append(ls, packettest.DataHdr(packettest.ONOP(), packettest.ONOP(), packettest.OTS()), gopacket.Payload(pay))
		pkt := packettest.Build6(t, packettest.IP6Hdr(), ls...)
		pkt[len(pkt)-1] ^= byte(r.IntN(2)) // sometimes wrong
		if got, want := TCPChecksumOK6(pkt), packettest.GopacketValid6(pkt); got != want {
			t.Fatalf("%x: own %v, gopacket %v", pkt, got, want)
		}
	}
}

func BenchmarkTCPChecksumOK6(b *testing.B) {
	pkt := packettest.Build6(b, packettest.IP6Hdr(), packettest.DataHdr(packettest.ONOP(), packettest.ONOP(), packettest.OTS()), gopacket.Payload(make([]byte, 1428)))
	b.ReportAllocs()
	b.SetBytes(int64(len(pkt)))
	for b.Loop() {
		if !TCPChecksumOK6(pkt) {
			b.Fatal("bad checksum")
		}
	}
}

func TestUDPChecksumOK(t *testing.T) {
	pkt := packettest.MkIP(t, packettest.KUDP, packettest.IPOpts(packettest.IORA()), []byte("odd"))
	if !UDPChecksumOK(pkt) {
		t.Fatal("gopacket-built datagram does not verify")
	}
	for i := range pkt {
		bad := packettest.Clone(pkt)
		bad[i] ^= 0x10
		// Only the addresses (pseudo-header) and the UDP datagram are
		// covered; the protocol, flags/offset and length bytes make it
		// not UDP, a fragment or malformed.
		covered := i >= 12 && i < 20 || i >= 24 || i == 2 || i == 3 || i == 6 || i == 7 || i == 9 || i < 1
		if got := UDPChecksumOK(bad); got == covered {
			t.Errorf("byte %d flipped: OK = %v", i, got)
		}
	}
	// No checksum (RFC 768): zero is OK whatever the data.
	none := packettest.Clone(pkt)
	none[24+6], none[24+7] = 0, 0
	none[len(none)-1] ^= 0xff
	if !UDPChecksumOK(none) {
		t.Error("zero checksum not OK")
	}
	if err, res := decodeUDPLayer(t, none).VerifyChecksum(); err != nil || !res.Valid {
		t.Error("gopacket disagrees on a zero checksum")
	}
	// A computed checksum of zero is sent as 0xffff (RFC 768): choose the
	// last two payload bytes so that the sum is all ones.
	p := packettest.MkIP(t, packettest.KUDP, nil, []byte{0, 0})
	c := binary.BigEndian.Uint16(p[26:28])
	p = packettest.MkIP(t, packettest.KUDP, nil, []byte{byte(c >> 8), byte(c)})
	if binary.BigEndian.Uint16(p[26:28]) != 0xffff || !UDPChecksumOK(p) {
		t.Errorf("0xffff checksum: %#04x OK=%v", binary.BigEndian.Uint16(p[26:28]), UDPChecksumOK(p))
	}
	if UDPChecksumOK(nil) || UDPChecksumOK(pkt[:30]) || UDPChecksumOK(packettest.MkIP(t, packettest.KTCP, nil, nil)) {
		t.Error("short or TCP input OK")
	}
	// Agreement with gopacket on random datagrams, some corrupted.
	r := rand.New(rand.NewPCG(5, 6))
	for i := range 500 {
		pl := make([]byte, r.IntN(64))
		for j := range pl {
			pl[j] = byte(r.Uint32())
		}
		p := packettest.MkIP(t, packettest.KUDP, nil, pl)
		if i%2 == 1 {
			p[20+r.IntN(len(p)-20)] ^= byte(1 + r.IntN(255))
			if binary.BigEndian.Uint16(p[24:26]) != uint16(len(p)-20) {
				continue // length changed: gopacket truncates silently
			}
		}
		_, res := decodeUDPLayer(t, p).VerifyChecksum()
		if got := UDPChecksumOK(p); got != res.Valid {
			t.Fatalf("%x: ours %v, gopacket %v", p, got, res.Valid)
		}
	}
}

// TestZeroAllocsParse asserts that no hot function allocates.
func TestZeroAllocsParse(t *testing.T) {
	var view packet.View // on the stack: a caller keeps its view there
	syn := packettest.Build(t, packettest.IPHdr(), packettest.SYNHdr(append(packettest.LinuxSYN(), packettest.OHostID(9, 9))...), nil)
	data := packettest.Build(t, packettest.IPHdr(), packettest.DataHdr(packettest.ONOP(), packettest.ONOP(), packettest.OTS()), make([]byte, 1400))
	buf := make([]byte, 0, 2000)
	ip, _ := ParseIPv4(syn)
	for name, f := range map[string]func(){
		"ParseIPv4": func() { ParseIPv4(syn) },
		"ParseTCP":  func() { ParseTCP(syn, ip) },
		"LowerMSS": func() {
			buf = append(buf[:0], syn...)
			LowerMSS(packettest.PVAt(&view, buf, len(buf)), buf, 8)
		},
		"TCPChecksumOK":  func() { TCPChecksumOK(data) },
		"IPv4ChecksumOK": func() { IPv4ChecksumOK(data) },
		"Result.String":  func() { _ = Result(3).String() },
	} {
		if a := testing.AllocsPerRun(100, f); a != 0 {
			t.Errorf("%s: %v allocs/op", name, a)
		}
	}
}

// TestZeroAllocsParse6 asserts that no IPv6 hot function allocates.
func TestZeroAllocsParse6(t *testing.T) {
	var view packet.View // on the stack: a caller keeps its view there
	syn := packettest.Build6(t, packettest.IP6Hdr(), packettest.HBH6(), packettest.SYNHdr(append(packettest.LinuxSYN(), packettest.OHostID(9, 9))...))
	data := packettest.Build6(t, packettest.IP6Hdr(), packettest.DataHdr(packettest.ONOP(), packettest.ONOP(), packettest.OTS()), gopacket.Payload(make([]byte, 1400)))
	buf := make([]byte, 0, 2000)
	ip, _ := ParseIPv6(syn)
	for name, f := range map[string]func(){
		"ParseIPv6":      func() { ParseIPv6(syn) },
		"ParseTCP6":      func() { ParseTCP6(syn, ip) },
		"TCPChecksumOK6": func() { TCPChecksumOK6(data) },
		"LowerMSS6": func() {
			buf = append(buf[:0], syn...)
			LowerMSS6(packettest.PVAt(&view, buf, len(buf)), buf, 8)
		},
	} {
		if a := testing.AllocsPerRun(100, f); a != 0 {
			t.Errorf("%s: %v allocs/op", name, a)
		}
	}
}

// TestZeroAllocsUDP asserts that the new hot functions never allocate.
func TestZeroAllocsUDP(t *testing.T) {
	const T = packettest.IPOptionExp
	forged := packettest.MkIP(t, packettest.KUDP, packettest.IPOpts(packettest.IORA(), packettest.IOExp(T, 1, 2)), make([]byte, 1400))
	ip, _ := ParseIPv4(forged)
	for name, f := range map[string]func(){
		"ParseUDP":      func() { ParseUDP(forged, ip) },
		"UDPChecksumOK": func() { UDPChecksumOK(forged) },
	} {
		if a := testing.AllocsPerRun(100, f); a != 0 {
			t.Errorf("%s: %v allocs/op", name, a)
		}
	}
}
