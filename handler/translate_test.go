package handler

import (
	"bytes"
	"encoding/binary"
	"net/netip"
	"testing"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"

	"github.com/natreveal/natreveal/hostid"
	"github.com/natreveal/natreveal/stream"
)

var (
	selClient = netip.MustParseAddr("100.64.0.7")
	selServer = netip.MustParseAddr("198.51.100.1")
)

const (
	selISN  = 0xfffffff0 // wraps within the first bytes
	srvISN  = 5000
	selBit  = 0x40000
	cliPort = 40000
)

// selHandler builds a handler that selects port 80 (http-header) or
// 198.51.100.0/24 port 80 (proxy-protocol); tweaks change its config first.
func selHandler(t testing.TB, proxy bool, tweaks ...func(*testConfig)) (*Handler, *Stats) {
	st := &Stats{}
	cfg := testConfig{
		Inside: []netip.Prefix{netip.MustParsePrefix("100.64.0.0/24")}, SelectBit: selBit, MaxSelected: 16,
		HTTPHeader: !proxy, HTTPSel: []Selector{{Port: 80}}, HTTPFields: HTTPFields{XFF: true, Forwarded: true},
		Proxy: proxy, ProxySel: []Selector{{Prefix: netip.MustParsePrefix("198.51.100.0/24"), Port: 80}},
		ProxyCfg: ProxyConfig{Version: 2, CRC32C: true}, IDBits: 16,
	}
	for _, tw := range tweaks {
		tw(&cfg)
	}
	return NewHandler(cfg.handler(), hostid.Lower16{}, nil, nil, NewFlows(16), st), st
}

type pkt struct {
	fromServer    bool
	syn, ack, fin bool
	seq, ackn     uint32
	payload       []byte
	mss           uint16
	sack          [][2]uint32
}

func buildPkt(t testing.TB, p pkt) ([]byte, int) {
	t.Helper()
	src, dst, sp, dp := selClient, selServer, uint16(cliPort), uint16(80)
	if p.fromServer {
		src, dst, sp, dp = dst, src, dp, sp
	}
	ip := &layers.IPv4{Version: 4, TTL: 64, Protocol: layers.IPProtocolTCP, Flags: layers.IPv4DontFragment,
		SrcIP: src.AsSlice(), DstIP: dst.AsSlice()}
	tcp := &layers.TCP{SrcPort: layers.TCPPort(sp), DstPort: layers.TCPPort(dp), SYN: p.syn, ACK: p.ack, FIN: p.fin,
		Seq: p.seq, Ack: p.ackn, Window: 64240}
	if p.mss != 0 {
		tcp.Options = append(tcp.Options, layers.TCPOption{OptionType: layers.TCPOptionKindMSS, OptionLength: 4,
			OptionData: []byte{byte(p.mss >> 8), byte(p.mss)}})
	}
	if len(p.sack) > 0 {
		var d []byte
		for _, b := range p.sack {
			d = binary.BigEndian.AppendUint32(d, b[0])
			d = binary.BigEndian.AppendUint32(d, b[1])
		}
		// One NOP first: the blocks sit at odd... no, at offset 22: 2-byte aligned, not 4.
		tcp.Options = append(tcp.Options, layers.TCPOption{OptionType: layers.TCPOptionKindNop},
			layers.TCPOption{OptionType: layers.TCPOptionKindSACK, OptionLength: uint8(2 + len(d)), OptionData: d})
	}
	tcp.SetNetworkLayerForChecksum(ip)
	buf := gopacket.NewSerializeBuffer()
	if err := gopacket.SerializeLayers(buf, gopacket.SerializeOptions{FixLengths: true, ComputeChecksums: true},
		ip, tcp, gopacket.Payload(p.payload)); err != nil {
		t.Fatal(err)
	}
	out := make([]byte, 9216+64)
	return out, copy(out, buf.Bytes())
}

