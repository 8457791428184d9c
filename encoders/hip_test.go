package encoders

import (
	"bytes"
	"encoding/binary"
	"net"
	"testing"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
)

// HITs are ORCHIDv2 (RFC 7343: prefix 2001:20::/28).
var (
	hitI = [16]byte{0x20, 0x01, 0x00, 0x2a, 0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77, 0x88, 0x99, 0xaa, 0xbb, 0xcc}
	hitR = [16]byte{0x20, 0x01, 0x00, 0x2b, 0xff, 0xee, 0xdd, 0xcc, 0xbb, 0xaa, 0x99, 0x88, 0x77, 0x66, 0x55, 0x44}
)

// hipI1 builds, by hand (gopacket has no HIP layer), a HIP I1 packet
// (RFC 7401 §5.3.1) with one DH_GROUP_LIST parameter (§5.2.6, type 511,
// groups 9, 8, 7, padded to 8 bytes). The checksum (§5.1.1) is computed
// over the pseudo-header given (addresses, then zero, 139, length).
func hipI1(addrs []byte) []byte {
	h := make([]byte, 40, 48)
	h[0] = 59          // Next Header: IPPROTO_NONE
	h[1] = 48/8 - 1    // Header Length
	h[2] = 1           // fixed 0 bit, Packet Type I1
	h[3] = 2<<4 | 0x01 // Version 2, reserved, fixed 1 bit
	copy(h[8:], hitI[:])
	copy(h[24:], hitR[:])
	h = append(h, 0x01, 0xff, 0, 3, 9, 8, 7, 0)
	ph := append(append([]byte{}, addrs...), 0, 0, 0, 139)
	ph = binary.BigEndian.AppendUint16(ph, uint16(len(h)))
	binary.BigEndian.PutUint16(h[4:], gopacket.FoldChecksum(gopacket.ComputeChecksum(h, gopacket.ComputeChecksum(ph, 0))))
	return h
}

func hip4(tb testing.TB, hip []byte) []byte {
	ip := ipHdr()
	ip.Protocol = 139
	sb := gopacket.NewSerializeBuffer()
	if err := gopacket.SerializeLayers(sb, gopacket.SerializeOptions{FixLengths: true, ComputeChecksums: true}, ip, gopacket.Payload(hip)); err != nil {
		tb.Fatal(err)
	}
	return clone(sb.Bytes())
}

func hip6(tb testing.TB, hip []byte) []byte {
	ip := &layers.IPv6{Version: 6, NextHeader: 139, HopLimit: 64, SrcIP: net.ParseIP("2001:db8::7"), DstIP: net.ParseIP("2001:db8:1::10")}
	sb := gopacket.NewSerializeBuffer()
	if err := gopacket.SerializeLayers(sb, gopacket.SerializeOptions{FixLengths: true}, ip, gopacket.Payload(hip)); err != nil {
		tb.Fatal(err)
	}
	return clone(sb.Bytes())
}

func TestHIPSenderHIT(t *testing.T) {
	v4addrs := []byte{100, 64, 0, 7, 198, 51, 100, 10}
	v6addrs := append(net.ParseIP("2001:db8::7").To16(), net.ParseIP("2001:db8:1::10").To16()...)
	p4, p6 := hip4(t, hipI1(v4addrs)), hip6(t, hipI1(v6addrs))
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
		"IPv4, trailing bytes": append(clone(p4), 0, 0),
		"IPv6, trailing bytes": append(clone(p6), 0, 0),
		"IPv4 with options":    p4WithOpts(t, ipHdr()),
		"R1-sized parameters": func() []byte {
			h := append(hipI1(v4addrs), make([]byte, 200)...)
			h[1] = byte(len(h)/8 - 1)
			return hip4(t, h)
		}(),
		"parameters shorter than the payload": func() []byte {
			h := append(hipI1(v4addrs), make([]byte, 12)...) // Header Length still 5
			return hip4(t, h)
		}(),
	} {
		hit, ok := HIPSenderHIT(p)
		if !ok || hit != hitI {
			t.Errorf("%s: %x %v", name, hit, ok)
		}
	}

	mod4 := func(f func(b []byte)) []byte { b := clone(p4); f(b); fixChecksums(b); return b }
	mod6 := func(f func(b []byte)) []byte { b := clone(p6); f(b); return b }
	for _, tc := range []struct {
		name string
		pkt  []byte
	}{
		{"nil", nil},
		{"one byte", []byte{0x45}},
		{"IPv4 TCP", mkIP(t, kTCP, nil, nil)},
		{"IPv4 UDP", mkIP(t, kUDP, nil, make([]byte, 64))},
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
	ip.Options = ipOpts(ioRA(), ioNOP(), ioNOP(), ioNOP(), ioNOP())
	sb := gopacket.NewSerializeBuffer()
	hip := hipI1([]byte{100, 64, 0, 7, 198, 51, 100, 10})
	if err := gopacket.SerializeLayers(sb, gopacket.SerializeOptions{FixLengths: true, ComputeChecksums: true}, ip, gopacket.Payload(hip)); err != nil {
		tb.Fatal(err)
	}
	if !bytes.Equal(sb.Bytes()[28:], hip) {
		tb.Fatal("layout")
	}
	return clone(sb.Bytes())
}
