package nfq

import (
	"net/netip"
	"testing"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"

	"github.com/natreveal/natreveal/encoders"
	"github.com/natreveal/natreveal/hostid"
)

var (
	client6 = netip.MustParseAddr("2001:db8:1::7")
	server6 = netip.MustParseAddr("2001:db8:3::1")
)

// build6 serializes an IPv6 segment with gopacket into a buffer with room.
func build6(t testing.TB, s seg) ([]byte, int) {
	t.Helper()
	ip := &layers.IPv6{Version: 6, HopLimit: 64, NextHeader: layers.IPProtocolTCP, SrcIP: s.src.AsSlice(), DstIP: s.dst.AsSlice()}
	tcp := &layers.TCP{SrcPort: layers.TCPPort(s.sport), DstPort: layers.TCPPort(s.dport), SYN: s.syn, ACK: s.ack,
		FIN: s.fin, Seq: s.seq, Ack: s.ackn, Window: 64240}
	if s.mss != 0 {
		tcp.Options = []layers.TCPOption{{OptionType: layers.TCPOptionKindMSS, OptionLength: 4, OptionData: []byte{byte(s.mss >> 8), byte(s.mss)}}}
	}
	tcp.SetNetworkLayerForChecksum(ip)
	return serialize6(t, ip, tcp, gopacket.Payload(make([]byte, s.payload)))
}

func serialize6(t testing.TB, ls ...gopacket.SerializableLayer) ([]byte, int) {
	t.Helper()
	buf := gopacket.NewSerializeBuffer()
	if err := gopacket.SerializeLayers(buf, gopacket.SerializeOptions{FixLengths: true, ComputeChecksums: true}, ls...); err != nil {
		t.Fatal(err)
	}
	out := make([]byte, len(buf.Bytes()), len(buf.Bytes())+encoders.Headroom)
	copy(out, buf.Bytes())
	return out, len(buf.Bytes())
}

func newHandler6(cfg HandlerConfig) (*Handler, *Stats) {
	cfg.Inside = []netip.Prefix{netip.MustParsePrefix("100.64.0.0/24"), netip.MustParsePrefix("2001:db8:1::/64")}
	cfg.TrackBit, cfg.DoneBit = 0x10000, 0x20000
	if cfg.OptionLen == 0 {
		cfg.OptionLen = 2
	}
	if cfg.MaxSegs == 0 {
		cfg.MaxSegs = 8
	}
	if cfg.DestLen == 0 {
		cfg.DestType, cfg.DestLen = encoders.DestOptType, 2
	}
	st := &Stats{}
	return NewHandler(cfg, hostid.Lower16{}, nil, func(uint32) int { return 1500 }, NewFlows(16), st), st
}

// check6 decodes a rewritten IPv6 packet independently (gopacket) and
// verifies the TCP checksum.
func check6(t *testing.T, pkt []byte) gopacket.Packet {
	t.Helper()
	p := gopacket.NewPacket(pkt, layers.LayerTypeIPv6, gopacket.Default)
	if el := p.ErrorLayer(); el != nil {
		t.Fatalf("gopacket cannot decode the output: %v", el.Error())
	}
	if p.Layer(layers.LayerTypeTCP) != nil && !encoders.TCPChecksumOK6(pkt) {
		t.Fatal("bad TCP checksum in output")
	}
	return p
}

// An IPv6 SYN from inside gets both the RFC 7974 option and the Destination
// Option; later segments carry the option until data is acknowledged; the
// SYN-ACK's MSS is lowered.
func TestHandler6SYNBothMethods(t *testing.T) {
	h, st := newHandler6(HandlerConfig{TCPOption: true, DestOpt: true})
	buf, n := build6(t, seg{src: client6, dst: server6, sport: 40000, dport: 80, syn: true, seq: 100, mss: 1440})
	v := h.Handle(buf, n, Meta{})
	if v.Len != n+8+8 || !v.SetMark || v.Mark != 0x10000 {
		t.Fatalf("SYN verdict %+v (len was %d): want +8 option +8 Destination Options header, track mark", v, n)
	}
	p := check6(t, buf[:v.Len])
	if p.Layer(layers.LayerTypeIPv6Destination) == nil {
		t.Fatal("no Destination Options header")
	}
	if id, l, ok := encoders.HostIDOption6(buf[:v.Len]); !ok || id != 7 || l != 2 {
		t.Errorf("tcp option id %#x len %d ok %v, want 7", id, l, ok)
	}
	if id, l, ok := encoders.DestOptHostID(buf[:v.Len], encoders.DestOptType); !ok || id != 7 || l != 2 {
		t.Errorf("destination option id %#x len %d ok %v, want 7", id, l, ok)
	}

	sa, n := build6(t, seg{src: server6, dst: client6, sport: 80, dport: 40000, syn: true, ack: true, seq: 5000, ackn: 101, mss: 1440})
	if v := h.Handle(sa, n, Meta{}); v.Len != n {
		t.Fatalf("SYN-ACK verdict %+v: want MSS rewritten", v)
	}
	if tcp := check6(t, sa[:n]).Layer(layers.LayerTypeTCP).(*layers.TCP); tcp.Options[0].OptionData[1] != byte(1432&0xff) {
		t.Errorf("MSS not lowered by 8: %v", tcp.Options)
	}
	seg1, n := build6(t, seg{src: client6, dst: server6, sport: 40000, dport: 80, ack: true, seq: 101, ackn: 5001, payload: 100})
	if v := h.Handle(seg1, n, Meta{}); v.Len != n+8 {
		t.Fatalf("data segment verdict %+v: want the option", v)
	}
	check6(t, seg1[:n+8])
	ack, n := build6(t, seg{src: server6, dst: client6, sport: 80, dport: 40000, ack: true, seq: 5001, ackn: 201})
	if v := h.Handle(ack, n, Meta{}); !v.SetMark || v.Mark != 0x20000 {
		t.Fatalf("acknowledging segment verdict %+v: want done mark", v)
	}
	if st.DestOpt(encoders.Written) != 1 || st.Option(encoders.Written) != 2 || st.Get(TrackDone) != 1 || st.Get(MSSLowered) != 1 {
		t.Errorf("counters %v", st.Snapshot())
	}
}