// decode checks a packet with gopacket, checksums included.
func decode(t testing.TB, b []byte) *layers.TCP {
	t.Helper()
	p := gopacket.NewPacket(b, layers.LayerTypeIPv4, gopacket.Default)
	if el := p.ErrorLayer(); el != nil {
		t.Fatalf("gopacket: %v", el.Error())
	}
	ip := p.Layer(layers.LayerTypeIPv4).(*layers.IPv4)
	tcp := p.Layer(layers.LayerTypeTCP).(*layers.TCP)
	if int(ip.Length) != len(b) {
		t.Fatalf("IPv4 total length %d, packet %d", ip.Length, len(b))
	}
	// Recompute both checksums with gopacket and compare.
	want := *tcp
	wip := *ip
	want.SetNetworkLayerForChecksum(&wip)
	sb := gopacket.NewSerializeBuffer()
	if err := gopacket.SerializeLayers(sb, gopacket.SerializeOptions{ComputeChecksums: true, FixLengths: true}, &wip, &want, gopacket.Payload(tcp.Payload)); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(sb.Bytes(), b) {
		t.Fatalf("checksums differ from gopacket's:\n got %x\nwant %x", b, sb.Bytes())
	}
	return tcp
}

// handle runs one packet; it returns the output packet (nil when dropped).
func handle(t testing.TB, h *Handler, p pkt) ([]byte, Verdict) {
	t.Helper()
	buf, n := buildPkt(t, p)
	v := h.Handle(buf, n, Meta{})
	if v.Drop {
		return nil, v
	}
	if v.Len > 0 {
		n = v.Len
	}
	return buf[:n], v
}

func handshake(t testing.TB, h *Handler) {
	t.Helper()
	_, v := handle(t, h, pkt{syn: true, seq: selISN, mss: 1460})
	if !v.SetMark || v.Mark&selBit == 0 {
		t.Fatalf("SYN not selected: %+v", v)
	}
	out, _ := handle(t, h, pkt{fromServer: true, syn: true, ack: true, seq: srvISN, ackn: selISN + 1, mss: 1460})
	tcp := decode(t, out)
	if m := binary.BigEndian.Uint16(tcp.Options[0].OptionData); m >= 1460 {
		t.Errorf("SYN-ACK MSS %d not lowered", m)
	}
	if tcp.Ack != selISN+1 {
		t.Errorf("SYN-ACK ack %#x", tcp.Ack)
	}
}

const fields = "X-Forwarded-For: _0x0007\r\nForwarded: for=\"_0x0007\"\r\n"

func TestTranslateHTTP(t *testing.T) {
	h, st := selHandler(t, false)
	handshake(t, h)
	req := "GET / HTTP/1.1\r\nHost: a\r\nX-Forwarded-For: 6.6.6.6\r\nforwarded: for=x\r\n\r\n"
	out, _ := handle(t, h, pkt{ack: true, seq: selISN + 1, ackn: srvISN + 1, payload: []byte(req)})
	tcp := decode(t, out)
	want := "GET / HTTP/1.1\r\n" + fields + "Host: a\r\n\r\n"
	if string(tcp.Payload) != want || tcp.Seq != selISN+1 {
		t.Fatalf("got seq %#x %q, want %q", tcp.Seq, tcp.Payload, want)
	}
	// A retransmission gets the same bytes.
	out2, _ := handle(t, h, pkt{ack: true, seq: selISN + 1, ackn: srvISN + 1, payload: []byte(req)})
	if !bytes.Equal(decode(t, out2).Payload, tcp.Payload) {
		t.Fatal("retransmission rewritten differently")
	}
	delta := uint32(len(want) - len(req))
	// The server acknowledges everything, and SACKs a later range.
	end := selISN + 1 + uint32(len(want))
	out, _ = handle(t, h, pkt{fromServer: true, ack: true, seq: srvISN + 1, ackn: end,
		sack: [][2]uint32{{end + 100, end + 200}}})
	tcp = decode(t, out)
	if tcp.Ack != selISN+1+uint32(len(req)) {
		t.Errorf("ack %#x, want %#x", tcp.Ack, selISN+1+uint32(len(req)))
	}
	var sack []byte
	for _, o := range tcp.Options {
		if o.OptionType == layers.TCPOptionKindSACK {
			sack = o.OptionData
		}
	}
	if l := binary.BigEndian.Uint32(sack); l != end+100-delta {
		t.Errorf("SACK left %#x, want %#x", l, end+100-delta)
	}
	// A second request whose XFF name is split across segments: the first
	// segment is cut before that line, the client resends it whole.
	c := selISN + 1 + uint32(len(req))
	p1 := "POST /u HTTP/1.0\r\nContent-Length: 3\r\nX-Forw"
	out, _ = handle(t, h, pkt{ack: true, seq: c, ackn: srvISN + 1, payload: []byte(p1)})
	tcp = decode(t, out)
	if w := "POST /u HTTP/1.0\r\n" + fields + "Content-Length: 3\r\n"; string(tcp.Payload) != w || tcp.Seq != c+delta {
		t.Fatalf("cut segment: seq %#x %q", tcp.Seq, tcp.Payload)
	}
	p2 := "X-Forwarded-For: 1\r\n\r\nabc"
	c2 := c + uint32(len(p1)-len("X-Forw"))
	out, _ = handle(t, h, pkt{ack: true, seq: c2, ackn: srvISN + 1, payload: []byte(p2)})
	tcp = decode(t, out)
	if string(tcp.Payload) != "\r\nabc" {
		t.Fatalf("rest: %q", tcp.Payload)
	}
	if st.Get(HTTPRequests) != 2 || st.Get(HTTPForged) != 3 || st.Get(SelHeld) != 1 {
		t.Errorf("counters %v", st.Snapshot())
	}
	// FINs both ways, both acknowledged: the state goes.
	cEnd := c2 + uint32(len(p2))
	handle(t, h, pkt{ack: true, fin: true, seq: cEnd, ackn: srvISN + 1})
	handle(t, h, pkt{fromServer: true, ack: true, fin: true, seq: srvISN + 1, ackn: 0})
	o, _ := handle(t, h, pkt{fromServer: true, ack: true, seq: srvISN + 2, ackn: decode(t, out).Seq + uint32(len(tcp.Payload)) + 1})
	if got := decode(t, o).Ack; got != cEnd+1 {
		t.Errorf("FIN ack %#x, want %#x", got, cEnd+1)
	}
	handle(t, h, pkt{ack: true, seq: cEnd + 1, ackn: srvISN + 2})
	if h.sel.Len() != 0 || st.Get(SelDone) != 1 {
		t.Errorf("state not freed: %d streams, %v", h.sel.Len(), st.Snapshot())
	}
}

