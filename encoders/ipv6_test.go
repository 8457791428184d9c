package encoders

import (
	"bytes"
	"encoding/binary"
	"math/rand/v2"
	"net"
	"testing"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"

	"github.com/natreveal/natreveal/packet"
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

func TestParseIPv6(t *testing.T) {
	syn := func() *layers.TCP { return synHdr(linuxSYN()...) }
	frag := &layers.IPv6Fragment{MoreFragments: true, Identification: 7}
	for _, tc := range []struct {
		name string
		pkt  []byte
		want IPv6 // Src, Dst, HopLimit, PayloadLen, TotalLen filled in below
	}{
		{"TCP", build6(t, ip6Hdr(), syn()), IPv6{NextHdr: 6, Proto: 6, Off: 40, ProtoField: 6}},
		{"UDP", build6(t, ip6Hdr(), &layers.UDP{SrcPort: 1, DstPort: 2}, gopacket.Payload("x")), IPv6{NextHdr: 17, Proto: 17, Off: 40, ProtoField: 6}},
		{"Hop-by-Hop", build6(t, ip6Hdr(), hbh6(), syn()), IPv6{NextHdr: 0, Proto: 6, Off: 48, ProtoField: 40}},
		{"final Destination Options", build6(t, ip6Hdr(), hbh6(), dest6(dOpt(0x11, []byte{1, 2, 3})), syn()),
			IPv6{NextHdr: 0, Proto: 6, Off: 56, ProtoField: 48, DestOff: 48, DestField: 40}},
		{"Destination Options before Routing", build6(t, ip6Hdr(), dest6(dOpt(0x11, []byte{1})), routing6(2, 0, mid6), syn()),
			IPv6{NextHdr: 60, Proto: 6, Off: 72, ProtoField: 48}},
		{"Routing with segments left", build6(t, ip6Hdr(), routing6(2, 1, mid6), dest6(dOpt(0x11, nil)), syn()),
			IPv6{NextHdr: 43, Proto: 6, Off: 72, ProtoField: 64, DestOff: 64, DestField: 40, RoutingOff: 40}},
		{"fragment", build6(t, ip6Hdr(), hbh6(), frag, syn()), IPv6{NextHdr: 0, Proto: 6, Off: 56, ProtoField: 48, Frag: true}},
		{"AH", build6(t, ip6Hdr(), &ahHdr{icv: 12}, syn()), IPv6{NextHdr: 51, Proto: 6, Off: 64, ProtoField: 40, AH: true}},
		{"ESP is an upper layer", func() []byte {
			p := build6(t, ip6Hdr(), syn())
			p[6] = 50
			return p
		}(), IPv6{NextHdr: 50, Proto: 50, Off: 40, ProtoField: 6}},
		{"No Next Header, empty", func() []byte {
			p := build6(t, ip6Hdr(), syn())[:40]
			p[4], p[5], p[6] = 0, 0, 59
			return p
		}(), IPv6{NextHdr: 59, Proto: 59, Off: 40, ProtoField: 6}},
		{"trailing bytes", append(build6(t, ip6Hdr(), syn()), 0xee, 0xee), IPv6{NextHdr: 6, Proto: 6, Off: 40, ProtoField: 6}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ip, res := ParseIPv6(tc.pkt)
			if res != Unchanged {
				t.Fatalf("%v", res)
			}
			w := tc.want
			w.PayloadLen = int(binary.BigEndian.Uint16(tc.pkt[4:6]))
			w.TotalLen, w.HopLimit = 40+w.PayloadLen, 64
			copy(w.Src[:], src6)
			copy(w.Dst[:], dst6)
			if ip != w {
				t.Errorf("got  %+v\nwant %+v", ip, w)
			}
			if ip.IsFragment() != w.Frag {
				t.Error("IsFragment")
			}
			// gopacket puts the upper layer at the same offset.
			if ip.Proto == 6 && !ip.Frag {
				d := decode6(t, tc.pkt[:ip.TotalLen])
				if ip.Off != ip.TotalLen-len(d.upper) {
					t.Errorf("upper layer at %d, gopacket %d", ip.Off, ip.TotalLen-len(d.upper))
				}
				if tcp, res := ParseTCP6(tc.pkt, ip); res != Unchanged || tcp.Off != ip.Off || tcp.MSS != 1460 || tcp.Flags != FlagSYN || tcp.HdrLen != 40 {
					t.Errorf("ParseTCP6: %v %+v", res, tcp)
				}
			}
		})
	}
}

