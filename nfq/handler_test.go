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
