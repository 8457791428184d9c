package packettest

import (
	"bytes"
	"encoding/binary"
	"net"
	"testing"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
	"github.com/natreveal/natreveal/packet"
)

// IPv4 options for tests (RFC 791 §3.1; router alert RFC 2113).
func IONOP() layers.IPv4Option { return layers.IPv4Option{OptionType: 1, OptionLength: 1} }

func IOEOL() layers.IPv4Option { return layers.IPv4Option{OptionType: 0, OptionLength: 1} }

// IORR is a record route option with n empty slots, pointer at the first.
func IORR(n int) layers.IPv4Option {
	return layers.IPv4Option{OptionType: 7, OptionLength: byte(3 + 4*n), OptionData: append([]byte{4}, make([]byte, 4*n)...)}
}

// IOTS is an internet timestamp option (timestamps only) with n slots.
func IOTS(n int) layers.IPv4Option {
	return layers.IPv4Option{OptionType: 68, OptionLength: byte(4 + 4*n), OptionData: append([]byte{5, 0}, make([]byte, 4*n)...)}
}

func IORA() layers.IPv4Option {
	return layers.IPv4Option{OptionType: 148, OptionLength: 4, OptionData: []byte{0, 0}}
}

// IOExp is an option of type t with the given data (a forged HOST_ID when
// t is the type in use).
func IOExp(t byte, data ...byte) layers.IPv4Option {
	return layers.IPv4Option{OptionType: t, OptionLength: byte(2 + len(data)), OptionData: data}
}

func IPOpts(o ...layers.IPv4Option) []layers.IPv4Option { return o }

// upper-layer kinds for MkIP.
const (
	KTCP = iota
	KUDP
	KICMP
)

// MkIP builds an IPv4 datagram with options opts carrying a TCP SYN (Linux
// options), a UDP datagram or an ICMP echo request with payload, with
// gopacket computing lengths and checksums, into a buffer with Headroom.
func MkIP(tb testing.TB, kind int, opts []layers.IPv4Option, payload []byte) []byte {
	tb.Helper()
	ip := IPHdr()
	ip.Options = opts
	var l4 gopacket.SerializableLayer
	switch kind {
	case KTCP:
		tcp := SYNHdr(LinuxSYN()...)
		if err := tcp.SetNetworkLayerForChecksum(ip); err != nil {
			tb.Fatal(err)
		}
		l4 = tcp
	case KUDP:
		ip.Protocol = layers.IPProtocolUDP
		udp := &layers.UDP{SrcPort: 40000, DstPort: 9999}
		if err := udp.SetNetworkLayerForChecksum(ip); err != nil {
			tb.Fatal(err)
		}
		l4 = udp
	case KICMP:
		ip.Protocol = layers.IPProtocolICMPv4
		l4 = &layers.ICMPv4{TypeCode: layers.CreateICMPv4TypeCode(layers.ICMPv4TypeEchoRequest, 0), Id: 7, Seq: 1}
	}
	sb := gopacket.NewSerializeBuffer()
	so := gopacket.SerializeOptions{FixLengths: true, ComputeChecksums: true}
	if err := gopacket.SerializeLayers(sb, so, ip, l4, gopacket.Payload(payload)); err != nil {
		tb.Fatal(err)
	}
	return Clone(sb.Bytes())
}

// PatchedIP builds a TCP SYN with opts, applies edit to the IPv4 option
// bytes and fixes the IPv4 checksum: for headers gopacket refuses to build.
func PatchedIP(tb testing.TB, opts []layers.IPv4Option, edit func(o []byte)) []byte {
	pkt := MkIP(tb, KTCP, opts, nil)
	edit(pkt[20 : int(pkt[0]&0x0f)*4])
	FixChecksums(pkt)
	return pkt
}