func TestParseIPv6Rejects(t *testing.T) {
	syn := build6(t, ip6Hdr(), synHdr(linuxSYN()...))
	withHBH := build6(t, ip6Hdr(), hbh6(), synHdr(linuxSYN()...))
	withAH := build6(t, ip6Hdr(), &ahHdr{icv: 4}, synHdr())
	mod := func(p []byte, f func(b []byte)) []byte { b := bytes.Clone(p); f(b); return b }
	setLen := func(b []byte, n int) { binary.BigEndian.PutUint16(b[4:], uint16(n)) }
	for _, tc := range []struct {
		name string
		pkt  []byte
		want Result
	}{
		{"empty", nil, Truncated},
		{"39 bytes", syn[:39], Truncated},
		{"version 4", mod(syn, func(b []byte) { b[0] = 0x45 }), BadHeader},
		{"payload past the packet", syn[:79], Truncated},
		{"extension header past the payload", mod(withHBH, func(b []byte) { b[41] = 200 }), Truncated},
		{"extension header cut in its first 2 bytes", mod(withHBH, func(b []byte) { setLen(b, 1) }), Truncated},
		{"Hop-by-Hop not first", mod(withHBH, func(b []byte) { b[40] = 0 }), BadHeader},
		{"AH shorter than 12 bytes", mod(withAH, func(b []byte) { b[41] = 0 }), BadHeader},
		{"AH past the payload", mod(withAH, func(b []byte) { b[41] = 100 }), Truncated},
		{"jumbogram", mod(withHBH, func(b []byte) { setLen(b, 0) }), BadHeader},
		{"Fragment header cut", mod(syn, func(b []byte) { b[6] = 44; setLen(b, 7) }), Truncated},
	} {
		if _, res := ParseIPv6(tc.pkt); res != tc.want {
			t.Errorf("%s: %v, want %v", tc.name, res, tc.want)
		}
	}
	ip, _ := ParseIPv6(syn)
	for _, tc := range []struct {
		name string
		pkt  []byte
		ip   IPv6
		want Result
	}{
		{"UDP", syn, IPv6{Proto: 17, Off: 40, TotalLen: 80}, NotTCP},
		{"fragment", syn, IPv6{Proto: 6, Off: 40, TotalLen: 80, Frag: true}, Fragment},
		{"bogus offset", syn, IPv6{Proto: 6, Off: 12, TotalLen: 80}, BadHeader},
		{"bogus length", syn, IPv6{Proto: 6, Off: 40, TotalLen: 1000}, BadHeader},
		{"segment < 20", mod(syn, func(b []byte) { setLen(b, 19) }), IPv6{Proto: 6, Off: 40, TotalLen: 59}, Truncated},
		{"data offset 4", mod(syn, func(b []byte) { b[52] = 0x40 }), ip, BadHeader},
	} {
		if _, res := ParseTCP6(tc.pkt, tc.ip); res != tc.want {
			t.Errorf("ParseTCP6 %s: %v, want %v", tc.name, res, tc.want)
		}
	}
}

