package hip

import (
	"bytes"
	"encoding/binary"
	"net"
	"testing"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
	"github.com/natreveal/natreveal/internal/packettest"
	. "github.com/natreveal/natreveal/packet"
)

func TestHIPSenderHIT(t *testing.T) {
	v4addrs := []byte{100, 64, 0, 7, 198, 51, 100, 10}
	v6addrs := append(net.ParseIP("2001:db8::7").To16(), net.ParseIP("2001:db8:1::10").To16()...)
	p4, p6 := packettest.HIP4(t, packettest.HIPI1(v4addrs)), packettest.HIP6(t, packettest.HIPI1(v6addrs))
	if p4[9] != 139 || p6[6] != 139 || !IPv4ChecksumOK(p4) {
		t.Fatal("test packets")
	}
	// The HIP checksum verifies over the pseudo-header (the packets are real).
	for _, tc := range []struct {
		p     []byte
		off   int
		addrs []byte
	}{{p4, 20, v4addrs}, {p6, 40, v6addrs}} {
		h := tc.p[tc.off:]
		ph := append(append([]byte{}, tc.addrs...), 0, 0, 0, 139, 0, byte(len(h)))
		if gopacket.FoldChecksum(gopacket.ComputeChecksum(h, gopacket.ComputeChecksum(ph, 0))) != 0 {
			t.Error("HIP checksum")
		}
	}
	for name, p := range map[string][]byte{
		"IPv4": p4, "IPv6": p6,
		"IPv4, trailing bytes": append(packettest.Clone(p4), 0, 0),
		"IPv6, trailing bytes": append(packettest.Clone(p6), 0, 0),
		"IPv4 with options":    p4WithOpts(t, packettest.IPHdr()),
		"R1-sized parameters": func() []byte {
			h := append(packettest.HIPI1(v4addrs), make([]byte, 200)...)
			h[1] = byte(len(h)/8 - 1)
			return packettest.HIP4(t, h)
		}(),
		"parameters shorter than the payload": func() []byte {
			h := append(packettest.HIPI1(v4addrs), make([]byte, 12)...) // Header Length still 5
			return packettest.HIP4(t, h)
		}(),
	} {
		hit, ok := HIPSenderHIT(p)
		if !ok || hit != packettest.HitI {
			t.Errorf("%s: %x %v", name, hit, ok)
		}
	}

	mod4 := func(f func(b []byte)) []byte { b := packettest.Clone(p4); f(b); packettest.FixChecksums(b); return b }
	mod6 := func(f func(b []byte)) []byte { b := packettest.Clone(p6); f(b); return b }
	for _, tc := range []struct {
		name string
		pkt  []byte
	}{
		{"nil", nil},
		{"one byte", []byte{0x45}},
		{"IPv4 TCP", packettest.MkIP(t, packettest.KTCP, nil, nil)},
		{"IPv4 UDP", packettest.MkIP(t, packettest.KUDP, nil, make([]byte, 64))},
		{"IPv4 MF", mod4(func(b []byte) { b[6] |= 0x20 })},
		{"IPv4 offset", mod4(func(b []byte) { b[7] = 1 })},
		{"IPv4 truncated", p4[:50]},
		{"IPv4 header length 3", mod4(func(b []byte) { b[21] = 3 })},
		{"IPv4 header length past the payload", mod4(func(b []byte) { b[21] = 6 })},
		{"IPv4 HIP header cut at 39 bytes", mod4(func(b []byte) { binary.BigEndian.PutUint16(b[2:], 59) })},
		{"version 5", mod6(func(b []byte) { b[0] = 0x50 })},
		{"IPv6 short", p6[:39]},
		{"IPv6 hop-by-hop first", mod6(func(b []byte) { b[6] = 0 })},
		{"IPv6 UDP", mod6(func(b []byte) { b[6] = 17 })},
		{"IPv6 payload length past the packet", mod6(func(b []byte) { b[5]++ })},
		{"IPv6 jumbogram (payload length 0)", mod6(func(b []byte) { b[4], b[5] = 0, 0 })},
		{"IPv6 header length past the payload", mod6(func(b []byte) { b[41] = 6 })},
		{"IPv6 HIP header cut", mod6(func(b []byte) { binary.BigEndian.PutUint16(b[4:], 39) })},
	} {
		if hit, ok := HIPSenderHIT(tc.pkt); ok {
			t.Errorf("%s: %x", tc.name, hit)
		}
	}
}

// p4WithOpts carries the IPv4 HIP packet behind a header with options.
func p4WithOpts(tb testing.TB, ip *layers.IPv4) []byte {
	ip.Protocol = 139
	ip.Options = packettest.IPOpts(packettest.IORA(), packettest.IONOP(), packettest.IONOP(), packettest.IONOP(), packettest.IONOP())
	sb := gopacket.NewSerializeBuffer()
	hip := packettest.HIPI1([]byte{100, 64, 0, 7, 198, 51, 100, 10})
	if err := gopacket.SerializeLayers(sb, gopacket.SerializeOptions{FixLengths: true, ComputeChecksums: true}, ip, gopacket.Payload(hip)); err != nil {
		tb.Fatal(err)
	}
	if !bytes.Equal(sb.Bytes()[28:], hip) {
		tb.Fatal("layout")
	}
	return packettest.Clone(sb.Bytes())
}

func FuzzHIPSenderHIT(f *testing.F) {
	packettest.IPCorpus(f, func(p []byte) { f.Add(p) })
	f.Fuzz(func(t *testing.T, data []byte) {
		hit, ok := HIPSenderHIT(data)
		if !ok {
			if hit != [16]byte{} {
				t.Fatal("HIT without ok")
			}
			return
		}
		off := 40 // IPv6
		if data[0]>>4 == 4 {
			ip, res := ParseIPv4(data)
			if res != Unchanged || ip.Proto != 139 || ip.IsFragment() {
				t.Fatalf("accepted %v %+v", res, ip)
			}
			off = ip.HdrLen
		} else if data[0]>>4 != 6 || data[6] != 139 {
			t.Fatalf("accepted version %d next header %d", data[0]>>4, data[6])
		}
		if !bytes.Equal(hit[:], data[off+8:off+24]) || (int(data[off+1])+1)*8 < 40 {
			t.Fatalf("HIT %x at %d", hit, off)
		}
	})
}

func BenchmarkHIPSenderHIT(b *testing.B) {
	pkt := packettest.HIP4(b, packettest.HIPI1([]byte{100, 64, 0, 7, 198, 51, 100, 10}))
	b.ReportAllocs()
	for b.Loop() {
		if _, ok := HIPSenderHIT(pkt); !ok {
			b.Fatal("no HIT")
		}
	}
}

// TestZeroAllocs asserts that the new hot functions never allocate.
func TestZeroAllocs(t *testing.T) {
	h4 := packettest.HIP4(t, packettest.HIPI1([]byte{100, 64, 0, 7, 198, 51, 100, 10}))
	h6 := packettest.HIP6(t, packettest.HIPI1(make([]byte, 32)))
	for name, f := range map[string]func(){
		"HIPSenderHIT v4": func() { HIPSenderHIT(h4) },
		"HIPSenderHIT v6": func() { HIPSenderHIT(h6) },
	} {
		if a := testing.AllocsPerRun(100, f); a != 0 {
			t.Errorf("%s: %v allocs/op", name, a)
		}
	}
}
