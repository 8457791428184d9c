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

var (
	Src6 = net.ParseIP("2001:db8::7")
	Dst6 = net.ParseIP("2001:db8:100::10")
	Mid6 = net.ParseIP("2001:db8:200::1") // a Routing header waypoint
)

func IP6Hdr() *layers.IPv6 {
	return &layers.IPv6{Version: 6, TrafficClass: 0x28, FlowLabel: 0x12345, HopLimit: 64, SrcIP: Src6, DstIP: Dst6}
}

// AHHdr is a raw Authentication Header (RFC 4302 §2) with icv bytes of ICV:
// gopacket decodes AH but cannot serialize it.
type AHHdr struct {
	Next layers.IPProtocol
	ICV  int
}

func (a *AHHdr) LayerType() gopacket.LayerType { return layers.LayerTypeIPSecAH }

func (a *AHHdr) SerializeTo(b gopacket.SerializeBuffer, _ gopacket.SerializeOptions) error {
	h, err := b.PrependBytes(12 + a.ICV)
	if err != nil {
		return err
	}
	clear(h)
	h[0], h[1] = byte(a.Next), byte((12+a.ICV)/4-2) // RFC 4302 §2.2
	binary.BigEndian.PutUint32(h[4:], 0x100)        // SPI
	binary.BigEndian.PutUint32(h[8:], 1)            // sequence number
	return nil
}

// HBH6 is a Hop-by-Hop header with a Router Alert option (RFC 2711) and a
// PadN.
func HBH6() *layers.IPv6HopByHop {
	return &layers.IPv6HopByHop{Options: []*layers.IPv6HopByHopOption{
		{OptionType: 5, OptionData: []byte{0, 0}}, {OptionType: 1, OptionData: []byte{}},
	}}
}

// Dest6 is a Destination Options header with the given options and the
// final padding. gopacket v1.7.7 pads with length%8 bytes instead of
// 8-length%8, so the padding is added here, after the alignment padding
// gopacket inserts (same rule as its serializeIPv6HeaderTLVOptions).
func Dest6(opts ...*layers.IPv6DestinationOption) *layers.IPv6Destination {
	length := 2
	for _, o := range opts {
		if x, y := int(o.OptionAlignment[0]), int(o.OptionAlignment[1]); x != 0 {
			off := x*(length/x) + y
			if off < length {
				off += x
			}
			length = off
		}
		if o.OptionType == 0 {
			length++
		} else {
			length += 2 + len(o.OptionData)
		}
	}
	switch pad := (8 - length%8) % 8; pad {
	case 0:
	case 1:
		opts = append(opts, DOpt(0, nil))
	default:
		opts = append(opts, DOpt(1, make([]byte, pad-2)))
	}
	return &layers.IPv6Destination{Options: opts}
}

// DOpt is a destination option; align is RFC 8200 §4.2's xn+y as {x, y}.
func DOpt(typ byte, data []byte, align ...uint8) *layers.IPv6DestinationOption {
	o := &layers.IPv6DestinationOption{OptionType: typ, OptionData: data}
	if len(align) == 2 {
		o.OptionAlignment = [2]uint8{align[0], align[1]}
	}
	return o
}

// HomeAddr is a Home Address option (RFC 6275 §6.3: type 0xC9, 16 bytes,
// alignment 8n+6).
func HomeAddr() *layers.IPv6DestinationOption {
	return DOpt(0xc9, net.ParseIP("2001:db8:300::5"), 8, 6)
}

// Routing6 is a Routing header of type typ with the given addresses.
func Routing6(typ, left uint8, addrs ...net.IP) *layers.IPv6Routing {
	r := &layers.IPv6Routing{RoutingType: typ, SegmentsLeft: left, Reserved: make([]byte, 4)}
	for _, a := range addrs {
		r.Data = append(r.Data, a.To16()...)
	}
	return r
}