func TestTCPChecksumOK6(t *testing.T) {
	for _, tc := range []struct {
		name string
		pkt  []byte
		ok   bool
	}{
		{"plain, odd payload", build6(t, ip6Hdr(), dataHdr(oNOP(), oNOP(), oTS()), gopacket.Payload("odd")), true},
		{"Hop-by-Hop and Destination Options", build6(t, ip6Hdr(), hbh6(), dest6(homeAddr()), synHdr()), true},
		{"Routing type 2, segments left", build6(t, ip6Hdr(), routing6(2, 1, mid6), synHdr()), true},
		{"Routing type 0, segments left", build6(t, ip6Hdr(), routing6(0, 2, mid6, src6, mid6), synHdr()), true},
		{"Routing type 4, segments left", build6(t, ip6Hdr(), routing6(4, 1, mid6, dst6), synHdr()), true},
		{"Routing type 2, none left", build6(t, ip6Hdr(), routing6(2, 0, mid6), synHdr()), true},
		{"Routing type 3, segments left: unknown final address", build6(t, ip6Hdr(), routing6(3, 1, mid6), synHdr()), false},
		{"UDP", build6(t, ip6Hdr(), &layers.UDP{SrcPort: 1, DstPort: 2}), false},
		{"fragment", build6(t, ip6Hdr(), &layers.IPv6Fragment{}, synHdr()), false},
	} {
		pkt := tc.pkt
		if got := TCPChecksumOK6(pkt); got != tc.ok {
			t.Errorf("%s: %v", tc.name, got)
		}
		if !tc.ok {
			continue
		}
		decode6(t, pkt) // gopacket agrees
		// Covered: source, final destination, the segment (RFC 8200 §8.1).
		ip, _ := ParseIPv6(pkt)
		dst, _ := finalDst(pkt, ip)
		dstOff := cap(pkt) - cap(dst)
		for i := 8; i < len(pkt); i++ {
			if i >= 24 && !(i >= dstOff && i < dstOff+16) && i < ip.Off {
				continue
			}
			bad := clone(pkt)
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
			ls = append(ls, hbh6())
		}
		if r.IntN(2) == 0 {
			ls = append(ls, routing6(uint8(r.IntN(3)*2), uint8(r.IntN(2)), mid6, dst6))
		}
		if r.IntN(2) == 0 {
			ls = append(ls, dest6(dOpt(0x11, pay[:min(len(pay), 9)])))
		}
		ls = append(ls, dataHdr(oNOP(), oNOP(), oTS()), gopacket.Payload(pay))
		pkt := build6(t, ip6Hdr(), ls...)
		pkt[len(pkt)-1] ^= byte(r.IntN(2)) // sometimes wrong
		if got, want := TCPChecksumOK6(pkt), gopacketValid6(pkt); got != want {
			t.Fatalf("%x: own %v, gopacket %v", pkt, got, want)
		}
	}
}

