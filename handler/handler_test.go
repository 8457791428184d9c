package handler

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"net/netip"
	"testing"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"

	"github.com/natreveal/natreveal/conntrack"
	"github.com/natreveal/natreveal/hostid"
	"github.com/natreveal/natreveal/method/ipid"
	"github.com/natreveal/natreveal/method/ipoption"
	"github.com/natreveal/natreveal/method/tcpoption"
	"github.com/natreveal/natreveal/packet"
	"github.com/natreveal/natreveal/stream"
)

var (
	client = netip.MustParseAddr("100.64.0.7")
	server = netip.MustParseAddr("198.51.100.1")
)

type seg struct {
	src, dst           netip.Addr
	sport, dport       uint16
	syn, ack, fin, rst bool
	seq, ackn          uint32
	payload            int    // zero bytes, unless data is set
	data               []byte // the payload, when set
	mss                uint16
}

// trackBit is the TrackBit of newHandler and newHandler6. Pre-NAT the steer
// chain's tracked-phase queue rule sets it in the packet mark of the client
// segments it queues (rules.Spec.Track); the AllTCP and select rules do not.
const trackBit = 0x10000

// build serializes a segment with gopacket, DF set, into a buffer with room.
func build(t testing.TB, s seg) ([]byte, int) {
	t.Helper()
	ip := &layers.IPv4{Version: 4, TTL: 64, Protocol: layers.IPProtocolTCP, Flags: layers.IPv4DontFragment,
		SrcIP: s.src.AsSlice(), DstIP: s.dst.AsSlice(), Id: 0x1111}
	tcp := &layers.TCP{SrcPort: layers.TCPPort(s.sport), DstPort: layers.TCPPort(s.dport), SYN: s.syn, ACK: s.ack,
		FIN: s.fin, RST: s.rst, Seq: s.seq, Ack: s.ackn, Window: 64240}
	if s.mss != 0 {
		tcp.Options = []layers.TCPOption{{OptionType: layers.TCPOptionKindMSS, OptionLength: 4, OptionData: []byte{byte(s.mss >> 8), byte(s.mss)}}}
	}
	tcp.SetNetworkLayerForChecksum(ip)
	payload := s.data
	if payload == nil {
		payload = make([]byte, s.payload)
	}
	buf := gopacket.NewSerializeBuffer()
	if err := gopacket.SerializeLayers(buf, gopacket.SerializeOptions{FixLengths: true, ComputeChecksums: true},
		ip, tcp, gopacket.Payload(payload)); err != nil {
		t.Fatal(err)
	}
	out := make([]byte, len(buf.Bytes()), len(buf.Bytes())+packet.Headroom)
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
	if !packet.IPv4ChecksumOK(pkt) || !packet.TCPChecksumOK(pkt) {
		t.Fatal("bad checksum in output")
	}
	return p.Layer(layers.LayerTypeTCP).(*layers.TCP)
}

func newHandler(cfg testConfig) (*Handler, *Stats) {
	cfg.Inside = []netip.Prefix{netip.MustParsePrefix("100.64.0.0/24")}
	cfg.TrackBit, cfg.DoneBit = trackBit, 0x20000
	if cfg.OptionLen == 0 {
		cfg.OptionLen = 2
	}
	st := &Stats{}
	return NewHandler(cfg.withStats(st).handler(), hostid.Lower16{}, nil, func(uint32) int { return 1500 }, NewFlows(16), st), st
}

func hostIDOf(t *testing.T, pkt []byte) (uint32, bool) {
	t.Helper()
	id, _, ok := tcpoption.HostIDOption(pkt)
	return id, ok
}

// mssOf is the MSS option's value of a decoded segment (0: none).
func mssOf(tcp *layers.TCP) uint16 {
	for _, o := range tcp.Options {
		if o.OptionType == layers.TCPOptionKindMSS && len(o.OptionData) == 2 {
			return binary.BigEndian.Uint16(o.OptionData)
		}
	}
	return 0
}

// passes handles s with mark 0x5 and fails unless the verdict is Verdict{}
// (accept, no mark) and the packet's bytes are untouched.
func passes(t *testing.T, h *Handler, s seg, what string) {
	t.Helper()
	passesMark(t, h, s, 0x5, what)
}

// passesMark is passes with the packet mark mark.
func passesMark(t *testing.T, h *Handler, s seg, mark uint32, what string) {
	t.Helper()
	buf, n := build(t, s)
	orig := bytes.Clone(buf[:n])
	if v := h.Handle(buf, n, Meta{Mark: mark}); v.Len != 0 || v.SetMark || v.Drop || v.After.Set() {
		t.Fatalf("%s: verdict %+v, want Verdict{} (unchanged, no mark)", what, v)
	}
	if !bytes.Equal(buf[:n], orig) {
		t.Fatalf("%s: packet bytes changed under a Verdict{}", what)
	}
}

