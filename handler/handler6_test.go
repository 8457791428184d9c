package handler

import (
	"bytes"
	"fmt"
	"net/netip"
	"testing"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"

	"github.com/natreveal/natreveal/hostid"
	"github.com/natreveal/natreveal/method/destopt"
	"github.com/natreveal/natreveal/method/tcpoption"
	"github.com/natreveal/natreveal/packet"
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
		FIN: s.fin, RST: s.rst, Seq: s.seq, Ack: s.ackn, Window: 64240}
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
	out := make([]byte, len(buf.Bytes()), len(buf.Bytes())+packet.Headroom)
	copy(out, buf.Bytes())
	return out, len(buf.Bytes())
}

func newHandler6(cfg testConfig) (*Handler, *Stats) {
	cfg.Inside = []netip.Prefix{netip.MustParsePrefix("100.64.0.0/24"), netip.MustParsePrefix("2001:db8:1::/64")}
	cfg.TrackBit, cfg.DoneBit = trackBit, 0x20000
	if cfg.OptionLen == 0 {
		cfg.OptionLen = 2
	}
	if cfg.DestLen == 0 {
		cfg.DestType, cfg.DestLen = destopt.DestOptType, 2
	}
	st := &Stats{}
	return NewHandler(cfg.withStats(st).handler(), hostid.Lower16{}, nil, func(uint32) int { return 1500 }, NewFlows(16), st), st
}

// check6 decodes a rewritten IPv6 packet independently (gopacket) and
// verifies the TCP checksum.
func check6(t *testing.T, pkt []byte) gopacket.Packet {
	t.Helper()
	p := gopacket.NewPacket(pkt, layers.LayerTypeIPv6, gopacket.Default)
	if el := p.ErrorLayer(); el != nil {
		t.Fatalf("gopacket cannot decode the output: %v", el.Error())
	}
	if p.Layer(layers.LayerTypeTCP) != nil && !packet.TCPChecksumOK6(pkt) {
		t.Fatal("bad TCP checksum in output")
	}
	return p
}

// passes6 handles s with mark 0x5 and fails unless the verdict is
// Verdict{} and the packet's bytes are untouched.
func passes6(t *testing.T, h *Handler, s seg, what string) {
	t.Helper()
	passes6Mark(t, h, s, 0x5, what)
}

// passes6Mark is passes6 with the packet mark mark.
func passes6Mark(t *testing.T, h *Handler, s seg, mark uint32, what string) {
	t.Helper()
	buf, n := build6(t, s)
	orig := bytes.Clone(buf[:n])
	if v := h.Handle(buf, n, Meta{Mark: mark}); v.Len != 0 || v.SetMark || v.Drop || v.After.Set() {
		t.Fatalf("%s: verdict %+v, want Verdict{} (unchanged, no mark)", what, v)
	}
	if !bytes.Equal(buf[:n], orig) {
		t.Fatalf("%s: packet bytes changed under a Verdict{}", what)
	}
}

// An IPv6 SYN from inside gets both the RFC 7974 option and the Destination
// Option, and TrackBit; later client segments of the tracked phase (TrackBit
// in their mark) carry the option only, the same segments without it pass
// unchanged; the server's packets (the SYN-ACK's MSS is the kernel's) pass
// unchanged.
func TestHandler6SYNBothMethods(t *testing.T) {
	h, st := newHandler6(testConfig{TCPOption: true, DestOpt: true})
	buf, n := build6(t, seg{src: client6, dst: server6, sport: 40000, dport: 80, syn: true, seq: 100, mss: 1440})
	v := h.Handle(buf, n, Meta{Mark: 0x5})
	if v.Len != n+8+8 || !v.SetMark || v.Mark != 0x5|0x10000 {
		t.Fatalf("SYN verdict %+v (len was %d): want +8 option +8 Destination Options header, mark 0x10005", v, n)
	}
	p := check6(t, buf[:v.Len])
	if p.Layer(layers.LayerTypeIPv6Destination) == nil {
		t.Fatal("no Destination Options header")
	}
	if id, l, ok := tcpoption.HostIDOption6(buf[:v.Len]); !ok || id != 7 || l != 2 {
		t.Errorf("tcp option id %#x len %d ok %v, want 7", id, l, ok)
	}
	if id, l, ok := destopt.DestOptHostID(buf[:v.Len], destopt.DestOptType); !ok || id != 7 || l != 2 {
		t.Errorf("destination option id %#x len %d ok %v, want 7", id, l, ok)
	}

	passes6(t, h, seg{src: server6, dst: client6, sport: 80, dport: 40000, syn: true, ack: true, seq: 5000, ackn: 101, mss: 1440}, "SYN-ACK")
	for i, s := range []seg{
		{src: client6, dst: server6, sport: 40000, dport: 80, ack: true, seq: 101, ackn: 5001},
		{src: client6, dst: server6, sport: 40000, dport: 80, ack: true, seq: 101, ackn: 5001, payload: 100},
	} {
		passes6(t, h, s, fmt.Sprintf("segment %d without TrackBit", i+1))
		seg1, n := build6(t, s)
		v := h.Handle(seg1, n, Meta{Mark: 0x5 | trackBit})
		if v.Len != n+8 || v.SetMark {
			t.Fatalf("segment %d verdict %+v: want the option (+8), no mark", i+1, v)
		}
		p := check6(t, seg1[:v.Len])
		if p.Layer(layers.LayerTypeIPv6Destination) != nil {
			t.Fatalf("segment %d has a Destination Options header: the SYN only", i+1)
		}
		if id, _, ok := tcpoption.HostIDOption6(seg1[:v.Len]); !ok || id != 7 {
			t.Fatalf("segment %d: HOST_ID %#x %v", i+1, id, ok)
		}
		if got := len(p.Layer(layers.LayerTypeTCP).(*layers.TCP).Payload); got != s.payload {
			t.Fatalf("segment %d: payload %d bytes", i+1, got)
		}
	}
	passes6(t, h, seg{src: server6, dst: client6, sport: 80, dport: 40000, ack: true, seq: 5001, ackn: 201}, "server ACK of data")
	if st.Result("dest-opt", packet.Written) != 1 || st.Result("tcp-option", packet.Written) != 3 || st.Get(FlowsTracked) != 1 || st.Get(Untracked) != 2 ||
		st.Get(TrackDone) != 0 || st.Get(MSSLowered) != 0 || h.flows.Len() != 0 {
		t.Errorf("counters %v, %d flows held", st.Snapshot(), h.flows.Len())
	}
}