// DecodeIP parses pkt with gopacket and fails unless it decodes cleanly,
// Total Length matches, and every checksum gopacket knows (IPv4, TCP, UDP,
// ICMP) is valid; our verifiers must agree.
func DecodeIP(tb testing.TB, pkt []byte) (*layers.IPv4, gopacket.Packet) {
	tb.Helper()
	p := gopacket.NewPacket(pkt, layers.LayerTypeIPv4, gopacket.DecodeOptions{})
	if el := p.ErrorLayer(); el != nil {
		tb.Fatalf("gopacket: %v", el.Error())
	}
	ip, _ := p.Layer(layers.LayerTypeIPv4).(*layers.IPv4)
	if ip == nil {
		tb.Fatalf("gopacket: not packet.IPv4: %v", p)
	}
	switch l := p.TransportLayer().(type) {
	case *layers.TCP:
		_ = l.SetNetworkLayerForChecksum(ip)
		if !packet.TCPChecksumOK(pkt) {
			tb.Error("packet.TCPChecksumOK false")
		}
	case *layers.UDP:
		_ = l.SetNetworkLayerForChecksum(ip)
		if !packet.UDPChecksumOK(pkt) {
			tb.Error("packet.UDPChecksumOK false")
		}
	}
	if err, bad := p.VerifyChecksums(); err != nil || len(bad) != 0 {
		tb.Fatalf("gopacket checksum verification: err=%v mismatches=%+v", err, bad)
	}
	if int(ip.Length) != len(pkt) {
		tb.Fatalf("IP total length %d, packet %d bytes", ip.Length, len(pkt))
	}
	if !packet.IPv4ChecksumOK(pkt) {
		tb.Error("packet.IPv4ChecksumOK false where gopacket's check passes")
	}
	return ip, p
}

// IPCorpus adds the edge cases the IPv4 option, UDP and HIP fuzzers start
// from; each is also mutated by the fuzzing engine.
func IPCorpus(f *testing.F, add func(pkt []byte)) {
	const T = IPOptionExp
	pl := []byte("GET / HTTP/1.1\r\nHost: x\r\n\r\n!")
	// No options: TCP SYN, UDP with odd payload, ICMP echo.
	add(MkIP(f, KTCP, nil, nil))
	add(MkIP(f, KUDP, nil, pl))
	add(MkIP(f, KICMP, nil, pl))
	// Options already there: NOPs and EOL; record route and timestamp; router alert.
	add(MkIP(f, KTCP, IPOpts(IONOP(), IONOP(), IONOP(), IOEOL()), nil))
	add(MkIP(f, KUDP, IPOpts(IORR(2), IOTS(2)), pl))
	add(MkIP(f, KUDP, IPOpts(IORA()), pl))
	// Forged HOST_IDs of each type and length, NOP aligned, first, twice.
	add(MkIP(f, KUDP, IPOpts(IORA(), IOExp(T, 1, 2)), pl))
	add(MkIP(f, KTCP, IPOpts(IOExp(T, 1, 2, 3, 4), IONOP(), IONOP(), IORA()), nil))
	add(MkIP(f, KUDP, IPOpts(IOExp(IPOptionExpClass2, 1, 2), IOExp(IPOptionExpCopied, 1, 2, 3, 4), IOExp(IPOptionExpCopiedClass2)), pl))
	add(MkIP(f, KTCP, IPOpts(IOExp(T, 9, 9), IORR(1), IOExp(T, 1, 2, 3, 4, 5, 6, 7, 8)), nil))
	// 40 bytes full: nothing forged; forged inside; exactly room for ours.
	add(MkIP(f, KUDP, IPOpts(IOTS(9)), pl))
	add(MkIP(f, KTCP, IPOpts(IOTS(8), IOExp(T, 1, 2)), nil))
	add(MkIP(f, KUDP, IPOpts(IORR(7), IONOP()), pl))
	// EOL in the middle, forged option after it.
	add(MkIP(f, KTCP, IPOpts(IORA(), IOEOL(), IOExp(T, 1, 2)), nil))
	// Malformed option length 1, and a type byte without length at the end.
	add(PatchedIP(f, IPOpts(IORA(), IOExp(T, 1, 2)), func(o []byte) { o[1] = 1 }))
	add(PatchedIP(f, IPOpts(IORA(), IONOP(), IONOP(), IONOP(), IONOP()), func(o []byte) { o[7] = T }))
	// UDP Length shorter than the payload; a 1500-byte datagram.
	short := MkIP(f, KUDP, nil, pl)
	short[25] = 10
	add(short)
	add(MkIP(f, KUDP, nil, make([]byte, 1472)))
	// A first fragment with a forged option.
	ip := IPHdr()
	ip.Flags, ip.Protocol, ip.Options = layers.IPv4MoreFragments, layers.IPProtocolUDP, IPOpts(IOExp(T, 1, 2))
	sb := gopacket.NewSerializeBuffer()
	if err := gopacket.SerializeLayers(sb, gopacket.SerializeOptions{FixLengths: true, ComputeChecksums: true}, ip, gopacket.Payload(pl)); err != nil {
		f.Fatal(err)
	}
	add(sb.Bytes())
	// HIP over IPv4 and IPv6.
	add(HIP4(f, HIPI1([]byte{100, 64, 0, 7, 198, 51, 100, 10})))
	add(HIP6(f, HIPI1(append(net.ParseIP("2001:db8::7").To16(), net.ParseIP("2001:db8:1::10").To16()...))))
	// Garbage and truncation.
	add(nil)
	add([]byte{0x45})
	add(bytes.Repeat([]byte{0x4f}, 60))
	add(MkIP(f, KUDP, IPOpts(IORA()), pl)[:30])
}