// clientSegment handles s, a client segment of the tracked phase after the
// SYN (pre-NAT the steer chain set TrackBit in its mark, next to a user's
// 0x5), and fails unless it comes out 8 bytes longer with HOST_ID 7, valid
// checksums and no mark set (the packet keeps its own; the remember chain
// clears the bits; the kernel ends tracking). It returns the decoded output.
func clientSegment(t *testing.T, h *Handler, s seg, what string) *layers.TCP {
	t.Helper()
	buf, n := build(t, s)
	v := h.Handle(buf, n, Meta{Mark: 0x5 | trackBit})
	if v.Len != n+tcpoption.HostIDOptionSpace || v.SetMark || v.Drop {
		t.Fatalf("%s: verdict %+v (len was %d), want +8 bytes, no mark", what, v, n)
	}
	tcp := check(t, buf[:v.Len])
	if id, ok := hostIDOf(t, buf[:v.Len]); !ok || id != 7 {
		t.Fatalf("%s: HOST_ID %d %v, want 7", what, id, ok)
	}
	if len(tcp.Payload) != s.payload || tcp.Seq != s.seq || tcp.Ack != s.ackn {
		t.Fatalf("%s: payload %d seq %d ack %d changed", what, len(tcp.Payload), tcp.Seq, tcp.Ack)
	}
	return tcp
}

// RFC 7974 §4.2 with the kernel following the flow (rules.Spec.Track): the
// SYN gets the option and TrackBit (user bits kept); every later client
// segment queued with TrackBit in its mark carries the option, and the
// handler never says done; the server's packets are not queued, and one that reaches the
// handler anyway passes unchanged (the kernel lowered the SYN-ACK's MSS).
func TestHandlerTracksFlow(t *testing.T) {
	h, st := newHandler(testConfig{TCPOption: true})
	const isn, sisn = 1000, 5000

	buf, n := build(t, seg{src: client, dst: server, sport: 40000, dport: 80, syn: true, seq: isn, mss: 1460})
	v := h.Handle(buf, n, Meta{Mark: 0x5})
	if v.Len != n+8 || !v.SetMark || v.Mark != 0x5|0x10000 {
		t.Fatalf("SYN verdict %+v: want +8 bytes and mark 0x10005 (user bits kept)", v)
	}
	if tcp := check(t, buf[:v.Len]); mssOf(tcp) != 1460 {
		t.Fatalf("SYN MSS %d changed", mssOf(tcp))
	}
	if id, ok := hostIDOf(t, buf[:v.Len]); !ok || id != 7 {
		t.Fatalf("SYN HOST_ID %d %v, want 7", id, ok)
	}

	// The SYN-ACK is the kernel's (MSS lowered there): unchanged here.
	passes(t, h, seg{src: server, dst: client, sport: 80, dport: 40000, syn: true, ack: true, seq: sisn, ackn: isn + 1, mss: 1460}, "SYN-ACK")

	// Handshake ACK, data, more data after the server acknowledged some
	// (the kernel would have stopped queueing; if it queues, the option is
	// written), and a FIN: all carry the option, no mark.
	for i, s := range []seg{
		{src: client, dst: server, sport: 40000, dport: 80, ack: true, seq: isn + 1, ackn: sisn + 1},
		{src: client, dst: server, sport: 40000, dport: 80, ack: true, seq: isn + 1, ackn: sisn + 1, payload: 1400},
		{src: client, dst: server, sport: 40000, dport: 80, ack: true, seq: isn + 1401, ackn: sisn + 1, payload: 10},
		{src: client, dst: server, sport: 40000, dport: 80, ack: true, fin: true, seq: isn + 1411, ackn: sisn + 1},
	} {
		clientSegment(t, h, s, fmt.Sprintf("client segment %d", i+1))
	}
	passes(t, h, seg{src: server, dst: client, sport: 80, dport: 40000, ack: true, seq: sisn + 1, ackn: isn + 1401}, "server ACK of data")

	if st.Get(FlowsTracked) != 1 || st.Result("tcp-option", packet.Written) != 5 || st.Get(Modified) != 5 || st.Get(Untracked) != 2 ||
		st.Get(TrackDone) != 0 || st.Get(MSSLowered) != 0 || st.Get(FlowsFull) != 0 {
		t.Fatalf("counters %v", st.Snapshot())
	}
	if h.flows.Len() != 0 {
		t.Fatalf("%d entries in the flow table: TCP keeps no state", h.flows.Len())
	}
}