func TestTranslateProxyOnAck(t *testing.T) {
	h, st := selHandler(t, true, func(c *testConfig) {
		c.ProxyCfg.OnAck = true
		for i := range c.ProxySel {
			c.ProxySel[i].OnAck = true
		}
	})
	handshake(t, h)
	out, _ := handle(t, h, pkt{ack: true, seq: selISN + 1, ackn: srvISN + 1})
	tcp := decode(t, out)
	want, err := stream.BuildProxyHeader(2, true, netip.AddrPortFrom(selClient, cliPort), netip.AddrPortFrom(selServer, 80), "_0x0007")
	if err != nil || !bytes.Equal(tcp.Payload, want) || tcp.Seq != selISN+1 {
		t.Fatalf("handshake ACK carries %x, want %x (%v)", tcp.Payload, want, err)
	}
	// Once acknowledged, pure ACKs follow it.
	handle(t, h, pkt{fromServer: true, ack: true, seq: srvISN + 1, ackn: selISN + 1 + uint32(len(want))})
	out, _ = handle(t, h, pkt{ack: true, seq: selISN + 1, ackn: srvISN + 1})
	if tcp = decode(t, out); len(tcp.Payload) != 0 || tcp.Seq != selISN+1+uint32(len(want)) {
		t.Fatalf("later ACK: seq %#x, %d bytes", tcp.Seq, len(tcp.Payload))
	}
	out, _ = handle(t, h, pkt{ack: true, seq: selISN + 1, ackn: srvISN + 1, payload: []byte("hello")})
	if tcp = decode(t, out); string(tcp.Payload) != string(want)+"hello" || tcp.Seq != selISN+1 {
		t.Fatalf("first data: seq %#x %q", tcp.Seq, tcp.Payload)
	}
	if st.Get(ProxyWritten) != 1 {
		t.Errorf("counters %v", st.Snapshot())
	}
}

