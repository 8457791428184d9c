package packet

import (
	"net"
	"testing"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
)

// Packets are built and checked with gopacket, an independent encoder and
// decoder.

func serialize(tb testing.TB, ls ...gopacket.SerializableLayer) []byte {
	tb.Helper()
	b := gopacket.NewSerializeBuffer()
	if err := gopacket.SerializeLayers(b, gopacket.SerializeOptions{FixLengths: true, ComputeChecksums: true}, ls...); err != nil {
		tb.Fatal(err)
	}
	return b.Bytes()
}

func tcpSYN() *layers.TCP {
	return &layers.TCP{SrcPort: 40000, DstPort: 443, Seq: 0x01020304, SYN: true, Window: 64240,
		Options: []layers.TCPOption{{OptionType: layers.TCPOptionKindMSS, OptionLength: 4, OptionData: []byte{0x05, 0xb4}}}}
}

func seedPackets(tb testing.TB) [][]byte {
	ip4 := func(p layers.IPProtocol) *layers.IPv4 {
		return &layers.IPv4{Version: 4, TTL: 64, Id: 0x1234, Flags: layers.IPv4DontFragment, Protocol: p,
			SrcIP: net.IP{100, 64, 0, 7}, DstIP: net.IP{198, 51, 100, 10}}
	}
	ip6 := func(p layers.IPProtocol) *layers.IPv6 {
		return &layers.IPv6{Version: 6, HopLimit: 64, NextHeader: p,
			SrcIP: net.ParseIP("2001:db8::7"), DstIP: net.ParseIP("2001:db8:1::10")}
	}
	var out [][]byte
	t4 := tcpSYN()
	i4 := ip4(layers.IPProtocolTCP)
	t4.SetNetworkLayerForChecksum(i4)
	out = append(out, serialize(tb, i4, t4))
	u4 := &layers.UDP{SrcPort: 5353, DstPort: 53}
	iu4 := ip4(layers.IPProtocolUDP)
	u4.SetNetworkLayerForChecksum(iu4)
	out = append(out, serialize(tb, iu4, u4, gopacket.Payload("hello")))
	o4 := ip4(layers.IPProtocolTCP)
	o4.Options = []layers.IPv4Option{{OptionType: 0x1e, OptionLength: 6, OptionData: []byte{1, 2, 3, 4}}}
	t4o := tcpSYN()
	t4o.SetNetworkLayerForChecksum(o4)
	out = append(out, serialize(tb, o4, t4o))
	t6 := tcpSYN()
	i6 := ip6(layers.IPProtocolTCP)
	t6.SetNetworkLayerForChecksum(i6)
	out = append(out, serialize(tb, i6, t6))
	u6 := &layers.UDP{SrcPort: 5353, DstPort: 53}
	iu6 := ip6(layers.IPProtocolUDP)
	u6.SetNetworkLayerForChecksum(iu6)
	out = append(out, serialize(tb, iu6, u6, gopacket.Payload("hi")))
	d6 := ip6(layers.IPProtocolIPv6Destination)
	dst := &layers.IPv6Destination{Options: []*layers.IPv6DestinationOption{{OptionType: 0x1e, OptionLength: 4, OptionData: []byte{1, 2, 3, 4}}}}
	dst.NextHeader = layers.IPProtocolTCP
	td := tcpSYN()
	td.SetNetworkLayerForChecksum(d6)
	out = append(out, serialize(tb, d6, dst, td))
	return out
}

func TestParseView(t *testing.T) {
	pk := seedPackets(t)
	for i, want := range []struct {
		version, proto uint8
		l4Off, total   int
	}{{4, 6, 20, 44}, {4, 17, 20, 33}, {4, 6, 28, 52}, {6, 6, 40, 64}, {6, 17, 40, 50}, {6, 6, 48, 72}} {
		v, res := Parse(pk[i], len(pk[i]))
		if res != Unchanged || v.Version != want.version || v.Proto != want.proto || v.L4Off != want.l4Off || v.Total != want.total {
			t.Errorf("packet %d: %v %+v", i, res, v)
			continue
		}
		checkView(t, &v, pk[i])
	}
	v, _ := Parse(pk[0], len(pk[0]))
	if v.Src.String() != "100.64.0.7" || v.Dst.String() != "198.51.100.10" || v.TCP.MSS != 1460 || v.TCP.Flags != FlagSYN || v.TCPOptLen() != 4 {
		t.Errorf("IPv4 SYN: %+v", v)
	}
	if v, _ := Parse(pk[2], len(pk[2])); v.IPOptLen() != 8 || v.TCP.Off != 28 {
		t.Errorf("IPv4 options: %d, TCP at %d", v.IPOptLen(), v.TCP.Off)
	}
	if v, _ := Parse(pk[5], len(pk[5])); v.IP6.DestOff != 40 || v.Src.String() != "2001:db8::7" {
		t.Errorf("IPv6 Destination Options: %+v", v)
	}
	for _, tc := range []struct {
		name string
		pkt  []byte
		n    int
		want Result
	}{
		{"empty", nil, 0, Truncated},
		{"n past cap", pk[0], cap(pk[0]) + 1, Truncated},
		{"version 5", []byte{0x50}, 1, Truncated},
		{"IPv4 19 bytes", pk[0][:19], 19, Truncated},
		{"IPv6 39 bytes", pk[3][:39], 39, Truncated},
	} {
		if _, res := Parse(tc.pkt, tc.n); res != tc.want {
			t.Errorf("%s: %v, want %v", tc.name, res, tc.want)
		}
	}
}