func TestAddHostIDOption6(t *testing.T) {
	pay := bytes.Repeat([]byte("natreveal"), 111) // 999 bytes
	tests := []struct {
		name     string
		ls       []gopacket.SerializableLayer
		idLen    int
		optBytes int
		stripped bool
	}{
		{"plain SYN, 2-byte id", []gopacket.SerializableLayer{synHdr()}, 2, 8, false},
		{"plain SYN, 4-byte id", []gopacket.SerializableLayer{synHdr()}, 4, 8, false},
		{"Linux SYN", []gopacket.SerializableLayer{synHdr(linuxSYN()...)}, 4, 28, false},
		{"Hop-by-Hop", []gopacket.SerializableLayer{hbh6(), synHdr(linuxSYN()...)}, 4, 28, false},
		{"Destination Options", []gopacket.SerializableLayer{hbh6(), dest6(homeAddr()), synHdr(linuxSYN()...)}, 2, 28, false},
		{"Routing, segments left", []gopacket.SerializableLayer{routing6(2, 1, mid6), synHdr(linuxSYN()...)}, 4, 28, false},
		{"forged HOST_ID", []gopacket.SerializableLayer{hbh6(), synHdr(append(linuxSYN(), oNOP(), oNOP(), oHostID(0xbe, 0xef))...)}, 4, 28, true},
		{"two forged HOST_IDs", []gopacket.SerializableLayer{synHdr(oHostID(9, 9), oMSS(1400), oHostID(8, 8, 8, 8))}, 4, 12, true},
		{"exactly 40 bytes after insertion", []gopacket.SerializableLayer{synHdr(append(linuxSYN(), oTFO(10))...)}, 4, 40, false},
		{"40 bytes full, forged inside", []gopacket.SerializableLayer{synHdr(append(linuxSYN(), oTFO(10), oHostID(1, 2, 3, 4))...)}, 4, 40, true},
		{"data segment", []gopacket.SerializableLayer{dest6(dOpt(0x11, []byte{1})), dataHdr(oNOP(), oNOP(), oTS()), gopacket.Payload(pay)}, 4, 20, false},
		{"data segment, odd payload, forged", []gopacket.SerializableLayer{dataHdr(oNOP(), oNOP(), oTS(), oHostID(7, 7)), gopacket.Payload(pay[:333])}, 2, 20, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			const id = 0xa1b2c3d4
			pkt := build6(t, ip6Hdr(), tc.ls...)
			before := clone(pkt)
			n, res, stripped := AddHostIDOption6(pv(pkt, len(pkt)), pkt, id, tc.idLen, 1500)
			if res != Written || stripped != tc.stripped {
				t.Fatalf("got %v stripped=%v, want written stripped=%v", res, stripped, tc.stripped)
			}
			after := pkt[:n]
			a := checkRewritten6(t, before, after, wantHostID(id, tc.idLen))
			if got := int(a.tcp.DataOffset)*4 - 20; got != tc.optBytes {
				t.Errorf("option bytes %d, want %d", got, tc.optBytes)
			}
			if gotID, gotLen, ok := HostIDOption6(after); !ok || gotLen != tc.idLen || gotID != id&(1<<(8*tc.idLen)-1) {
				t.Errorf("HostIDOption6 = %#x, %d, %v", gotID, gotLen, ok)
			}
			again := clone(after)
			if n2, res, _ := AddHostIDOption6(pv(again, len(again)), again, id, tc.idLen, 1500); res != Unchanged || n2 != n || !bytes.Equal(again, after) {
				t.Errorf("second pass: %v", res)
			}
			if n3, res := StripHostIDOption6(pv(again, len(again)), again); res != Written {
				t.Errorf("strip: %v", res)
			} else {
				checkRewritten6(t, before, again[:n3], nil)
			}
		})
	}
}