// No state: a client segment of a tracked flow whose SYN this handler never
// saw (the daemon restarted, or another worker's handler took the SYN)
// carries the option, and with ip-id scope new the IP-ID, like any other:
// TrackBit in its mark says it is of the tracked phase. Pre-NAT the same
// segment without TrackBit (queued by another rule, or after tracking
// ended) passes unchanged.
func TestHandlerSegmentsWithoutSYN(t *testing.T) {
	for _, c := range []struct {
		name         string
		cfg          testConfig
		option, ipid bool
	}{
		{"tcp-option", testConfig{TCPOption: true}, true, false},
		{"tcp-option 4 bytes", testConfig{TCPOption: true, OptionLen: 4}, true, false},
		{"ip-id new", testConfig{IPID: true, IPIDScope: "new"}, false, true},
		{"both", testConfig{TCPOption: true, IPID: true, IPIDScope: "new"}, true, true},
	} {
		t.Run(c.name, func(t *testing.T) {
			h, st := newHandler(c.cfg)
			for i, s := range []seg{
				{src: client, dst: server, sport: 41000, dport: 443, ack: true, seq: 7001, ackn: 9001},
				{src: client, dst: server, sport: 41000, dport: 443, ack: true, seq: 7001, ackn: 9001, payload: 517},
				{src: client, dst: server, sport: 41001, dport: 443, ack: true, fin: true, seq: 1, ackn: 1},
			} {
				passes(t, h, s, fmt.Sprintf("segment %d without TrackBit", i+1))
				buf, n := build(t, s)
				v := h.Handle(buf, n, Meta{Mark: 0x5 | trackBit})
				want := n
				if c.option {
					want = n + 8
				}
				if v.Len != want || v.SetMark || v.Drop {
					t.Fatalf("segment %d: verdict %+v (len was %d), want length %d, no mark", i+1, v, n, want)
				}
				tcp := check(t, buf[:v.Len])
				if len(tcp.Payload) != s.payload {
					t.Fatalf("segment %d: payload %d bytes", i+1, len(tcp.Payload))
				}
				if id, ok := hostIDOf(t, buf[:v.Len]); ok != c.option || (ok && id != 7) {
					t.Fatalf("segment %d: HOST_ID %d %v, want option %v", i+1, id, ok, c.option)
				}
				if l := c.cfg.OptionLen; c.option && l != 0 {
					if _, got, _ := tcpoption.HostIDOption(buf[:v.Len]); got != l {
						t.Fatalf("segment %d: HOST_ID length %d, want %d", i+1, got, l)
					}
				}
				wantID := uint16(0x1111)
				if c.ipid {
					wantID = 7
				}
				if id, _, _ := ipid.IPID(buf[:v.Len]); id != wantID {
					t.Fatalf("segment %d: IP-ID %#x, want %#x", i+1, id, wantID)
				}
			}
			wantOpt, wantIPID := uint64(0), uint64(0)
			if c.option {
				wantOpt = 3
			}
			if c.ipid {
				wantIPID = 3
			}
			if st.Result("tcp-option", packet.Written) != wantOpt || st.Result("ip-id", packet.Written) != wantIPID || st.Get(Modified) != 3 ||
				st.Get(FlowsTracked) != 0 || st.Get(Untracked) != 0 || h.flows.Len() != 0 {
				t.Fatalf("counters %v, %d flows held", st.Snapshot(), h.flows.Len())
			}
		})
	}
}

// A client RST ends tracking in the kernel; if queued it passes without
// the option (and without the IP-ID of scope new), unmarked, TrackBit in
// its mark or not.
func TestHandlerClientRSTPasses(t *testing.T) {
	h, st := newHandler(testConfig{TCPOption: true, IPID: true, IPIDScope: "new"})
	buf, n := build(t, seg{src: client, dst: server, sport: 40010, dport: 80, syn: true, seq: 1, mss: 1460})
	if v := h.Handle(buf, n, Meta{}); v.Len != n+8 || v.Mark != 0x10000 {
		t.Fatalf("SYN verdict %+v", v)
	}
	passes(t, h, seg{src: client, dst: server, sport: 40010, dport: 80, rst: true, seq: 2}, "RST")
	passesMark(t, h, seg{src: client, dst: server, sport: 40010, dport: 80, rst: true, seq: 2}, 0x5|trackBit, "RST with TrackBit")
	passes(t, h, seg{src: client, dst: server, sport: 40010, dport: 80, rst: true, ack: true, seq: 2, ackn: 77}, "RST-ACK")
	// Without the SYN (stateless) the same.
	passes(t, h, seg{src: client, dst: server, sport: 40011, dport: 80, rst: true, ack: true, seq: 2, ackn: 77}, "RST of another flow")
	if st.Result("tcp-option", packet.Written) != 1 || st.Result("ip-id", packet.Written) != 1 || st.Get(Modified) != 1 || st.Get(TrackDone) != 0 {
		t.Fatalf("counters %v", st.Snapshot())
	}
}

