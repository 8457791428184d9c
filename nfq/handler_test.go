package nfq

import (
	"encoding/binary"
	"net/netip"
	"testing"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"

	"github.com/natreveal/natreveal/conntrack"
	"github.com/natreveal/natreveal/encoders"
	"github.com/natreveal/natreveal/hostid"
)

var (
	client = netip.MustParseAddr("100.64.0.7")
	server = netip.MustParseAddr("198.51.100.1")
)

type seg struct {
	src, dst      netip.Addr
	sport, dport  uint16
	syn, ack, fin bool
	seq, ackn     uint32
	payload       int
	mss           uint16
}

// build serializes a segment with gopacket, DF set, into a buffer with room.
func build(t testing.TB, s seg) ([]byte, int) {
	t.Helper()
	ip := &layers.IPv4{Version: 4, TTL: 64, Protocol: layers.IPProtocolTCP, Flags: layers.IPv4DontFragment,
		SrcIP: s.src.AsSlice(), DstIP: s.dst.AsSlice(), Id: 0x1111}
	tcp := &layers.TCP{SrcPort: layers.TCPPort(s.sport), DstPort: layers.TCPPort(s.dport), SYN: s.syn, ACK: s.ack,
		FIN: s.fin, Seq: s.seq, Ack: s.ackn, Window: 64240}
	if s.mss != 0 {
		tcp.Options = []layers.TCPOption{{OptionType: layers.TCPOptionKindMSS, OptionLength: 4, OptionData: []byte{byte(s.mss >> 8), byte(s.mss)}}}
	}
	tcp.SetNetworkLayerForChecksum(ip)
	buf := gopacket.NewSerializeBuffer()
	if err := gopacket.SerializeLayers(buf, gopacket.SerializeOptions{FixLengths: true, ComputeChecksums: true},
		ip, tcp, gopacket.Payload(make([]byte, s.payload))); err != nil {
		t.Fatal(err)
	}
	out := make([]byte, len(buf.Bytes()), len(buf.Bytes())+encoders.Headroom)
	copy(out, buf.Bytes())
	return out, len(buf.Bytes())
}

// check decodes a rewritten packet independently and verifies its checksums.
func check(t *testing.T, pkt []byte) *layers.TCP {
	t.Helper()
	p := gopacket.NewPacket(pkt, layers.LayerTypeIPv4, gopacket.Default)
	if el := p.ErrorLayer(); el != nil {
		t.Fatalf("gopacket cannot decode the output: %v", el.Error())
	}
	if !encoders.IPv4ChecksumOK(pkt) || !encoders.TCPChecksumOK(pkt) {
		t.Fatal("bad checksum in output")
	}
	return p.Layer(layers.LayerTypeTCP).(*layers.TCP)
}

func newHandler(cfg HandlerConfig) (*Handler, *Stats) {
	cfg.Inside = []netip.Prefix{netip.MustParsePrefix("100.64.0.0/24")}
	cfg.TrackBit, cfg.DoneBit = 0x10000, 0x20000
	if cfg.OptionLen == 0 {
		cfg.OptionLen = 2
	}
	if cfg.MaxSegs == 0 {
		cfg.MaxSegs = 8
	}
	st := &Stats{}
	return NewHandler(cfg, hostid.Lower16{}, nil, func(uint32) int { return 1500 }, NewFlows(16), st), st
}

func hostIDOf(t *testing.T, pkt []byte) (uint32, bool) {
	t.Helper()
	id, _, ok := encoders.HostIDOption(pkt)
	return id, ok
}