func TestAddHostIDOption6Limits(t *testing.T) {
	syn := build6(t, ip6Hdr(), hbh6(), synHdr(linuxSYN()...)) // 88 bytes
	t.Run("MTU", func(t *testing.T) {
		for _, tc := range []struct {
			mtu  int
			want Result
		}{{88, OverMTU}, {95, OverMTU}, {96, Written}, {0, Written}, {-1, Written}} {
			pkt := clone(syn)
			n, res, stripped := AddHostIDOption6(pv(pkt, len(pkt)), pkt, 7, 4, tc.mtu)
			if res != tc.want || stripped {
				t.Errorf("mtu %d: %v stripped=%v, want %v", tc.mtu, res, stripped, tc.want)
			}
			if res != Written && (n != len(syn) || !bytes.Equal(pkt, syn)) {
				t.Errorf("mtu %d: packet changed", tc.mtu)
			}
		}
	})
	t.Run("Payload Length limit", func(t *testing.T) {
		big := build6(t, ip6Hdr(), dataHdr(), gopacket.Payload(make([]byte, 0xffff-20-4)))
		pkt := clone(big)
		if _, res, _ := AddHostIDOption6(pv(pkt, len(pkt)), pkt, 7, 4, 0); res != OverMTU || !bytes.Equal(pkt, big) {
			t.Errorf("%v", res)
		}
		big = build6(t, ip6Hdr(), dataHdr(), gopacket.Payload(make([]byte, 0xffff-20-8)))
		pkt = clone(big)
		if n, res, _ := AddHostIDOption6(pv(pkt, len(pkt)), pkt, 7, 4, 0); res != Written || n != 0xffff+40 {
			t.Errorf("to the limit: %v %d", res, n)
		} else {
			checkRewritten6(t, big, pkt[:n], wantHostID(7, 4))
		}
	})
	t.Run("MTU with forged option: still stripped", func(t *testing.T) {
		orig := build6(t, ip6Hdr(), synHdr(oMSS(1400), oHostID()))
		pkt := clone(orig)
		n, res, stripped := AddHostIDOption6(pv(pkt, len(pkt)), pkt, 7, 4, len(orig))
		if res != OverMTU || !stripped || n != len(orig)-4 {
			t.Fatalf("%v stripped=%v n=%d", res, stripped, n)
		}
		checkRewritten6(t, orig, pkt[:n], nil)
	})
	t.Run("buffer capacity", func(t *testing.T) {
		pkt := clone(syn)[: len(syn) : len(syn)+7]
		if n, res, stripped := AddHostIDOption6(pv(pkt, len(pkt)), pkt, 7, 4, 0); res != NoBufferRoom || stripped || n != len(syn) || !bytes.Equal(pkt, syn) {
			t.Errorf("cap+7: %v stripped=%v", res, stripped)
		}
		pkt = clone(syn)[: len(syn) : len(syn)+8]
		if n, res, _ := AddHostIDOption6(pv(pkt, len(pkt)), pkt, 7, 4, 0); res != Written {
			t.Errorf("cap+8: %v", res)
		} else {
			checkRewritten6(t, syn, pkt[:n], wantHostID(7, 4))
		}
	})
	t.Run("buffer capacity with forged option: still stripped", func(t *testing.T) {
		orig := build6(t, ip6Hdr(), hbh6(), synHdr(append(linuxSYN(), oHostID())...))
		pkt := clone(orig)[:len(orig):len(orig)] // ours needs 4 more bytes
		n, res, stripped := AddHostIDOption6(pv(pkt, len(pkt)), pkt, 7, 4, 0)
		if res != NoBufferRoom || !stripped || n != len(orig)-4 {
			t.Fatalf("%v stripped=%v n=%d", res, stripped, n)
		}
		checkRewritten6(t, orig, pkt[:n], nil)
	})
	t.Run("option space full", func(t *testing.T) {
		full := build6(t, ip6Hdr(), synHdr(append(linuxSYN(), oTFO(16), oNOP(), oNOP())...))
		pkt := clone(full)
		if n, res, stripped := AddHostIDOption6(pv(pkt, len(pkt)), pkt, 7, 2, 0); res != NoOptionSpace || stripped || n != len(full) || !bytes.Equal(pkt, full) {
			t.Errorf("%v stripped=%v", res, stripped)
		}
		forged := build6(t, ip6Hdr(), synHdr(append(linuxSYN(), oTFO(12), oHostID(0xde, 0xad))...))
		pkt = clone(forged)
		n, res, stripped := AddHostIDOption6(pv(pkt, len(pkt)), pkt, 7, 4, 0)
		if res != NoOptionSpace || !stripped {
			t.Fatalf("forged: %v stripped=%v", res, stripped)
		}
		checkRewritten6(t, forged, pkt[:n], nil)
	})
	t.Run("trailing bytes dropped", func(t *testing.T) {
		pkt := append(clone(syn), 0xee, 0xee, 0xee)
		n, res, _ := AddHostIDOption6(pv(pkt, len(pkt)), pkt, 7, 4, 0)
		if res != Written || n != len(syn)+8 {
			t.Fatalf("%v n=%d", res, n)
		}
		checkRewritten6(t, syn, pkt[:n], wantHostID(7, 4))
	})
}