// Build6 serializes ip and ls (extension headers, then TCP or UDP, then
// optionally a gopacket.Payload) with gopacket, chaining the Next Header
// fields, into a buffer with Headroom spare capacity. Checksums are fixed
// afterwards so that a Routing header's final destination counts.
func Build6(tb testing.TB, ip *layers.IPv6, ls ...gopacket.SerializableLayer) []byte {
	tb.Helper()
	prev := &ip.NextHeader
	for _, l := range ls {
		var p layers.IPProtocol
		var next *layers.IPProtocol
		switch v := l.(type) {
		case *layers.IPv6HopByHop:
			p, next = layers.IPProtocolIPv6HopByHop, &v.NextHeader
		case *layers.IPv6Destination:
			p, next = layers.IPProtocolIPv6Destination, &v.NextHeader
		case *layers.IPv6Routing:
			p, next = layers.IPProtocolIPv6Routing, &v.NextHeader
		case *layers.IPv6Fragment:
			p, next = layers.IPProtocolIPv6Fragment, &v.NextHeader
		case *AHHdr:
			p, next = layers.IPProtocolAH, &v.Next
		case *layers.TCP:
			p = layers.IPProtocolTCP
			if err := v.SetNetworkLayerForChecksum(ip); err != nil {
				tb.Fatal(err)
			}
		case *layers.UDP:
			p = layers.IPProtocolUDP
			if err := v.SetNetworkLayerForChecksum(ip); err != nil {
				tb.Fatal(err)
			}
		default:
			continue
		}
		if prev == nil {
			tb.Fatalf("layer %T after the upper layer", l)
		}
		*prev, prev = p, next
	}
	all := append([]gopacket.SerializableLayer{ip}, ls...)
	sb := gopacket.NewSerializeBuffer()
	if err := gopacket.SerializeLayers(sb, gopacket.SerializeOptions{FixLengths: true, ComputeChecksums: true}, all...); err != nil {
		tb.Fatal(err)
	}
	out := Clone(sb.Bytes())
	FixChecksum6(out)
	return out
}

// FixChecksum6 sets the TCP or UDP checksum of pkt to what gopacket computes
// (final destination included, RFC 8200 §8.1; UDP's 0 sent as 0xffff).
// Only the checksum's offset comes from ParseIPv6.
func FixChecksum6(pkt []byte) {
	ip, res := packet.ParseIPv6(pkt)
	if res != packet.Unchanged || ip.Frag {
		return
	}
	switch {
	case ip.Proto == packet.ProtoTCP && ip.Off+20 <= ip.TotalLen:
		pkt[ip.Off+16], pkt[ip.Off+17] = 0, 0
	case ip.Proto == 17 && ip.Off+8 <= ip.TotalLen:
		pkt[ip.Off+6], pkt[ip.Off+7] = 0, 0
	default:
		return
	}
	p := gopacket.NewPacket(pkt[:ip.TotalLen], layers.LayerTypeIPv6, gopacket.DecodeOptions{})
	ip6, _ := p.Layer(layers.LayerTypeIPv6).(*layers.IPv6)
	if ip6 == nil {
		return
	}
	switch l := p.TransportLayer().(type) {
	case *layers.TCP:
		if ip.Proto != packet.ProtoTCP || ip.Off+20 > ip.TotalLen || l.SetNetworkLayerForChecksum(ip6) != nil {
			return
		}
		if err, r := l.VerifyChecksum(); err == nil {
			binary.BigEndian.PutUint16(pkt[ip.Off+16:], uint16(r.Correct))
		}
	case *layers.UDP:
		if ip.Proto != 17 || ip.Off+8 > ip.TotalLen || l.SetNetworkLayerForChecksum(ip6) != nil {
			return
		}
		if err, r := l.VerifyChecksum(); err == nil {
			binary.BigEndian.PutUint16(pkt[ip.Off+6:], uint16(r.Correct))
		}
	}
}

// Decoded6 is an IPv6 packet as gopacket sees it.
type Decoded6 struct {
	IP    *layers.IPv6
	HBH   *layers.IPv6HopByHop
	Dests []*layers.IPv6Destination
	TCP   *layers.TCP
	UDP   *layers.UDP
	Upper []byte // upper-layer header and data
}

// FinalDest returns the Destination Options header right before the upper
// layer, or nil.
func (d Decoded6) FinalDest() *layers.IPv6Destination {
	if len(d.Dests) == 0 {
		return nil
	}
	last := d.Dests[len(d.Dests)-1]
	if len(last.Payload) != len(d.Upper) {
		return nil
	}
	return last
}

// Decode6 parses pkt with gopacket and fails unless it decodes cleanly as
// IPv6 with every checksum valid and a Payload Length matching len(pkt).
func Decode6(tb testing.TB, pkt []byte) Decoded6 {
	tb.Helper()
	d, err := GopacketDecode6(pkt)
	if err != "" {
		tb.Fatalf("gopacket: %s", err)
	}
	return d
}