// Server->client TCP packets of flows that are not selected are not
// queued; one that arrives anyway (a ruleset of an older version, a race
// with a reload) passes unchanged, the SYN-ACK's MSS included, and counts
// as untracked, whatever the methods.
func TestHandlerServerReplyPasses(t *testing.T) {
	for _, cfg := range []testConfig{
		{TCPOption: true},
		{TCPOption: true, IPID: true, IPIDScope: "new"},
		{IPID: true, IPIDScope: "all"},
		{IPOption: true, IPOptType: 158, IPOptLen: 2},
	} {
		h, st := newHandler(cfg)
		for _, s := range []seg{
			{src: server, dst: client, sport: 80, dport: 40000, syn: true, ack: true, seq: 5000, ackn: 1001, mss: 1460},
			{src: server, dst: client, sport: 80, dport: 40000, ack: true, seq: 5001, ackn: 1001},
			{src: server, dst: client, sport: 80, dport: 40000, ack: true, seq: 5001, ackn: 1001, payload: 300},
			{src: server, dst: client, sport: 80, dport: 40000, rst: true, seq: 5301},
		} {
			passes(t, h, s, "server packet")
		}
		if st.Get(Untracked) != 4 || st.Get(Modified) != 0 || st.Get(MSSLowered) != 0 || st.Get(TrackDone) != 0 {
			t.Fatalf("%+v: counters %v", cfg, st.Snapshot())
		}
	}
}

// No TCP flow table any more: with the table at its cap (it holds UDP flows
// only), every SYN still gets the option and TrackBit, and counts as
// tracked; none is refused for want of room.
func TestHandlerTCPKeepsNoState(t *testing.T) {
	h, st := newHandler(testConfig{TCPOption: true})
	h.flows = NewFlows(1)
	for p := uint16(1); p <= 200; p++ {
		buf, n := build(t, seg{src: client, dst: server, sport: p, dport: 80, syn: true, seq: 1})
		if v := h.Handle(buf, n, Meta{}); v.Len != n+8 || !v.SetMark || v.Mark != 0x10000 {
			t.Fatalf("SYN %d: verdict %+v, want +8 bytes and TrackBit", p, v)
		}
	}
	if st.Get(FlowsTracked) != 200 || st.Get(FlowsFull) != 0 || h.flows.Len() != 0 {
		t.Fatalf("counters %v, %d flows held", st.Snapshot(), h.flows.Len())
	}
	// The bound on segments is a rule (ct original packets): the handler
	// writes the option on as many as are queued.
	for i := uint32(0); i < 50; i++ {
		clientSegment(t, h, seg{src: client, dst: server, sport: 1, dport: 80, ack: true, seq: 2 + 10*i, ackn: 1, payload: 10}, "segment")
	}
}

// Only tracked configurations mark segments after the SYN: without
// tcp-option or ip-id scope new, a client segment passes unchanged.
func TestHandlerUntrackedConfigLeavesSegments(t *testing.T) {
	for _, cfg := range []testConfig{
		{IPID: true, IPIDScope: "syn"},
		{IPOption: true, IPOptType: 158, IPOptLen: 2},
	} {
		if cfg.Tracks() {
			t.Fatalf("%+v tracks", cfg)
		}
		h, st := newHandler(cfg)
		buf, n := build(t, seg{src: client, dst: server, sport: 40020, dport: 80, syn: true, seq: 1})
		v := h.Handle(buf, n, Meta{Mark: 0x5})
		if v.Len == 0 || v.SetMark {
			t.Fatalf("%+v: SYN verdict %+v, want rewritten, no TrackBit", cfg, v)
		}
		check(t, buf[:v.Len])
		passes(t, h, seg{src: client, dst: server, sport: 40020, dport: 80, ack: true, seq: 2, ackn: 1, payload: 20}, "segment")
		passesMark(t, h, seg{src: client, dst: server, sport: 40020, dport: 80, ack: true, seq: 2, ackn: 1, payload: 20}, trackBit, "segment with TrackBit")
		if st.Get(FlowsTracked) != 0 {
			t.Fatalf("%+v: counters %v", cfg, st.Snapshot())
		}
	}
}

