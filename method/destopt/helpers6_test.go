package destopt

import (
	"bytes"
	"encoding/binary"
	"net"
	"testing"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
)

// IPv6 packets are built and checked with gopacket too (lab addresses in
// 2001:db8::/32, RFC 3849).

var (
	src6 = net.ParseIP("2001:db8::7")
	dst6 = net.ParseIP("2001:db8:100::10")
	mid6 = net.ParseIP("2001:db8:200::1") // a Routing header waypoint
)

func ip6Hdr() *layers.IPv6 {
	return &layers.IPv6{Version: 6, TrafficClass: 0x28, FlowLabel: 0x12345, HopLimit: 64, SrcIP: src6, DstIP: dst6}
}

// ahHdr is a raw Authentication Header (RFC 4302 §2) with icv bytes of ICV:
// gopacket decodes AH but cannot serialize it.
type ahHdr struct {
	next layers.IPProtocol
	icv  int
}

func (a *ahHdr) LayerType() gopacket.LayerType { return layers.LayerTypeIPSecAH }
func (a *ahHdr) SerializeTo(b gopacket.SerializeBuffer, _ gopacket.SerializeOptions) error {
	h, err := b.PrependBytes(12 + a.icv)
	if err != nil {
		return err
	}
	clear(h)
	h[0], h[1] = byte(a.next), byte((12+a.icv)/4-2) // RFC 4302 §2.2
	binary.BigEndian.PutUint32(h[4:], 0x100)        // SPI
	binary.BigEndian.PutUint32(h[8:], 1)            // sequence number
	return nil
}

// hbh6 is a Hop-by-Hop header with a Router Alert option (RFC 2711) and a
// PadN.
func hbh6() *layers.IPv6HopByHop {
	return &layers.IPv6HopByHop{Options: []*layers.IPv6HopByHopOption{
		{OptionType: 5, OptionData: []byte{0, 0}}, {OptionType: 1, OptionData: []byte{}},
	}}
}

// dest6 is a Destination Options header with the given options and the
// final padding. gopacket v1.7.7 pads with length%8 bytes instead of
// 8-length%8, so the padding is added here, after the alignment padding
// gopacket inserts (same rule as its serializeIPv6HeaderTLVOptions).
func dest6(opts ...*layers.IPv6DestinationOption) *layers.IPv6Destination {
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
		opts = append(opts, dOpt(0, nil))
	default:
		opts = append(opts, dOpt(1, make([]byte, pad-2)))
	}
	return &layers.IPv6Destination{Options: opts}
}

// dOpt is a destination option; align is RFC 8200 §4.2's xn+y as {x, y}.
func dOpt(typ byte, data []byte, align ...uint8) *layers.IPv6DestinationOption {
	o := &layers.IPv6DestinationOption{OptionType: typ, OptionData: data}
	if len(align) == 2 {
		o.OptionAlignment = [2]uint8{align[0], align[1]}
	}
	return o
}

// homeAddr is a Home Address option (RFC 6275 §6.3: type 0xC9, 16 bytes,
// alignment 8n+6).
func homeAddr() *layers.IPv6DestinationOption {
	return dOpt(0xc9, net.ParseIP("2001:db8:300::5"), 8, 6)
}

// routing6 is a Routing header of type typ with the given addresses.
func routing6(typ, left uint8, addrs ...net.IP) *layers.IPv6Routing {
	r := &layers.IPv6Routing{RoutingType: typ, SegmentsLeft: left, Reserved: make([]byte, 4)}
	for _, a := range addrs {
		r.Data = append(r.Data, a.To16()...)
	}
	return r
}

// build6 serializes ip and ls (extension headers, then TCP or UDP, then
// optionally a gopacket.Payload) with gopacket, chaining the Next Header
// fields, into a buffer with Headroom spare capacity. Checksums are fixed
// afterwards so that a Routing header's final destination counts.
func build6(tb testing.TB, ip *layers.IPv6, ls ...gopacket.SerializableLayer) []byte {
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
		case *ahHdr:
			p, next = layers.IPProtocolAH, &v.next
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
	out := clone(sb.Bytes())
	fixChecksum6(out)
	return out
}