// IPv6 without state: a client segment with TrackBit whose SYN this handler
// never saw carries the option, without TrackBit it passes; a client RST
// passes without; a server packet passes unchanged and counts as untracked.
// Without tcp-option (dest-opt alone, Tracks6 false) a later segment passes
// unchanged, TrackBit or not.
func TestHandler6Stateless(t *testing.T) {
	h, st := newHandler6(testConfig{TCPOption: true, DestOpt: true, OptionLen: 4})
	data := seg{src: client6, dst: server6, sport: 41000, dport: 443, ack: true, seq: 7001, ackn: 9001, payload: 517}
	passes6(t, h, data, "segment without TrackBit")
	buf, n := build6(t, data)
	v := h.Handle(buf, n, Meta{Mark: trackBit})
	if v.Len != n+8 || v.SetMark {
		t.Fatalf("segment verdict %+v (len was %d): want +8, no mark", v, n)
	}
	check6(t, buf[:v.Len])
	if id, l, ok := tcpoption.HostIDOption6(buf[:v.Len]); !ok || id != 7 || l != 4 {
		t.Fatalf("HOST_ID %#x len %d %v, want 7 in 4 bytes", id, l, ok)
	}
	passes6Mark(t, h, seg{src: client6, dst: server6, sport: 41000, dport: 443, rst: true, ack: true, seq: 7518, ackn: 9001}, 0x5|trackBit, "client RST")
	passes6(t, h, seg{src: server6, dst: client6, sport: 443, dport: 41000, ack: true, seq: 9001, ackn: 7518, payload: 40}, "server data")
	if st.Result("tcp-option", packet.Written) != 1 || st.Result("dest-opt", packet.Written) != 0 || st.Get(Untracked) != 1 || st.Get(FlowsTracked) != 0 {
		t.Errorf("counters %v", st.Snapshot())
	}

	h, st = newHandler6(testConfig{DestOpt: true})
	passes6(t, h, seg{src: client6, dst: server6, sport: 41000, dport: 443, ack: true, seq: 7001, ackn: 9001, payload: 10}, "dest-opt only: segment")
	passes6Mark(t, h, seg{src: client6, dst: server6, sport: 41000, dport: 443, ack: true, seq: 7001, ackn: 9001, payload: 10}, trackBit, "dest-opt only: segment with TrackBit")
	if st.Get(Modified) != 0 {
		t.Errorf("dest-opt only: counters %v", st.Snapshot())
	}
}

// An inside host's own option of our type is replaced; a SYN with a
// malformed option list is dropped.
func TestHandler6ForgedAndOutside(t *testing.T) {
	h, _ := newHandler6(testConfig{DestOpt: true})
	ip := &layers.IPv6{Version: 6, HopLimit: 64, NextHeader: layers.IPProtocolIPv6Destination, SrcIP: client6.AsSlice(), DstIP: server6.AsSlice()}
	do := &layers.IPv6Destination{Options: []*layers.IPv6DestinationOption{
		{OptionType: destopt.DestOptType, OptionData: []byte{0xde, 0xad}},
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
	if id, _, ok := destopt.DestOptHostID(buf[:v.Len], destopt.DestOptType); !ok || id != 7 {
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
	h, st := newHandler6(testConfig{DestOpt: true, DestUDP: 2})
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
			if id, _, ok := destopt.DestOptHostID(buf[:v.Len], destopt.DestOptType); !ok || id != 7 {
				t.Fatalf("datagram %d: id %#x ok %v", i+1, id, ok)
			}
		}
	}
	if st.Result("dest-opt", packet.Written) != 2 || st.Get(FlowsTracked) != 1 || st.Get(TrackDone) != 1 {
		t.Errorf("counters %v", st.Snapshot())
	}
}

func TestHandler6NoAllocs(t *testing.T) {
	h, _ := newHandler6(testConfig{TCPOption: true, DestOpt: true})
	for _, s := range []seg{
		{src: client6, dst: server6, sport: 40000, dport: 80, syn: true, seq: 1, mss: 1440},
		{src: client6, dst: server6, sport: 40000, dport: 80, ack: true, seq: 2, ackn: 1, payload: 100},
	} {
		tmpl, n := build6(t, s)
		noAllocs(t, h, tmpl, n, s.syn, "IPv6 packet")
	}
}

func BenchmarkHandleSYN6(b *testing.B) {
	h, _ := newHandler6(testConfig{TCPOption: true, DestOpt: true})
	tmpl, n := build6(b, seg{src: client6, dst: server6, sport: 40000, dport: 80, syn: true, seq: 1, mss: 1440})
	buf := make([]byte, n, n+packet.Headroom)
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		copy(buf[:n], tmpl[:n])
		h.Handle(buf, n, Meta{})
	}
}