// A flow both tracked (tcp-option) and selected (http-header): the SYN sets
// both bits; the SYN-ACK, queued for the selected flow, has its MSS lowered
// by the largest insertion only (the kernel took the option's 8 bytes
// before queueing it) and counts as select-mss-lowered, not mss-lowered.
// Client segments of the tracked phase (TrackBit in the mark: the tracked
// rule comes first in the steer chain) carry the option and are translated;
// once the kernel ended tracking the select rule queues them without
// TrackBit: translated, the HTTP fields inserted, but no option.
func TestHandlerTrackedAndSelected(t *testing.T) {
	h, st := newHandler(testConfig{TCPOption: true, HTTPHeader: true, HTTPSel: []Selector{{Port: 80}},
		HTTPFields: HTTPFields{XFF: true}, SelectBit: 0x40000, MaxSelected: 16, IDBits: 16})
	buf, n := build(t, seg{src: client, dst: server, sport: 40030, dport: 80, syn: true, seq: 1000, mss: 1460})
	v := h.Handle(buf, n, Meta{Mark: 0x5})
	if v.Len != n+8 || !v.SetMark || v.Mark != 0x5|0x10000|0x40000 {
		t.Fatalf("SYN verdict %+v: want +8 bytes, mark 0x50005", v)
	}
	check(t, buf[:v.Len])

	fieldsText := stream.HeaderBytes(HTTPFields{XFF: true}, stream.IDText(7, 16, client, false), false)
	ins := len(fieldsText)
	const kernelMSS = 1460 - 8 // what the mss chain left
	buf, n = build(t, seg{src: server, dst: client, sport: 80, dport: 40030, syn: true, ack: true, seq: 5000, ackn: 1001, mss: kernelMSS})
	v = h.Handle(buf, n, Meta{})
	if v.Len != n || v.SetMark {
		t.Fatalf("SYN-ACK verdict %+v: want rewritten in place, no mark", v)
	}
	if got := mssOf(check(t, buf[:n])); int(got) != kernelMSS-ins {
		t.Fatalf("SYN-ACK MSS %d, want %d (lowered by the %d-byte insertion only)", got, kernelMSS-ins, ins)
	}
	// The handshake ACK carries the option and is translated as before.
	tcp := clientSegment(t, h, seg{src: client, dst: server, sport: 40030, dport: 80, ack: true, seq: 1001, ackn: 5001}, "handshake ACK")
	if tcp.Ack != 5001 {
		t.Fatalf("handshake ACK ack %d", tcp.Ack)
	}

	// request sends an HTTP request with the packet mark mark and checks
	// the fields were inserted (at sequence number out), and the option
	// written or not.
	request := func(what string, seq, out uint32, mark uint32, option bool) {
		t.Helper()
		req := "GET / HTTP/1.1\r\nHost: a\r\n\r\n"
		b, n := build(t, seg{src: client, dst: server, sport: 40030, dport: 80, ack: true, seq: seq, ackn: 5001, data: []byte(req)})
		buf := make([]byte, n, 2048) // room to render the new payload past the packet, as the queue's buffer has
		copy(buf, b)
		v := h.Handle(buf, n, Meta{Mark: mark})
		want := n + ins
		if option {
			want += tcpoption.HostIDOptionSpace
		}
		if v.Len != want || v.SetMark || v.Drop {
			t.Fatalf("%s: verdict %+v (len was %d), want length %d, no mark", what, v, n, want)
		}
		tcp := check(t, buf[:v.Len])
		if wantP := "GET / HTTP/1.1\r\n" + string(fieldsText) + "Host: a\r\n\r\n"; string(tcp.Payload) != wantP || tcp.Seq != out {
			t.Fatalf("%s: seq %d payload %q, want seq %d payload %q", what, tcp.Seq, tcp.Payload, out, wantP)
		}
		if id, ok := hostIDOf(t, buf[:v.Len]); ok != option || (ok && id != 7) {
			t.Fatalf("%s: HOST_ID %d %v, want option %v", what, id, ok, option)
		}
	}
	const req = len("GET / HTTP/1.1\r\nHost: a\r\n\r\n")
	request("request in the tracked phase", 1001, 1001, 0x5|trackBit, true)
	// The server acknowledges it (tracking ends in the kernel); the ACK is
	// mapped back.
	buf, n = build(t, seg{src: server, dst: client, sport: 80, dport: 40030, ack: true, seq: 5001, ackn: uint32(1001 + req + ins)})
	if v = h.Handle(buf, n, Meta{}); v.Len != n || v.SetMark {
		t.Fatalf("server ACK verdict %+v: want rewritten in place, no mark", v)
	}
	if got := check(t, buf[:n]).Ack; got != uint32(1001+req) {
		t.Fatalf("server ACK ack %d, want %d", got, 1001+req)
	}
	request("request after tracking", uint32(1001+req), uint32(1001+req+ins), 0x5, false)

	if st.Get(SelMSS) != 1 || st.Get(MSSLowered) != 0 || st.Get(SelFlows) != 1 || st.Get(FlowsTracked) != 1 || st.Get(Untracked) != 0 ||
		st.Result("tcp-option", packet.Written) != 3 || st.Get(HTTPRequests) != 2 || st.Get(Oversize) != 0 {
		t.Fatalf("counters %v", st.Snapshot())
	}
}