// The flow of RFC 7974 §4.2: SYN and client segments carry the option until
// the server acknowledges data; the SYN-ACK's MSS is lowered; marks tell the
// ruleset when to start and stop queueing the flow.
func TestHandlerFollowsFlowUntilDataAcked(t *testing.T) {
	h, st := newHandler(HandlerConfig{TCPOption: true})
	const isn, sisn = 1000, 5000

	buf, n := build(t, seg{src: client, dst: server, sport: 40000, dport: 80, syn: true, seq: isn, mss: 1460})
	v := h.Handle(buf, n, Meta{Mark: 0x5})
	if v.Len != n+8 || !v.SetMark || v.Mark != 0x5|0x10000 {
		t.Fatalf("SYN verdict %+v: want +8 bytes and mark 0x10005 (user bits kept)", v)
	}
	check(t, buf[:v.Len])
	if id, ok := hostIDOf(t, buf[:v.Len]); !ok || id != 7 {
		t.Fatalf("SYN HOST_ID %d %v, want 7", id, ok)
	}

	// SYN-ACK: MSS lowered by the option's 8 bytes, flow still followed.
	buf, n = build(t, seg{src: server, dst: client, sport: 80, dport: 40000, syn: true, ack: true, seq: sisn, ackn: isn + 1, mss: 1460})
	v = h.Handle(buf, n, Meta{})
	if v.Len != n || v.SetMark {
		t.Fatalf("SYN-ACK verdict %+v: want rewritten in place, no mark", v)
	}
	if tcp := check(t, buf[:n]); tcp.Options[0].OptionData[0] != 1452>>8 || tcp.Options[0].OptionData[1] != 1452&0xff {
		t.Fatalf("SYN-ACK MSS not lowered to 1452: %v", tcp.Options)
	}

	// Handshake ACK and first data segment carry the option.
	for _, s := range []seg{
		{src: client, dst: server, sport: 40000, dport: 80, ack: true, seq: isn + 1, ackn: sisn + 1},
		{src: client, dst: server, sport: 40000, dport: 80, ack: true, seq: isn + 1, ackn: sisn + 1, payload: 1400},
	} {
		buf, n = build(t, s)
		v = h.Handle(buf, n, Meta{})
		if v.Len != n+8 || v.SetMark {
			t.Fatalf("client segment verdict %+v, want +8 bytes", v)
		}
		check(t, buf[:v.Len])
		if id, ok := hostIDOf(t, buf[:v.Len]); !ok || id != 7 {
			t.Fatal("client segment lacks the HOST_ID")
		}
	}
	// A pure ACK of the server that acknowledges only the SYN keeps it going.
	buf, n = build(t, seg{src: server, dst: client, sport: 80, dport: 40000, ack: true, seq: sisn + 1, ackn: isn + 1})
	if v = h.Handle(buf, n, Meta{}); v.SetMark {
		t.Fatalf("ACK of the SYN only ended the flow: %+v", v)
	}
	// The server acknowledges data: done, ct mark bit to be cleared.
	buf, n = build(t, seg{src: server, dst: client, sport: 80, dport: 40000, ack: true, seq: sisn + 1, ackn: isn + 1401})
	if v = h.Handle(buf, n, Meta{Mark: 0x10000}); !v.SetMark || v.Mark&0x20000 == 0 || v.Len != 0 {
		t.Fatalf("data acknowledged: verdict %+v, want done bit, unchanged packet", v)
	}
	// Later client segments: untouched, and told to stop queueing.
	buf, n = build(t, seg{src: client, dst: server, sport: 40000, dport: 80, ack: true, seq: isn + 1401, ackn: sisn + 1, payload: 10})
	if v = h.Handle(buf, n, Meta{}); v.Len != 0 || v.Mark&0x20000 == 0 {
		t.Fatalf("segment after done: %+v, want unchanged with done bit", v)
	}
	if st.Get(FlowsTracked) != 1 || st.Get(TrackDone) != 1 || st.Get(MSSLowered) != 1 || st.Option(encoders.Written) != 3 {
		t.Fatalf("counters %v", st.Snapshot())
	}
}

// The server speaking first (data in its reply) also ends the flow.
func TestHandlerServerDataEndsFlow(t *testing.T) {
	h, _ := newHandler(HandlerConfig{TCPOption: true})
	buf, n := build(t, seg{src: client, dst: server, sport: 40001, dport: 22, syn: true, seq: 1})
	h.Handle(buf, n, Meta{})
	buf, n = build(t, seg{src: server, dst: client, sport: 22, dport: 40001, ack: true, seq: 10, ackn: 2, payload: 20})
	if v := h.Handle(buf, n, Meta{}); v.Mark&0x20000 == 0 {
		t.Fatalf("server data did not end the flow: %+v", v)
	}
}

// MaxSegs bounds how long a flow is followed.
func TestHandlerMaxSegments(t *testing.T) {
	h, st := newHandler(HandlerConfig{TCPOption: true, MaxSegs: 2})
	buf, n := build(t, seg{src: client, dst: server, sport: 40002, dport: 80, syn: true, seq: 1})
	h.Handle(buf, n, Meta{})
	var v Verdict
	for i := 0; i < 3; i++ {
		buf, n = build(t, seg{src: client, dst: server, sport: 40002, dport: 80, ack: true, seq: 2, ackn: 1})
		v = h.Handle(buf, n, Meta{})
		if i < 2 && v.Len != n+8 {
			t.Fatalf("segment %d not marked: %+v", i, v)
		}
	}
	if v.Len != 0 || v.Mark&0x20000 == 0 || st.Get(TrackDone) != 1 {
		t.Fatalf("third segment: %+v, want unchanged and done", v)
	}
}