func TestTranslateProxyForged(t *testing.T) {
	for _, replace := range []bool{false, true} {
		h, st := selHandler(t, true, func(c *testConfig) { c.ProxyCfg.ReplaceClient = replace })
		handshake(t, h)
		// The first 4 bytes could start a signature: held back (removed
		// until they decide), so only natreveal's header leaves and the
		// client is not left waiting on them (issue 17 item 5).
		if out, v := handle(t, h, pkt{ack: true, seq: selISN + 1, ackn: srvISN + 1, payload: []byte("PROX")}); v.Drop || out == nil ||
			bytes.Contains(decode(t, out).Payload, []byte("PROX\r")) || bytes.HasSuffix(decode(t, out).Payload, []byte("PROX")) {
			t.Fatal("undecided prefix passed")
		}
		forged := "PROXY TCP4 6.6.6.6 1.1.1.1 1 2\r\n"
		out, _ := handle(t, h, pkt{ack: true, seq: selISN + 1, ackn: srvISN + 1, payload: []byte(forged + "data")})
		tcp := decode(t, out)
		switch {
		case !replace && (!tcp.RST || len(tcp.Payload) != 0 || st.Get(ProxyForgedReset) != 1):
			t.Errorf("reset mode: %+v", tcp)
		case replace && (bytes.Contains(tcp.Payload, []byte("6.6.6.6")) || !bytes.HasSuffix(tcp.Payload, []byte("data")) || st.Get(ProxyForgedReplaced) != 1):
			t.Errorf("replace mode: %q", tcp.Payload)
		}
	}
}

func TestTableCap(t *testing.T) {
	h, st := selHandler(t, false)
	cfg := h.cfg.Stream
	cfg.MaxSelected = 1 // one per shard at most: 64
	h.sel = stream.New(cfg, &st.Counters)
	for i := 0; i < 200; i++ {
		buf, n := buildPkt(t, pkt{syn: true, seq: uint32(i)})
		binary.BigEndian.PutUint16(buf[20:], uint16(1000+i)) // source port: checksum not checked here
		h.Handle(buf, n, Meta{})
	}
	if st.Get(SelFull) == 0 || st.Get(SelFlows)+st.Get(SelFull) != 200 || h.sel.Len() > stream.Shards {
		t.Errorf("cap: %v, held %d", st.Snapshot(), h.sel.Len())
	}
}

// FuzzHTTPSegmentation: however a client stream is cut into segments (and
// however the translator cuts them back), the server receives the same
// bytes as from one segment, and every output packet passes gopacket.
func FuzzHTTPSegmentation(f *testing.F) {
	f.Add([]byte("GET / HTTP/1.1\r\nX-Forwarded-For: a\r\n x\r\nHost: h\r\n\r\n"), []byte{3, 7, 1})
	f.Add([]byte("POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\nX: y\r\n\r\nGET /2 HTTP/1.0\r\nForwarded: for=z\r\n\r\n"), []byte{5, 20, 2, 9})
	f.Add([]byte("POST / HTTP/1.1\r\nContent-Length: 5\r\n\r\nhelloGET / HTTP/1.1\r\n\r\n"), []byte{1})
	f.Add([]byte("\x16\x03\x01\x00\x05hello"), []byte{2})
	f.Fuzz(func(t *testing.T, data, cuts []byte) {
		if len(data) == 0 || len(data) > 4000 {
			return
		}
		whole := serverStream(t, data, nil)
		parts := serverStream(t, data, cuts)
		n := min(len(whole), len(parts))
		if !bytes.Equal(whole[:n], parts[:n]) {
			t.Fatalf("segmented output differs:\nwhole %q\nparts %q", whole, parts)
		}
	})
}

// serverStream sends data through a fresh handler, in segments of the
// sizes cuts gives (cycled; 0 or none: one segment), resending from
// wherever the translator cut, and returns the bytes the server would have
// in order.
func serverStream(t *testing.T, data, cuts []byte) []byte {
	h, _ := selHandler(t, false)
	handshake(t, h)
	var got []byte
	pos, k := 0, 0
	for pos < len(data) && k < 10*len(data)+10 {
		size := len(data) - pos
		if len(cuts) > 0 && cuts[k%len(cuts)] > 0 {
			size = min(size, int(cuts[k%len(cuts)]))
		}
		k++
		for {
			out, v := handle(t, h, pkt{ack: true, seq: selISN + 1 + uint32(pos), ackn: srvISN + 1, payload: data[pos : pos+size]})
			if out == nil && v.Drop {
				if pos+size >= len(data) {
					return got // the end of the stream is undecided
				}
				size++ // the client coalesces on retransmission
				continue
			}
			tcp := decode(t, out)
			o := int(tcp.Seq - (selISN + 1))
			if o > len(got) {
				t.Fatalf("gap in the output at %d (have %d)", o, len(got))
			}
			got = append(got[:o], tcp.Payload...)
			// How far the client got: the server's ack mapped back.
			ao, _ := handle(t, h, pkt{fromServer: true, ack: true, seq: srvISN + 1, ackn: tcp.Seq + uint32(len(tcp.Payload))})
			pos = int(decode(t, ao).Ack - (selISN + 1))
			break
		}
	}
	return got
}