// IP-ID scopes: syn marks only the SYN, new every client segment of the
// tracked phase (TrackBit in its mark pre-NAT; the kernel bounds which), all
// every client packet. With tcp-option and scope all the AllTCP rule queues
// every client segment: those without TrackBit get the IP-ID, not the
// option.
func TestHandlerIPIDScopes(t *testing.T) {
	for _, c := range []struct {
		scope  string
		option bool
		track  bool
		// the data segment's IP-ID is set without, with TrackBit
		idSet, idSetTracked bool
	}{
		{"syn", false, false, false, false},
		{"new", false, true, false, true},
		{"all", false, false, true, true},
		{"all", true, true, true, true},
	} {
		name := fmt.Sprintf("scope %s, tcp-option %v", c.scope, c.option)
		h, st := newHandler(testConfig{IPID: true, IPIDScope: c.scope, TCPOption: c.option})
		buf, n := build(t, seg{src: client, dst: server, sport: 40003, dport: 80, syn: true, seq: 1})
		v := h.Handle(buf, n, Meta{})
		wantLen := n
		if c.option {
			wantLen += tcpoption.HostIDOptionSpace
		}
		if v.Len != wantLen || v.SetMark != c.track || (c.track && v.Mark != trackBit) {
			t.Fatalf("%s: SYN verdict %+v, want length %d, TrackBit %v", name, v, wantLen, c.track)
		}
		if id, atomic, _ := ipid.IPID(buf[:v.Len]); id != 7 || !atomic {
			t.Fatalf("%s: SYN IP-ID %#x", name, id)
		}
		check(t, buf[:v.Len])
		for _, tracked := range []bool{false, true} {
			mark, idSet, option := uint32(0x5), c.idSet, false
			if tracked {
				mark, idSet, option = 0x5|trackBit, c.idSetTracked, c.option
			}
			buf, n = build(t, seg{src: client, dst: server, sport: 40003, dport: 80, ack: true, seq: 2, ackn: 1, payload: 5})
			v = h.Handle(buf, n, Meta{Mark: mark})
			wantLen := 0
			switch {
			case option:
				wantLen = n + tcpoption.HostIDOptionSpace
			case idSet:
				wantLen = n
			}
			if v.Len != wantLen || v.SetMark || v.Drop {
				t.Fatalf("%s: data verdict %+v (mark %#x), want length %d, no mark", name, v, mark, wantLen)
			}
			out := buf[:max(v.Len, n)]
			if id, _, _ := ipid.IPID(out); (id == 7) != idSet {
				t.Fatalf("%s: data segment (mark %#x) IP-ID %#x, want set=%v", name, mark, id, idSet)
			}
			if id, ok := hostIDOf(t, out); ok != option || (ok && id != 7) {
				t.Fatalf("%s: data segment (mark %#x) HOST_ID %d %v, want option %v", name, mark, id, ok, option)
			}
			check(t, out)
		}
		// A client RST: the IP-ID with scope all, never the option.
		buf, n = build(t, seg{src: client, dst: server, sport: 40003, dport: 80, rst: true, ack: true, seq: 7, ackn: 1})
		v = h.Handle(buf, n, Meta{Mark: 0x5 | trackBit})
		all, wantLen := c.scope == "all", 0
		if all {
			wantLen = n
		}
		if id, _, _ := ipid.IPID(buf[:n]); (id == 7) != all || v.Len != wantLen || v.SetMark {
			t.Fatalf("%s: RST verdict %+v, IP-ID %#x", name, v, id)
		}
		if _, ok := hostIDOf(t, buf[:n]); ok {
			t.Fatalf("%s: RST has the option", name)
		}
		wantOpt := uint64(0)
		if c.option {
			wantOpt = 2 // the SYN and the segment with TrackBit
		}
		if st.Result("tcp-option", packet.Written) != wantOpt {
			t.Fatalf("%s: counters %v, want %d options written", name, st.Snapshot(), wantOpt)
		}
	}
}