func TestAddHostIDOption6Rejects(t *testing.T) {
	syn := build6(t, ip6Hdr(), synHdr(linuxSYN()...))
	frag := build6(t, ip6Hdr(), &layers.IPv6Fragment{MoreFragments: true, Identification: 1}, synHdr(linuxSYN()...))
	atomic := build6(t, ip6Hdr(), &layers.IPv6Fragment{Identification: 1}, synHdr(linuxSYN()...))
	ah := build6(t, ip6Hdr(), &ahHdr{icv: 12}, synHdr(linuxSYN()...))
	udp := build6(t, ip6Hdr(), &layers.UDP{SrcPort: 1, DstPort: 2}, gopacket.Payload("hello"))
	v4 := build(t, ipHdr(), synHdr(linuxSYN()...), nil)
	for _, tc := range []struct {
		name  string
		pkt   []byte
		n     int
		idLen int
		want  Result
	}{
		{"fragment", frag, len(frag), 4, Fragment},
		{"atomic fragment", atomic, len(atomic), 4, Fragment},
		{"AH", ah, len(ah), 4, NotTCP},
		{"UDP", udp, len(udp), 4, NotTCP},
		{"IPv4", v4, len(v4), 4, BadHeader},
		{"truncated", syn[:70], 70, 4, Truncated},
		{"negative n", syn, -1, 4, Truncated},
		{"n > cap", syn[:10:10], 80, 4, Truncated},
		{"id length 3", syn, len(syn), 3, BadHeader},
	} {
		before := clone(tc.pkt)
		n, res, stripped := AddHostIDOption6(pv(tc.pkt, tc.n), tc.pkt, 1, tc.idLen, 0)
		if res != tc.want || stripped || n != tc.n || !bytes.Equal(tc.pkt, before) {
			t.Errorf("%s: got %v stripped=%v n=%d, want %v, unchanged", tc.name, res, stripped, n, tc.want)
		}
		if res := LowerMSS6(pv(tc.pkt, len(tc.pkt)), tc.pkt, 8); tc.n == len(tc.pkt) && tc.idLen == 4 && res != tc.want {
			t.Errorf("%s: LowerMSS6 %v", tc.name, res)
		}
	}
	if _, _, ok := HostIDOption6(frag); ok {
		t.Error("HostIDOption6 on a fragment")
	}
	if _, _, ok := HostIDOption6(udp); ok {
		t.Error("HostIDOption6 on UDP")
	}
}