// A full flow table still marks the SYN but does not follow the flow.
func TestHandlerFlowTableFull(t *testing.T) {
	h, st := newHandler(HandlerConfig{TCPOption: true})
	h.flows = NewFlows(1)
	full := 0
	for p := uint16(1); p <= 200; p++ {
		buf, n := build(t, seg{src: client, dst: server, sport: p, dport: 80, syn: true, seq: 1})
		v := h.Handle(buf, n, Meta{})
		if v.Len != n+8 {
			t.Fatal("SYN not marked")
		}
		if !v.SetMark {
			full++
		}
	}
	if full == 0 || st.Get(FlowsFull) != uint64(full) {
		t.Fatalf("%d SYNs untracked, counter %d", full, st.Get(FlowsFull))
	}
}

// IP-ID scopes: syn marks only the SYN, all marks every client packet.
func TestHandlerIPIDScopes(t *testing.T) {
	for _, c := range []struct {
		scope   string
		dataSet bool
	}{{"syn", false}, {"new", true}, {"all", true}} {
		h, _ := newHandler(HandlerConfig{IPID: true, IPIDScope: c.scope})
		buf, n := build(t, seg{src: client, dst: server, sport: 40003, dport: 80, syn: true, seq: 1})
		h.Handle(buf, n, Meta{})
		if id, atomic, _ := encoders.IPID(buf[:n]); id != 7 || !atomic {
			t.Fatalf("scope %s: SYN IP-ID %#x", c.scope, id)
		}
		check(t, buf[:n])
		buf, n = build(t, seg{src: client, dst: server, sport: 40003, dport: 80, ack: true, seq: 2, ackn: 1, payload: 5})
		h.Handle(buf, n, Meta{})
		if id, _, _ := encoders.IPID(buf[:n]); (id == 7) != c.dataSet {
			t.Fatalf("scope %s: data segment IP-ID %#x, want set=%v", c.scope, id, c.dataSet)
		}
	}
}

// Garbage and foreign packets pass unchanged and are counted.
func TestHandlerFailsOpen(t *testing.T) {
	h, st := newHandler(HandlerConfig{TCPOption: true, IPID: true, IPIDScope: "syn"})
	for _, b := range [][]byte{nil, {0x45}, make([]byte, 60)} {
		buf := make([]byte, len(b), len(b)+encoders.Headroom)
		copy(buf, b)
		if v := h.Handle(buf, len(b), Meta{}); v.Len != 0 || v.SetMark {
			t.Fatalf("garbage %x got verdict %+v", b, v)
		}
	}
	if st.Get(NotParsed) != 3 {
		t.Fatalf("not-parsed = %d, want 3", st.Get(NotParsed))
	}
	// An inside SYN whose option list is malformed after a forged HOST_ID
	// is refused: passing it would deliver the forgery.
	buf, n := build(t, seg{src: client, dst: server, sport: 2, dport: 80, syn: true, mss: 1460})
	copy(buf[20+20:], []byte{253, 6, 0x03, 0x48, 0xde}) // MSS option bytes overwritten...
	buf = append(buf[:n], 0, 0, 0, 0)                   // ...then room for the rest
	ihl := 20
	buf[ihl+12] = 7 << 4                                             // data offset 28 bytes: 8 option bytes
	copy(buf[ihl+20:], []byte{253, 6, 0x03, 0x48, 0xde, 0xad, 9, 0}) // forged, then kind 9 with length 0
	buf[3] = byte(n + 4)
	if v := h.Handle(buf, n+4, Meta{}); !v.Drop || st.Get(Refused) != 1 {
		t.Fatalf("malformed SYN with a forged HOST_ID: verdict %+v, refused %d", v, st.Get(Refused))
	}
	// A host the map source does not know goes out unmarked.
	m, _ := hostid.ParseMap([]byte("100.64.0.99 5"), 16, nil)
	h.src = m
	buf, n = build(t, seg{src: client, dst: server, sport: 1, dport: 80, syn: true})
	if v := h.Handle(buf, n, Meta{}); v.Len != 0 || st.Get(NoHostID) != 1 {
		t.Fatalf("unknown host: %+v, counters %v", v, st.Snapshot())
	}
}

func BenchmarkHandleSYN(b *testing.B) {
	h, _ := newHandler(HandlerConfig{TCPOption: true, IPID: true, IPIDScope: "syn"})
	tmpl, n := build(b, seg{src: client, dst: server, sport: 40000, dport: 80, syn: true, seq: 1, mss: 1460})
	buf := make([]byte, n, n+encoders.Headroom)
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		copy(buf[:n], tmpl[:n])
		h.Handle(buf, n, Meta{})
	}
}