// An inside host's own option of our type is replaced; a SYN with a
// malformed option list is dropped.
func TestHandler6ForgedAndOutside(t *testing.T) {
	h, _ := newHandler6(HandlerConfig{DestOpt: true})
	ip := &layers.IPv6{Version: 6, HopLimit: 64, NextHeader: layers.IPProtocolIPv6Destination, SrcIP: client6.AsSlice(), DstIP: server6.AsSlice()}
	do := &layers.IPv6Destination{Options: []*layers.IPv6DestinationOption{
		{OptionType: encoders.DestOptType, OptionData: []byte{0xde, 0xad}},
		{OptionType: 1, OptionData: []byte{}}, // PadN: 8-octet header (RFC 8200 §4.2)
	}}
	do.NextHeader = layers.IPProtocolTCP
	tcp := &layers.TCP{SrcPort: 40000, DstPort: 80, SYN: true, Seq: 1, Window: 1000}
	tcp.SetNetworkLayerForChecksum(ip)
	buf, n := serialize6(t, ip, do, tcp)
	v := h.Handle(buf, n, Meta{})
	if v.Len == 0 {
		t.Fatalf("forged SYN verdict %+v", v)
	}
	check6(t, buf[:v.Len])
	if id, _, ok := encoders.DestOptHostID(buf[:v.Len], encoders.DestOptType); !ok || id != 7 {
		t.Fatalf("forged destination option kept: id %#x ok %v", id, ok)
	}

	// A malformed option list on an inside SYN is refused (anti-spoofing).
	bad, n := build6(t, seg{src: client6, dst: server6, sport: 1, dport: 80, syn: true, mss: 1440})
	bad[40+21] = 0 // MSS option length 0 (RFC 9293 §3.2)
	if v := h.Handle(bad, n, Meta{}); !v.Drop {
		t.Errorf("malformed inside SYN verdict %+v, want drop", v)
	}
}

// IPv6 UDP: the first DestUDP datagrams of a flow carry the option.
func TestHandler6UDP(t *testing.T) {
	h, st := newHandler6(HandlerConfig{DestOpt: true, DestUDP: 2})
	dgram := func() ([]byte, int) {
		ip := &layers.IPv6{Version: 6, HopLimit: 64, NextHeader: layers.IPProtocolUDP, SrcIP: client6.AsSlice(), DstIP: server6.AsSlice()}
		u := &layers.UDP{SrcPort: 5000, DstPort: 9999}
		u.SetNetworkLayerForChecksum(ip)
		return serialize6(t, ip, u, gopacket.Payload([]byte("hello")))
	}
	for i, want := range []Verdict{{Len: 1, SetMark: true, Mark: 0x10000}, {Len: 1, SetMark: true, Mark: 0x20000}, {SetMark: true, Mark: 0x20000}} {
		buf, n := dgram()
		v := h.Handle(buf, n, Meta{})
		if (v.Len > 0) != (want.Len > 0) || v.SetMark != want.SetMark || v.Mark != want.Mark {
			t.Fatalf("datagram %d: verdict %+v, want %+v", i+1, v, want)
		}
		if v.Len > 0 {
			p := check6(t, buf[:v.Len])
			if u := p.Layer(layers.LayerTypeUDP); u == nil {
				t.Fatal("no UDP layer")
			}
			if id, _, ok := encoders.DestOptHostID(buf[:v.Len], encoders.DestOptType); !ok || id != 7 {
				t.Fatalf("datagram %d: id %#x ok %v", i+1, id, ok)
			}
		}
	}
	if st.DestOpt(encoders.Written) != 2 || st.Get(FlowsTracked) != 1 || st.Get(TrackDone) != 1 {
		t.Errorf("counters %v", st.Snapshot())
	}
}

func TestHandler6NoAllocs(t *testing.T) {
	h, _ := newHandler6(HandlerConfig{TCPOption: true, DestOpt: true})
	tmpl, n := build6(t, seg{src: client6, dst: server6, sport: 40000, dport: 80, syn: true, seq: 1, mss: 1440})
	buf := make([]byte, n, n+encoders.Headroom)
	if a := testing.AllocsPerRun(100, func() {
		copy(buf[:n], tmpl[:n])
		h.Handle(buf, n, Meta{})
	}); a != 0 {
		t.Errorf("%v allocations per IPv6 SYN, want 0", a)
	}
}

func BenchmarkHandleSYN6(b *testing.B) {
	h, _ := newHandler6(HandlerConfig{TCPOption: true, DestOpt: true})
	tmpl, n := build6(b, seg{src: client6, dst: server6, sport: 40000, dport: 80, syn: true, seq: 1, mss: 1440})
	buf := make([]byte, n, n+encoders.Headroom)
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		copy(buf[:n], tmpl[:n])
		h.Handle(buf, n, Meta{})
	}
}