func GopacketDecode6(pkt []byte) (Decoded6, string) {
	var d Decoded6
	p := gopacket.NewPacket(pkt, layers.LayerTypeIPv6, gopacket.DecodeOptions{})
	if el := p.ErrorLayer(); el != nil {
		return d, el.Error().Error()
	}
	for _, l := range p.Layers() {
		switch v := l.(type) {
		case *layers.IPv6:
			if d.IP == nil {
				d.IP = v
			}
		case *layers.IPv6HopByHop:
			d.HBH = v
		case *layers.IPv6Destination:
			d.Dests = append(d.Dests, v)
		case *layers.TCP:
			d.TCP = v
		case *layers.UDP:
			d.UDP = v
		}
	}
	if d.IP == nil {
		return d, "not packet.IPv6"
	}
	switch {
	case d.TCP != nil:
		if d.TCP.SetNetworkLayerForChecksum(d.IP) != nil {
			return d, "checksum layer"
		}
		d.Upper = append(append([]byte{}, d.TCP.Contents...), d.TCP.Payload...)
	case d.UDP != nil:
		if d.UDP.SetNetworkLayerForChecksum(d.IP) != nil {
			return d, "checksum layer"
		}
		d.Upper = append(append([]byte{}, d.UDP.Contents...), d.UDP.Payload...)
	}
	if err, bad := p.VerifyChecksums(); err != nil || len(bad) != 0 {
		return d, "checksums do not verify"
	}
	if int(d.IP.Length)+40 != len(pkt) {
		return d, "Payload Length does not match the packet"
	}
	return d, ""
}

// GopacketValid6 reports whether gopacket decodes pkt as IPv6/TCP or
// IPv6/UDP without error and with valid checksums.
func GopacketValid6(pkt []byte) bool {
	d, err := GopacketDecode6(pkt)
	return err == "" && (d.TCP != nil || d.UDP != nil)
}

// CheckRewritten6 is CheckRewritten for IPv6: gopacket decodes both, the
// extension headers and the fixed header (but Payload Length) are the
// same, the TCP header differs only in its options as RFC 7974 wants.
func CheckRewritten6(tb testing.TB, before, after []byte, want []byte) Decoded6 {
	tb.Helper()
	b, a := Decode6(tb, before), Decode6(tb, after)
	if a.TCP == nil || b.TCP == nil {
		tb.Fatal("not TCP")
	}
	CheckTCPRewritten(tb, b.TCP, a.TCP, want)
	IPHeadersSame(tb, b.IP, a.IP)
	ext := len(before) - len(b.Upper)
	if !bytes.Equal(before[40:ext], after[40:len(after)-len(a.Upper)]) {
		tb.Errorf("extension headers changed")
	}
	if int(a.TCP.DataOffset)*4+len(a.TCP.Payload)+ext != len(after) {
		tb.Errorf("data offset %d inconsistent with length %d", a.TCP.DataOffset, len(after))
	}
	if !packet.TCPChecksumOK6(after) {
		tb.Errorf("own checksum verification fails where gopacket's passes")
	}
	return a
}

func IPHeadersSame(tb testing.TB, b, a *layers.IPv6) {
	tb.Helper()
	if b.TrafficClass != a.TrafficClass || b.FlowLabel != a.FlowLabel || b.HopLimit != a.HopLimit ||
		!b.SrcIP.Equal(a.SrcIP) || !b.DstIP.Equal(a.DstIP) {
		tb.Errorf("packet.IPv6 header fields changed")
	}
}

// Experimental is the RFC 4727 list the fuzzers pick option types from.
var Experimental = [8]byte{0x1E, 0x3E, 0x5E, 0x7E, 0x9E, 0xBE, 0xDE, 0xFE}