// A reload builds a new handler; KeepStreams hands it the selected flows in
// progress, so their translation goes on with the same state.
func TestKeepStreamsOnReload(t *testing.T) {
	old, _ := selHandler(t, false)
	h, _ := selHandler(t, false)
	if h.sel.Streams() == old.sel.Streams() {
		t.Fatal("two handlers share a stream table before KeepStreams")
	}
	h.KeepStreams(old)
	if h.sel.Streams() != old.sel.Streams() {
		t.Error("KeepStreams did not carry the selected flows over")
	}
	plain, _ := newHandler(testConfig{TCPOption: true})
	plain.KeepStreams(old)
	if plain.sel != nil {
		t.Error("a handler that selects nothing took a stream table")
	}
}

// A late copy of the SYN, after the flow moved on (SYNs have queues of
// their own, so another lane may hand it over late), keeps the flow's state:
// the next request is translated at the flow's offset. A SYN with another
// ISN starts the tuple over.
func TestRetransmittedSYNKeepsState(t *testing.T) {
	h, _ := selHandler(t, false)
	handshake(t, h)
	req := "GET / HTTP/1.1\r\nHost: a\r\n\r\n"
	want := "GET / HTTP/1.1\r\n" + fields + "Host: a\r\n\r\n"
	if out, _ := handle(t, h, pkt{ack: true, seq: selISN + 1, ackn: srvISN + 1, payload: []byte(req)}); string(decode(t, out).Payload) != want {
		t.Fatalf("first request: %q", decode(t, out).Payload)
	}
	if _, v := handle(t, h, pkt{syn: true, seq: selISN, mss: 1460}); v.Drop || v.Mark&selBit == 0 {
		t.Fatalf("a retransmitted SYN: %+v", v)
	}
	seq := selISN + 1 + uint32(len(req))
	out, v := handle(t, h, pkt{ack: true, seq: seq, ackn: srvISN + 1, payload: []byte(req)})
	if v.Drop {
		t.Fatal("the request after a retransmitted SYN was dropped")
	}
	if tcp := decode(t, out); string(tcp.Payload) != want || tcp.Seq != seq+uint32(len(want)-len(req)) {
		t.Errorf("the request after a retransmitted SYN: seq %#x %q, want %#x %q", tcp.Seq, tcp.Payload, seq+uint32(len(want)-len(req)), want)
	}
	// Another ISN on the tuple: a new connection, translated from its start.
	const isn2 = 0x10000000
	handle(t, h, pkt{syn: true, seq: isn2, mss: 1460})
	out, _ = handle(t, h, pkt{ack: true, seq: isn2 + 1, ackn: srvISN + 1, payload: []byte(req)})
	if tcp := decode(t, out); string(tcp.Payload) != want || tcp.Seq != isn2+1 {
		t.Errorf("a new connection on the tuple: seq %#x %q, want %#x %q", tcp.Seq, tcp.Payload, uint32(isn2+1), want)
	}
}

// A late copy of the SYN of a flow whose state ended here (handed to the
// kernel, or ended) does not select the flow again: set again, the select
// bit would bring the flow back to a translation that starts over under the
// kernel's (a proxy-protocol transfer stalled for good under loss). A SYN
// with another ISN is a new connection and is selected.
func TestLateSYNAfterEnd(t *testing.T) {
	h, st := selHandler(t, false)
	handshake(t, h)
	buf, n := rstPkt(t, pkt{ack: true, seq: selISN + 1, ackn: srvISN + 1})
	h.Handle(buf, n, Meta{Mark: selBit})
	if st.Get(SelDone) != 1 {
		t.Fatalf("select-done %d after the client's RST", st.Get(SelDone))
	}
	flows := st.Get(SelFlows)
	if _, v := handle(t, h, pkt{syn: true, seq: selISN, mss: 1460}); v.Drop || v.SetMark && v.Mark&selBit != 0 {
		t.Errorf("a late SYN of the ended flow was selected again: %+v", v)
	}
	if st.Get(SelFlows) != flows {
		t.Errorf("select-flows %d, want %d: no flow started", st.Get(SelFlows), flows)
	}
	if _, v := handle(t, h, pkt{syn: true, seq: 0x10000000, mss: 1460}); !v.SetMark || v.Mark&selBit == 0 {
		t.Errorf("a new connection on the tuple was not selected: %+v", v)
	}
}