// TestAddHostIDOption6BadOptions pins which result wins for malformed TCP
// options (RFC 9293 §3.1), before or after MSS, with and without AH: the
// checks ParseTCP6 makes come before AH's NotTCP; it walks the whole list.
func TestAddHostIDOption6BadOptions(t *testing.T) {
	exp := func() *layers.TCP { // MSS, then kind 30 with 2 data bytes, then NOP NOP
		return synHdr(oMSS(1400), layers.TCPOption{OptionType: 30, OptionData: []byte{1, 2}}, oNOP(), oNOP())
	}
	expFirst := func() *layers.TCP { // kind 30 with 2 data bytes, then MSS
		return synHdr(layers.TCPOption{OptionType: 30, OptionData: []byte{1, 2}}, oMSS(1400))
	}
	// patched6 builds ls and applies edit to the TCP header's bytes.
	patched6 := func(edit func(tcp []byte), ls ...gopacket.SerializableLayer) []byte {
		pkt := build6(t, ip6Hdr(), ls...)
		ip, res := ParseIPv6(pkt)
		if res != Unchanged {
			t.Fatal(res)
		}
		edit(pkt[ip.Off:])
		return pkt
	}
	ah := func() *ahHdr { return &ahHdr{next: layers.IPProtocolTCP, icv: 12} }
	for _, tc := range []struct {
		name string
		pkt  []byte
		want Result
	}{
		{"length 1 before MSS", patched6(func(b []byte) { b[21] = 1 }, expFirst()), BadHeader},
		{"length 1 after MSS", patched6(func(b []byte) { b[25] = 1 }, exp()), BadHeader},
		{"overrun after MSS", patched6(func(b []byte) { b[25] = 9 }, exp()), BadHeader},
		{"Hop-by-Hop, length 0 after MSS", patched6(func(b []byte) { b[25] = 0 }, hbh6(), exp()), BadHeader},
		{"AH, length 1 before MSS", patched6(func(b []byte) { b[21] = 1 }, ah(), expFirst()), BadHeader},
		{"AH, length 1 after MSS", patched6(func(b []byte) { b[25] = 1 }, ah(), exp()), BadHeader},
		{"AH, data offset 4", patched6(func(b []byte) { b[12] = 4 << 4 }, ah(), exp()), BadHeader},
		{"AH, data offset past segment", patched6(func(b []byte) { b[12] = 15 << 4 }, ah(), exp()), Truncated},
		{"AH, UDP", build6(t, ip6Hdr(), &ahHdr{next: layers.IPProtocolUDP, icv: 4}, &layers.UDP{SrcPort: 1, DstPort: 2}), NotTCP},
		{"AH, fragment", build6(t, ip6Hdr(), &ahHdr{next: layers.IPProtocolIPv6Fragment, icv: 4}, &layers.IPv6Fragment{MoreFragments: true, Identification: 1}, exp()), Fragment},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := clone(tc.pkt)
			n, res, stripped := AddHostIDOption6(pv(tc.pkt, len(tc.pkt)), tc.pkt, 1, 4, 0)
			if res != tc.want || stripped || n != len(before) || !bytes.Equal(tc.pkt, before) {
				t.Errorf("got %v stripped=%v n=%d, want %v, unchanged", res, stripped, n, tc.want)
			}
			if n, res := StripHostIDOption6(pv(tc.pkt, len(tc.pkt)), tc.pkt); res != tc.want || n != len(before) || !bytes.Equal(tc.pkt, before) {
				t.Errorf("strip: got %v n=%d, want %v, unchanged", res, n, tc.want)
			}
		})
	}
}

func TestLowerMSS6(t *testing.T) {
	for _, tc := range []lowerMSSCase{
		{"SYN", synHdr(oMSS(1440), oSACKPerm(), oTS(), oNOP(), oWS(7)), 8, Written, 1432},
		{"SYN-ACK", synAck(oMSS(1440)), 40, Written, 1400},
		{"odd offset", synHdr(oNOP(), oMSS(0x0600), oWS(7)), 1, Written, 0x05ff},
		{"floor", synHdr(oMSS(1300)), 200, Written, MinMSS6},
		{"at floor", synHdr(oMSS(MinMSS6)), 8, Unchanged, MinMSS6},
		{"not SYN", dataHdr(oMSS(1440)), 8, Unchanged, 1440},
	} {
		t.Run(tc.name, func(t *testing.T) {
			pkt := build6(t, ip6Hdr(), hbh6(), tc.tcp)
			before := clone(pkt)
			if res := LowerMSS6(pv(pkt, len(pkt)), pkt, tc.delta); res != tc.want {
				t.Fatalf("%v, want %v", res, tc.want)
			}
			d := decode6(t, pkt)
			var mss uint16
			for _, o := range d.tcp.Options {
				if o.OptionType == layers.TCPOptionKindMSS {
					mss = binary.BigEndian.Uint16(o.OptionData)
				}
			}
			if mss != tc.mss {
				t.Errorf("MSS %d, want %d", mss, tc.mss)
			}
			if tc.want == Unchanged && !bytes.Equal(pkt, before) {
				t.Error("packet changed")
			}
			if !TCPChecksumOK6(pkt) {
				t.Error("own checksum check fails")
			}
		})
	}
}