// PrepareIP is Prepare plus a fixed UDP Length and checksum.
func PrepareIP(data []byte, fix bool) []byte {
	pkt := Prepare(data, fix)
	if fix {
		FixUDP(pkt)
		FixChecksums(pkt) // the IPv4 checksum does not depend on UDP
	}
	return pkt
}

// L4ChecksumOK reports whether the TCP or UDP checksum verifies.
func L4ChecksumOK(pkt []byte) bool { return packet.TCPChecksumOK(pkt) || packet.UDPChecksumOK(pkt) }

// GopacketIPValid reports whether gopacket decodes pkt without error, with
// Total Length equal to len(pkt) and every checksum it knows valid.
func GopacketIPValid(pkt []byte) bool {
	p := gopacket.NewPacket(pkt, layers.LayerTypeIPv4, gopacket.DecodeOptions{})
	ip, _ := p.Layer(layers.LayerTypeIPv4).(*layers.IPv4)
	if p.ErrorLayer() != nil || ip == nil || int(ip.Length) != len(pkt) {
		return false
	}
	switch l := p.TransportLayer().(type) {
	case *layers.TCP:
		_ = l.SetNetworkLayerForChecksum(ip)
	case *layers.UDP:
		_ = l.SetNetworkLayerForChecksum(ip)
	}
	err, bad := p.VerifyChecksums()
	return err == nil && len(bad) == 0
}

// FixUDP sets the UDP Length to the rest of the IPv4 datagram and
// recomputes the UDP checksum with gopacket's RFC 1071 code (a computed 0
// sent as 0xffff, RFC 768), when the headers allow it.
func FixUDP(pkt []byte) {
	if len(pkt) < 20 || pkt[0]>>4 != 4 {
		return
	}
	hl := int(pkt[0]&0x0f) * 4
	tot := int(binary.BigEndian.Uint16(pkt[2:4]))
	if hl < 20 || pkt[9] != 17 || binary.BigEndian.Uint16(pkt[6:8])&0x3fff != 0 || tot < hl+8 || tot > len(pkt) {
		return
	}
	seg := pkt[hl:tot]
	binary.BigEndian.PutUint16(seg[4:], uint16(len(seg)))
	seg[6], seg[7] = 0, 0
	ph := append(append([]byte{}, pkt[12:20]...), 0, 17, byte(len(seg)>>8), byte(len(seg)))
	c := gopacket.FoldChecksum(gopacket.ComputeChecksum(seg, gopacket.ComputeChecksum(ph, 0)))
	if c == 0 {
		c = 0xffff
	}
	binary.BigEndian.PutUint16(seg[6:], c)
}