// Post-NAT: the tag rule put the inside source in the mark; the handler reads
// it (no conntrack call), writes that host's HOST_ID into the translated
// packet and hands mark 0 back, plus its own bits.
func TestHandlerPostNATTag(t *testing.T) {
	public := netip.MustParseAddr("192.0.2.1")
	calls := 0
	h, st := newHandler(HandlerConfig{TCPOption: true, PostNAT: true})
	h.resolve = func(conntrack.Key) (netip.AddrPort, error) {
		calls++
		return netip.AddrPort{}, conntrack.ErrNotFound
	}
	tagOf := func(a netip.Addr) uint32 { b := a.As4(); return binary.NativeEndian.Uint32(b[:]) }

	buf, n := build(t, seg{src: public, dst: server, sport: 40000, dport: 80, syn: true, seq: 1, mss: 1460})
	v := h.Handle(buf, n, Meta{Mark: tagOf(client)})
	if v.Len != n+8 || !v.SetMark || v.Mark != 0x10000 {
		t.Fatalf("tagged SYN verdict %+v: want +8 bytes, mark 0x10000 (tag removed)", v)
	}
	check(t, buf[:v.Len])
	if id, ok := hostIDOf(t, buf[:v.Len]); !ok || id != 7 {
		t.Fatalf("HOST_ID %d %v, want 7 (from the tag, not the public source)", id, ok)
	}
	// The reply, de-NATed, meets the flow keyed by the tag and the port.
	buf, n = build(t, seg{src: server, dst: client, sport: 80, dport: 40000, syn: true, ack: true, seq: 9, ackn: 2, mss: 1460})
	if v = h.Handle(buf, n, Meta{}); v.Len != n || st.Get(MSSLowered) != 1 {
		t.Fatalf("SYN-ACK of a tagged flow: %+v, counters %v", v, st.Snapshot())
	}
	// A tagged packet that stays unchanged still gets its mark back.
	buf, n = build(t, seg{src: public, dst: server, sport: 40001, dport: 80, ack: true, seq: 1, ackn: 1})
	if v = h.Handle(buf, n, Meta{Mark: tagOf(client)}); !v.SetMark || v.Mark != 0x20000 || v.Len != 0 {
		t.Fatalf("unknown tagged segment: %+v, want unchanged, mark = done bit only", v)
	}
	// An untagged packet (a user's mark) falls back to conntrack.
	buf, n = build(t, seg{src: public, dst: server, sport: 40002, dport: 80, syn: true, seq: 1})
	if v = h.Handle(buf, n, Meta{Mark: 0x5}); v.Len != 0 || v.SetMark || calls != 1 || st.Get(CtMiss) != 1 {
		t.Fatalf("user-marked SYN: %+v, %d lookups, counters %v", v, calls, st.Snapshot())
	}
	if calls != 1 {
		t.Fatalf("%d conntrack lookups, want 1 (tagged packets need none)", calls)
	}
}

func BenchmarkHandleSYNPostNATTag(b *testing.B) {
	h, _ := newHandler(HandlerConfig{TCPOption: true, PostNAT: true})
	ca := client.As4()
	tag := binary.NativeEndian.Uint32(ca[:])
	tmpl, n := build(b, seg{src: netip.MustParseAddr("192.0.2.1"), dst: server, sport: 40000, dport: 80, syn: true, seq: 1, mss: 1460})
	buf := make([]byte, n, n+encoders.Headroom)
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		copy(buf[:n], tmpl[:n])
		h.Handle(buf, n, Meta{Mark: tag})
	}
}

// buildUDP serializes a DF datagram with gopacket, into a buffer with room.
func buildUDP(t testing.TB, src, dst netip.Addr, sport, dport uint16, payload int) ([]byte, int) {
	t.Helper()
	ip := &layers.IPv4{Version: 4, TTL: 64, Protocol: layers.IPProtocolUDP, Flags: layers.IPv4DontFragment,
		SrcIP: src.AsSlice(), DstIP: dst.AsSlice(), Id: 0x1111}
	udp := &layers.UDP{SrcPort: layers.UDPPort(sport), DstPort: layers.UDPPort(dport)}
	udp.SetNetworkLayerForChecksum(ip)
	buf := gopacket.NewSerializeBuffer()
	if err := gopacket.SerializeLayers(buf, gopacket.SerializeOptions{FixLengths: true, ComputeChecksums: true},
		ip, udp, gopacket.Payload(make([]byte, payload))); err != nil {
		t.Fatal(err)
	}
	out := make([]byte, len(buf.Bytes()), len(buf.Bytes())+encoders.Headroom)
	copy(out, buf.Bytes())
	return out, len(buf.Bytes())
}