func BenchmarkParseIPv6(b *testing.B) {
	pkt := build6(b, ip6Hdr(), hbh6(), dest6(homeAddr()), synHdr(linuxSYN()...))
	b.ReportAllocs()
	for b.Loop() {
		ip, res := ParseIPv6(pkt)
		if res != Unchanged {
			b.Fatal(res)
		}
		if _, res := ParseTCP6(pkt, ip); res != Unchanged {
			b.Fatal(res)
		}
	}
}

func BenchmarkAddHostIDOption6(b *testing.B) {
	var view packet.View // on the stack: a caller keeps its view there
	orig := build6(b, ip6Hdr(), synHdr(linuxSYN()...))
	buf := make([]byte, len(orig), len(orig)+Headroom)
	b.ReportAllocs()
	for b.Loop() {
		copy(buf[:len(orig)], orig)
		if _, res, _ := AddHostIDOption6(pvAt(&view, buf, len(orig)), buf, 0xa1b2c3d4, 4, 1500); res != Written {
			b.Fatal(res)
		}
	}
}

func BenchmarkAddHostIDOption6Data(b *testing.B) {
	var view packet.View                                                                              // on the stack: a caller keeps its view there
	orig := build6(b, ip6Hdr(), dataHdr(oNOP(), oNOP(), oTS()), gopacket.Payload(make([]byte, 1420))) // 1500 after
	buf := make([]byte, len(orig), len(orig)+Headroom)
	b.ReportAllocs()
	b.SetBytes(int64(len(orig)))
	for b.Loop() {
		copy(buf[:len(orig)], orig)
		if _, res, _ := AddHostIDOption6(pvAt(&view, buf, len(orig)), buf, 0xa1b2c3d4, 4, 1500); res != Written {
			b.Fatal(res)
		}
	}
}

func BenchmarkTCPChecksumOK6(b *testing.B) {
	pkt := build6(b, ip6Hdr(), dataHdr(oNOP(), oNOP(), oTS()), gopacket.Payload(make([]byte, 1428)))
	b.ReportAllocs()
	b.SetBytes(int64(len(pkt)))
	for b.Loop() {
		if !TCPChecksumOK6(pkt) {
			b.Fatal("bad checksum")
		}
	}
}

// TestZeroAllocs6 asserts that no IPv6 hot function allocates.
func TestZeroAllocs6(t *testing.T) {
	var view packet.View // on the stack: a caller keeps its view there
	syn := build6(t, ip6Hdr(), hbh6(), synHdr(append(linuxSYN(), oHostID(9, 9))...))
	data := build6(t, ip6Hdr(), dataHdr(oNOP(), oNOP(), oTS()), gopacket.Payload(make([]byte, 1400)))
	buf := make([]byte, 0, 2000)
	ip, _ := ParseIPv6(syn)
	for name, f := range map[string]func(){
		"ParseIPv6": func() { ParseIPv6(syn) },
		"ParseTCP6": func() { ParseTCP6(syn, ip) },
		"AddHostIDOption6": func() {
			buf = append(buf[:0], syn...)
			AddHostIDOption6(pvAt(&view, buf, len(buf)), buf, 0x01020304, 4, 1500)
		},
		"AddHostIDOption6 no room": func() {
			buf = append(buf[:0], data...)
			AddHostIDOption6(pvAt(&view, buf[:len(data):len(data)], len(data)), buf[:len(data):len(data)], 0x0102, 2, 0)
		},
		"StripHostIDOption6": func() {
			buf = append(buf[:0], syn...)
			StripHostIDOption6(pvAt(&view, buf, len(buf)), buf)
		},
		"HostIDOption6":  func() { HostIDOption6(syn) },
		"TCPChecksumOK6": func() { TCPChecksumOK6(data) },
		"LowerMSS6": func() {
			buf = append(buf[:0], syn...)
			LowerMSS6(pvAt(&view, buf, len(buf)), buf, 8)
		},
	} {
		if a := testing.AllocsPerRun(100, f); a != 0 {
			t.Errorf("%s: %v allocs/op", name, a)
		}
	}
}