// Garbage and foreign packets pass unchanged and are counted.
func TestHandlerFailsOpen(t *testing.T) {
	h, st := newHandler(testConfig{TCPOption: true, IPID: true, IPIDScope: "syn"})
	for _, b := range [][]byte{nil, {0x45}, make([]byte, 60)} {
		buf := make([]byte, len(b), len(b)+packet.Headroom)
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
	// Its later segments too (no state to consult: the source decides).
	buf, n = build(t, seg{src: client, dst: server, sport: 1, dport: 80, ack: true, seq: 1, ackn: 1})
	if v := h.Handle(buf, n, Meta{}); v.Len != 0 || v.SetMark || st.Get(NoHostID) != 2 {
		t.Fatalf("unknown host's segment: %+v, counters %v", v, st.Snapshot())
	}
}

// Neither the SYN nor a later segment of a tracked flow allocates.
func TestHandlerNoAllocs(t *testing.T) {
	h, _ := newHandler(testConfig{TCPOption: true, IPID: true, IPIDScope: "new"})
	for _, s := range []seg{
		{src: client, dst: server, sport: 40000, dport: 80, syn: true, seq: 1, mss: 1460},
		{src: client, dst: server, sport: 40000, dport: 80, ack: true, seq: 2, ackn: 1, payload: 100},
	} {
		tmpl, n := build(t, s)
		noAllocs(t, h, tmpl, n, s.syn, "packet")
	}
}

// noAllocs checks that h handles the segment tmpl[:n] (a SYN, or a later
// segment of the tracked phase) without allocating; what names it.
func noAllocs(t *testing.T, h *Handler, tmpl []byte, n int, syn bool, what string) {
	t.Helper()
	buf := make([]byte, n, n+packet.Headroom)
	m := Meta{Mark: trackBit} // the later segment: of the tracked phase
	if syn {
		m = Meta{}
	}
	if a := testing.AllocsPerRun(100, func() {
		copy(buf[:n], tmpl[:n])
		h.Handle(buf, n, m)
	}); a != 0 {
		t.Errorf("%v allocations per %s (syn %v), want 0", a, what, syn)
	}
}

func BenchmarkHandleSYN(b *testing.B) {
	h, _ := newHandler(testConfig{TCPOption: true, IPID: true, IPIDScope: "syn"})
	tmpl, n := build(b, seg{src: client, dst: server, sport: 40000, dport: 80, syn: true, seq: 1, mss: 1460})
	buf := make([]byte, n, n+packet.Headroom)
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
	h, st := newHandler(testConfig{TCPOption: true, PostNAT: true})
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
	// The de-NATed reply is the kernel's business: unchanged, untracked.
	passes(t, h, seg{src: server, dst: client, sport: 80, dport: 40000, syn: true, ack: true, seq: 9, ackn: 2, mss: 1460}, "SYN-ACK")
	if st.Get(MSSLowered) != 0 || st.Get(Untracked) != 1 {
		t.Fatalf("SYN-ACK of a tagged flow: counters %v", st.Snapshot())
	}
	// A tagged later segment, of this flow or of one whose SYN this
	// handler never saw, carries the tag's HOST_ID (no TrackBit post-NAT:
	// the mark is the tag) and gets mark 0 back.
	for _, port := range []uint16{40000, 40001} {
		buf, n = build(t, seg{src: public, dst: server, sport: port, dport: 80, ack: true, seq: 2, ackn: 10, payload: 30})
		v = h.Handle(buf, n, Meta{Mark: tagOf(client)})
		if v.Len != n+8 || !v.SetMark || v.Mark != 0 {
			t.Fatalf("tagged segment from port %d: %+v, want +8 bytes, mark 0", port, v)
		}
		check(t, buf[:v.Len])
		if id, ok := hostIDOf(t, buf[:v.Len]); !ok || id != 7 {
			t.Fatalf("tagged segment HOST_ID %d %v, want 7", id, ok)
		}
	}
	// A tagged packet that stays unchanged (a RST) still gets its mark back.
	buf, n = build(t, seg{src: public, dst: server, sport: 40001, dport: 80, rst: true, seq: 32})
	if v = h.Handle(buf, n, Meta{Mark: tagOf(client)}); !v.SetMark || v.Mark != 0 || v.Len != 0 {
		t.Fatalf("tagged RST: %+v, want unchanged, mark 0", v)
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

// Post-NAT without a tag: a later segment names its inside host through
// conntrack, statelessly as well. Post-NAT the mark holds no TrackBit (the
// tracked rule cannot set it there): every queued later segment is of the
// tracked phase and carries the option, and with ip-id scope new the IP-ID.
func TestHandlerPostNATConntrackSegment(t *testing.T) {
	public := netip.MustParseAddr("192.0.2.1")
	for _, c := range []struct {
		name         string
		cfg          testConfig
		option, ipid bool
	}{
		{"tcp-option", testConfig{TCPOption: true, PostNAT: true}, true, false},
		{"ip-id new", testConfig{IPID: true, IPIDScope: "new", PostNAT: true}, false, true},
		{"both", testConfig{TCPOption: true, IPID: true, IPIDScope: "new", PostNAT: true}, true, true},
	} {
		var asked conntrack.Key
		h, st := newHandler(c.cfg)
		h.resolve = func(k conntrack.Key) (netip.AddrPort, error) {
			asked = k
			return netip.AddrPortFrom(client, 40000), nil
		}
		buf, n := build(t, seg{src: public, dst: server, sport: 61000, dport: 80, ack: true, seq: 2, ackn: 10, payload: 30})
		v := h.Handle(buf, n, Meta{Mark: 0x5})
		want := n
		if c.option {
			want += tcpoption.HostIDOptionSpace
		}
		if v.Len != want || v.SetMark {
			t.Fatalf("%s: segment verdict %+v, want length %d, the user's mark left alone", c.name, v, want)
		}
		check(t, buf[:v.Len])
		if id, ok := hostIDOf(t, buf[:v.Len]); ok != c.option || (ok && id != 7) {
			t.Fatalf("%s: HOST_ID %d %v, want option %v (the conntrack answer's host)", c.name, id, ok, c.option)
		}
		if id, _, _ := ipid.IPID(buf[:v.Len]); (id == 7) != c.ipid {
			t.Fatalf("%s: IP-ID %#x, want set=%v", c.name, id, c.ipid)
		}
		if want := (conntrack.Key{Proto: 6, Src: netip.AddrPortFrom(public, 61000), Dst: netip.AddrPortFrom(server, 80)}); asked != want {
			t.Fatalf("%s: conntrack asked for %+v, want %+v", c.name, asked, want)
		}
		if st.Get(FlowsTracked) != 0 || h.flows.Len() != 0 {
			t.Fatalf("%s: counters %v", c.name, st.Snapshot())
		}
	}
}

func BenchmarkHandleSYNPostNATTag(b *testing.B) {
	h, _ := newHandler(testConfig{TCPOption: true, PostNAT: true})
	ca := client.As4()
	tag := binary.NativeEndian.Uint32(ca[:])
	tmpl, n := build(b, seg{src: netip.MustParseAddr("192.0.2.1"), dst: server, sport: 40000, dport: 80, syn: true, seq: 1, mss: 1460})
	buf := make([]byte, n, n+packet.Headroom)
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
	out := make([]byte, len(buf.Bytes()), len(buf.Bytes())+packet.Headroom)
	copy(out, buf.Bytes())
	return out, len(buf.Bytes())
}

// The first packets of a UDP flow carry the IPv4 option and the IP-ID (their
// own counts), the last of them tells the ruleset the flow is done, and
// packets queued after that pass untouched and are not taken for a new flow.
func TestHandlerUDPFirstPackets(t *testing.T) {
	h, st := newHandler(testConfig{IPOption: true, IPOptType: 30, IPOptLen: 2, IPOptUDP: 3, IPID: true, IPIDScope: "syn", IPIDUDP: 2})
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
			if p.ErrorLayer() != nil || !packet.IPv4ChecksumOK(buf[:v.Len]) || !packet.UDPChecksumOK(buf[:v.Len]) {
				t.Fatalf("datagram %d: output does not decode with valid checksums", i)
			}
			if id, _, ok := ipoption.IPOptionHostID(buf[:v.Len], 30); !ok || id != 7 {
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
	if st.Get(FlowsTracked) != 1 || st.Get(TrackDone) != 1 || st.Result("ip-option", packet.Written) != 3 || st.Result("ip-id", packet.Written) != 2 {
		t.Fatalf("counters %v", st.Snapshot())
	}
}

// ip-option rides on the TCP SYN only, together with the RFC 7974 option.
func TestHandlerIPOptionOnSYN(t *testing.T) {
	h, st := newHandler(testConfig{IPOption: true, IPOptType: 158, IPOptLen: 4, TCPOption: true})
	buf, n := build(t, seg{src: client, dst: server, sport: 40000, dport: 80, syn: true, seq: 1, mss: 1460})
	v := h.Handle(buf, n, Meta{})
	if v.Len != n+8+8 {
		t.Fatalf("SYN verdict %+v: want 8 option bytes in IP and 8 in TCP", v)
	}
	check(t, buf[:v.Len])
	if id, l, ok := ipoption.IPOptionHostID(buf[:v.Len], 158); !ok || id != 7 || l != 4 {
		t.Fatalf("IP option %d/%d %v", id, l, ok)
	}
	if id, ok := hostIDOf(t, buf[:v.Len]); !ok || id != 7 {
		t.Fatal("TCP option missing next to the IP option")
	}
	buf, n = build(t, seg{src: client, dst: server, sport: 40000, dport: 80, ack: true, seq: 2, ackn: 1})
	if v = h.Handle(buf, n, Meta{Mark: trackBit}); v.Len != n+8 || st.Result("ip-option", packet.Written) != 1 {
		t.Fatalf("later segment: %+v (ip-option written %d): want the TCP option only", v, st.Result("ip-option", packet.Written))
	}
}