// The first packets of a UDP flow carry the IPv4 option and the IP-ID (their
// own counts), the last of them tells the ruleset the flow is done, and
// packets queued after that pass untouched and are not taken for a new flow.
func TestHandlerUDPFirstPackets(t *testing.T) {
	h, st := newHandler(HandlerConfig{IPOption: true, IPOptType: 30, IPOptLen: 2, IPOptUDP: 3, IPID: true, IPIDScope: "syn", IPIDUDP: 2})
	for i := 1; i <= 5; i++ {
		buf, n := buildUDP(t, client, server, 5000, 53, 100)
		v := h.Handle(buf, n, Meta{})
		switch {
		case i <= 3:
			if v.Len != n+4 {
				t.Fatalf("datagram %d: verdict %+v, want the 4-byte option", i, v)
			}
			p := gopacket.NewPacket(buf[:v.Len], layers.LayerTypeIPv4, gopacket.Default)
			ip := p.Layer(layers.LayerTypeIPv4).(*layers.IPv4)
			if p.ErrorLayer() != nil || !encoders.IPv4ChecksumOK(buf[:v.Len]) || !encoders.UDPChecksumOK(buf[:v.Len]) {
				t.Fatalf("datagram %d: output does not decode with valid checksums", i)
			}
			if id, _, ok := encoders.IPOptionHostID(buf[:v.Len], 30); !ok || id != 7 {
				t.Fatalf("datagram %d: option HOST_ID %d %v", i, id, ok)
			}
			if wantID := uint16(0x1111); i <= 2 {
				if ip.Id != 7 {
					t.Fatalf("datagram %d: IP-ID %#x, want 7", i, ip.Id)
				}
			} else if ip.Id != wantID {
				t.Fatalf("datagram %d: IP-ID %#x rewritten past ip_id.udp_packets", i, ip.Id)
			}
		default:
			if v.Len != 0 {
				t.Fatalf("datagram %d rewritten: %+v", i, v)
			}
		}
		wantMark := uint32(0)
		switch i {
		case 1:
			wantMark = 0x10000
		case 3, 4, 5:
			wantMark = 0x20000
		}
		if v.Mark != wantMark || v.SetMark != (wantMark != 0) {
			t.Fatalf("datagram %d: mark %+v, want %#x", i, v, wantMark)
		}
	}
	// A reply of the flow passes untouched.
	buf, n := buildUDP(t, server, client, 53, 5000, 10)
	if v := h.Handle(buf, n, Meta{}); v.Len != 0 || v.SetMark {
		t.Fatalf("reply: %+v", v)
	}
	if st.Get(FlowsTracked) != 1 || st.Get(TrackDone) != 1 || st.IPOpt(encoders.Written) != 3 || st.IPID(encoders.Written) != 2 {
		t.Fatalf("counters %v", st.Snapshot())
	}
}

// ip-option rides on the TCP SYN only, together with the RFC 7974 option.
func TestHandlerIPOptionOnSYN(t *testing.T) {
	h, st := newHandler(HandlerConfig{IPOption: true, IPOptType: 158, IPOptLen: 4, TCPOption: true})
	buf, n := build(t, seg{src: client, dst: server, sport: 40000, dport: 80, syn: true, seq: 1, mss: 1460})
	v := h.Handle(buf, n, Meta{})
	if v.Len != n+8+8 {
		t.Fatalf("SYN verdict %+v: want 8 option bytes in IP and 8 in TCP", v)
	}
	check(t, buf[:v.Len])
	if id, l, ok := encoders.IPOptionHostID(buf[:v.Len], 158); !ok || id != 7 || l != 4 {
		t.Fatalf("IP option %d/%d %v", id, l, ok)
	}
	if id, ok := hostIDOf(t, buf[:v.Len]); !ok || id != 7 {
		t.Fatal("TCP option missing next to the IP option")
	}
	buf, n = build(t, seg{src: client, dst: server, sport: 40000, dport: 80, ack: true, seq: 2, ackn: 1})
	if v = h.Handle(buf, n, Meta{}); v.Len != n+8 || st.IPOpt(encoders.Written) != 1 {
		t.Fatalf("later segment: %+v (ip-option written %d): want the TCP option only", v, st.IPOpt(encoders.Written))
	}
}