// Corpus6 adds the IPv6 edge cases every IPv6 fuzzer starts from.
func Corpus6(f *testing.F, add func(pkt []byte)) {
	b := func(ls ...gopacket.SerializableLayer) []byte { return Build6(f, IP6Hdr(), ls...) }
	syn := func() *layers.TCP { return SYNHdr(LinuxSYN()...) }
	udp := func() *layers.UDP { return &layers.UDP{SrcPort: 5353, DstPort: 443} }
	// Plain SYN; Linux SYN.
	add(b(SYNHdr()))
	add(b(syn()))
	// Hop-by-Hop; Hop-by-Hop and a final Destination Options header with
	// an 8n+6 aligned option.
	add(b(HBH6(), syn()))
	add(b(HBH6(), Dest6(HomeAddr()), syn()))
	// Forged HOST_ID TCP option; TCP options full.
	add(b(SYNHdr(append(LinuxSYN(), ONOP(), ONOP(), OHostID(1, 2))...)))
	add(b(SYNHdr(append(LinuxSYN(), OTFO(16), ONOP(), ONOP())...)))
	// Forged HOST_ID destination options, 2 and 4 bytes, among others.
	add(b(Dest6(DOpt(DestOptType, []byte{1, 2})), syn()))
	add(b(HBH6(), Dest6(DOpt(0x11, []byte{1}), DOpt(DestOptType, []byte{1, 2, 3, 4}), HomeAddr()), udp(), gopacket.Payload("q")))
	// Eight options: no room for ours.
	var eight []*layers.IPv6DestinationOption
	for i := range 8 {
		eight = append(eight, DOpt(0x11+byte(i), []byte{byte(i)}))
	}
	add(b(Dest6(eight...), SYNHdr()))
	// Destination Options before a Routing header with segments left
	// (type 2), and a type 4 (SRH) one.
	add(b(Dest6(DOpt(0x11, nil)), Routing6(2, 1, Mid6), syn()))
	add(b(Routing6(4, 1, Mid6, Dst6), udp(), gopacket.Payload("hello")))
	// First fragment, later fragment, atomic fragment.
	add(b(&layers.IPv6Fragment{MoreFragments: true, Identification: 9}, syn()))
	add(b(&layers.IPv6Fragment{FragmentOffset: 100, Identification: 9}, gopacket.Payload("tail")))
	add(b(&layers.IPv6Fragment{Identification: 9}, syn()))
	// AH.
	add(b(&AHHdr{ICV: 12}, Dest6(DOpt(DestOptType, []byte{1, 2})), syn()))
	// UDP; a 1500-byte TCP data segment with an odd-length payload before it.
	add(b(udp(), gopacket.Payload("GET / HTTP/1.1\r\n\r\n!")))
	add(b(DataHdr(ONOP(), ONOP(), OTS()), gopacket.Payload(make([]byte, 1428))))
	// No Next Header; jumbogram; malformed option length.
	p := b(SYNHdr())[:40]
	p[4], p[5], p[6] = 0, 0, 59
	add(p)
	p = b(HBH6(), SYNHdr())
	p[4], p[5] = 0, 0
	add(p)
	p = b(Dest6(DOpt(0x11, []byte{1, 2, 3}), DOpt(DestOptType, []byte{1, 2})), SYNHdr())
	p[43] = 20
	add(p)
	// Our option, then one that overruns the header.
	p = b(Dest6(DOpt(DestOptType, []byte{1, 2}), DOpt(0x11, []byte{1})), SYNHdr())
	p[47] = 20
	add(p)
	// Garbage and truncation.
	add(nil)
	add([]byte{0x60})
	add(bytes.Repeat([]byte{0x6f}, 80))
	add(b(syn())[:70])
}

// Prepare6 copies data into a buffer with Headroom and, when fix is set,
// makes the Payload Length match and recomputes the TCP or UDP checksum
// with gopacket, so that the fuzzer reaches the deep paths.
func Prepare6(data []byte, fix bool) []byte {
	pkt := make([]byte, len(data), len(data)+packet.Headroom)
	copy(pkt, data)
	if fix && len(pkt) >= 40 && len(pkt)-40 <= 0xffff {
		binary.BigEndian.PutUint16(pkt[4:], uint16(len(pkt)-40))
		FixChecksum6(pkt)
	}
	return pkt
}

// TCP6 returns a parsed IPv6/TCP packet's extension headers, options and
// payload.
func TCP6(t *testing.T, pkt []byte) (ext, opts, payload []byte) {
	ip, tcp, res := parseIPv6TCP(pkt)
	if res != packet.Unchanged {
		t.Fatalf("does not parse: %v", res)
	}
	return pkt[40:ip.Off], pkt[tcp.Off+20 : tcp.Off+tcp.HdrLen], pkt[tcp.Off+tcp.HdrLen : ip.TotalLen]
}

// DestOptType is dest-opt's option type (RFC 4727 §2.6, method/destopt):
// the Corpus carry Destination Options of it.
const DestOptType = 0x1E