func TestParseZeroAllocs(t *testing.T) {
	pk := seedPackets(t)
	var v View
	for i, p := range pk {
		if a := testing.AllocsPerRun(100, func() { v.Parse(p, len(p)) }); a != 0 {
			t.Errorf("packet %d: %v allocs/op", i, a)
		}
	}
}

func BenchmarkParseView(b *testing.B) {
	p := seedPackets(b)[0]
	var v View
	b.ReportAllocs()
	for b.Loop() {
		if v.Parse(p, len(p)) != Unchanged {
			b.Fatal("parse")
		}
	}
}

// checkView checks the invariants of a view: every offset within the
// packet.
func checkView(tb testing.TB, v *View, pkt []byte) {
	tb.Helper()
	if v.IPRes != Unchanged {
		return
	}
	switch {
	case v.Version != 4 && v.Version != 6:
		tb.Fatalf("version %d parsed", v.Version)
	case v.N > len(pkt) || v.Total > v.N || v.L4Off > v.Total || v.L4Off < IPv4MinHdr:
		tb.Fatalf("lengths: N %d Total %d L4Off %d, %d bytes", v.N, v.Total, v.L4Off, len(pkt))
	case v.Version == 4 && (v.IP4.HdrLen != v.L4Off || v.IPOptOff()+v.IPOptLen() != v.L4Off || v.IP4.TotalLen != v.Total):
		tb.Fatalf("IPv4 %+v", v.IP4)
	case v.Version == 6 && (v.IP6.Off != v.L4Off || v.IP6.TotalLen != v.Total || v.IP6.ProtoField >= v.L4Off ||
		v.IP6.DestOff >= v.L4Off || v.FragHdrOff()+8 > v.L4Off):
		tb.Fatalf("IPv6 %+v", v.IP6)
	}
	if v.L4Res != Unchanged {
		return
	}
	switch v.Proto {
	case ProtoTCP:
		if v.TCP.Off != v.L4Off || v.TCP.Off+v.TCP.HdrLen+v.TCP.PayloadLen != v.Total || v.TCPOptOff()+v.TCPOptLen() > v.Total || v.TCPOptLen() < 0 {
			tb.Fatalf("TCP %+v in %d bytes", v.TCP, v.Total)
		}
	case ProtoUDP:
		if v.L4Off+v.UDP.Len > v.Total || v.UDP.PayloadLen != v.UDP.Len-UDPHdrLen {
			tb.Fatalf("UDP %+v in %d bytes", v.UDP, v.Total)
		}
	default:
		tb.Fatalf("L4 parsed for protocol %d", v.Proto)
	}
}

// FuzzParse: any bytes parse without panic, with offsets within the
// packet, and a TCP or UDP header accepted here is one gopacket decodes
// to the same ports.
func FuzzParse(f *testing.F) {
	for _, p := range seedPackets(f) {
		f.Add(p)
	}
	f.Fuzz(func(t *testing.T, pkt []byte) {
		v, res := Parse(pkt, len(pkt))
		checkView(t, &v, pkt)
		if res != Unchanged {
			return
		}
		first := layers.LayerTypeIPv4
		if v.Version == 6 {
			first = layers.LayerTypeIPv6
		}
		p := gopacket.NewPacket(pkt[:v.Total], first, gopacket.DecodeOptions{})
		switch v.Proto {
		case ProtoTCP:
			tcp, _ := p.Layer(layers.LayerTypeTCP).(*layers.TCP)
			if tcp == nil {
				return // gopacket is stricter in places (options, extension headers it does not walk)
			}
			if uint16(tcp.SrcPort) != v.TCP.SrcPort || uint16(tcp.DstPort) != v.TCP.DstPort || tcp.Seq != v.TCP.Seq || len(tcp.Payload) != v.TCP.PayloadLen {
				t.Fatalf("TCP %+v, gopacket %d>%d seq %d payload %d", v.TCP, tcp.SrcPort, tcp.DstPort, tcp.Seq, len(tcp.Payload))
			}
		case ProtoUDP:
			udp, _ := p.Layer(layers.LayerTypeUDP).(*layers.UDP)
			if udp == nil {
				return
			}
			if uint16(udp.SrcPort) != v.UDP.SrcPort || uint16(udp.DstPort) != v.UDP.DstPort || int(udp.Length) != v.UDP.Len {
				t.Fatalf("UDP %+v, gopacket %d>%d length %d", v.UDP, udp.SrcPort, udp.DstPort, udp.Length)
			}
		}
	})
}