// fixChecksum6 sets the TCP or UDP checksum of pkt to what gopacket computes
// (final destination included, RFC 8200 §8.1; UDP's 0 sent as 0xffff).
// Only the checksum's offset comes from ParseIPv6.
func fixChecksum6(pkt []byte) {
	ip, res := ParseIPv6(pkt)
	if res != Unchanged || ip.Frag {
		return
	}
	switch {
	case ip.Proto == protoTCP && ip.Off+20 <= ip.TotalLen:
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
		if ip.Proto != protoTCP || ip.Off+20 > ip.TotalLen || l.SetNetworkLayerForChecksum(ip6) != nil {
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

// decoded6 is an IPv6 packet as gopacket sees it.
type decoded6 struct {
	ip    *layers.IPv6
	hbh   *layers.IPv6HopByHop
	dests []*layers.IPv6Destination
	tcp   *layers.TCP
	udp   *layers.UDP
	upper []byte // upper-layer header and data
}

// finalDest returns the Destination Options header right before the upper
// layer, or nil.
func (d decoded6) finalDest() *layers.IPv6Destination {
	if len(d.dests) == 0 {
		return nil
	}
	last := d.dests[len(d.dests)-1]
	if len(last.Payload) != len(d.upper) {
		return nil
	}
	return last
}

// decode6 parses pkt with gopacket and fails unless it decodes cleanly as
// IPv6 with every checksum valid and a Payload Length matching len(pkt).
func decode6(tb testing.TB, pkt []byte) decoded6 {
	tb.Helper()
	d, err := gopacketDecode6(pkt)
	if err != "" {
		tb.Fatalf("gopacket: %s", err)
	}
	return d
}

func gopacketDecode6(pkt []byte) (decoded6, string) {
	var d decoded6
	p := gopacket.NewPacket(pkt, layers.LayerTypeIPv6, gopacket.DecodeOptions{})
	if el := p.ErrorLayer(); el != nil {
		return d, el.Error().Error()
	}
	for _, l := range p.Layers() {
		switch v := l.(type) {
		case *layers.IPv6:
			if d.ip == nil {
				d.ip = v
			}
		case *layers.IPv6HopByHop:
			d.hbh = v
		case *layers.IPv6Destination:
			d.dests = append(d.dests, v)
		case *layers.TCP:
			d.tcp = v
		case *layers.UDP:
			d.udp = v
		}
	}
	if d.ip == nil {
		return d, "not IPv6"
	}
	switch {
	case d.tcp != nil:
		if d.tcp.SetNetworkLayerForChecksum(d.ip) != nil {
			return d, "checksum layer"
		}
		d.upper = append(append([]byte{}, d.tcp.Contents...), d.tcp.Payload...)
	case d.udp != nil:
		if d.udp.SetNetworkLayerForChecksum(d.ip) != nil {
			return d, "checksum layer"
		}
		d.upper = append(append([]byte{}, d.udp.Contents...), d.udp.Payload...)
	}
	if err, bad := p.VerifyChecksums(); err != nil || len(bad) != 0 {
		return d, "checksums do not verify"
	}
	if int(d.ip.Length)+40 != len(pkt) {
		return d, "Payload Length does not match the packet"
	}
	return d, ""
}

// gopacketValid6 reports whether gopacket decodes pkt as IPv6/TCP or
// IPv6/UDP without error and with valid checksums.
func gopacketValid6(pkt []byte) bool {
	d, err := gopacketDecode6(pkt)
	return err == "" && (d.tcp != nil || d.udp != nil)
}

// checkRewritten6 is checkRewritten for IPv6: gopacket decodes both, the
// extension headers and the fixed header (but Payload Length) are the
// same, the TCP header differs only in its options as RFC 7974 wants.
func checkRewritten6(tb testing.TB, before, after []byte, want []byte) decoded6 {
	tb.Helper()
	b, a := decode6(tb, before), decode6(tb, after)
	if a.tcp == nil || b.tcp == nil {
		tb.Fatal("not TCP")
	}
	checkTCPRewritten(tb, b.tcp, a.tcp, want)
	ipHeadersSame(tb, b.ip, a.ip)
	ext := len(before) - len(b.upper)
	if !bytes.Equal(before[40:ext], after[40:len(after)-len(a.upper)]) {
		tb.Errorf("extension headers changed")
	}
	if int(a.tcp.DataOffset)*4+len(a.tcp.Payload)+ext != len(after) {
		tb.Errorf("data offset %d inconsistent with length %d", a.tcp.DataOffset, len(after))
	}
	if !TCPChecksumOK6(after) {
		tb.Errorf("own checksum verification fails where gopacket's passes")
	}
	return a
}

func ipHeadersSame(tb testing.TB, b, a *layers.IPv6) {
	tb.Helper()
	if b.TrafficClass != a.TrafficClass || b.FlowLabel != a.FlowLabel || b.HopLimit != a.HopLimit ||
		!b.SrcIP.Equal(a.SrcIP) || !b.DstIP.Equal(a.DstIP) {
		tb.Errorf("IPv6 header fields changed")
	}
}
