package stream

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"net/netip"
	"runtime"
	"strings"
	"testing"

	"github.com/natreveal/natreveal/internal/packettest"
	"github.com/natreveal/natreveal/packet"
	"github.com/natreveal/natreveal/queue"
)

var (
	selClient = netip.MustParseAddr("100.64.0.7")
	selServer = netip.MustParseAddr("198.51.100.1")
)

const fields = "X-Forwarded-For: _0x0007\r\nForwarded: for=\"_0x0007\"\r\n"

// FuzzHTTPParser: arbitrary bytes never panic and leave sorted,
// non-overlapping edits at or beyond their parse position.
func FuzzHTTPParser(f *testing.F) {
	f.Add([]byte("GET / HTTP/1.1\r\nX-Forwarded-For: a\r\n\r\n"))
	f.Add([]byte("POST / HTTP/1.1\r\nContent-Length: -1\r\n\r\n"))
	f.Add([]byte("POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nffffffffffffffffff\r\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		st := &queue.Counters{}
		s := newStream(0, []byte(fields), newHTTPParser(st))
		for len(data) > 0 {
			n, _ := s.p.feed(s, data)
			if n == 0 {
				break
			}
			s.pos += int64(n)
			data = data[n:]
		}
		for i := 1; i < len(s.edits); i++ {
			if a, b := s.edits[i-1], s.edits[i]; b.at < a.at+a.rem {
				t.Fatalf("edits overlap: %+v %+v", a, b)
			}
		}
		var last int64 = -1
		for x := int64(0); x <= s.pos; x++ {
			if o := s.outStart(x); o < last {
				t.Fatalf("outStart not monotonic at %d", x)
			} else {
				last = o
			}
			if y := s.invFloor(s.outStart(x)); y < x {
				t.Fatalf("invFloor(outStart(%d)) = %d", x, y)
			}
		}
	})
}

// BenchmarkSelectedFlowState reports the state bytes a selected HTTP flow
// holds after its first request.
func BenchmarkSelectedFlowState(b *testing.B) {
	const flows = 10000
	req := []byte("GET / HTTP/1.1\r\nHost: example\r\n\r\n")
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	st := &queue.Counters{}
	tab := NewStreams(flows, flows)
	for i := 0; i < flows; i++ {
		k := FlowKey{Proto: 6, Inside: selClient, InsidePort: uint16(i), Server: selServer, ServerPort: 80}
		s := newStream(uint32(i), HeaderBytes(HTTPFields{XFF: true}, "_0x0007", false), newHTTPParser(st))
		n, _ := s.p.feed(s, req)
		s.pos += int64(n)
		tab.start(k, s)
	}
	runtime.GC()
	runtime.ReadMemStats(&after)
	per := float64(after.HeapAlloc-before.HeapAlloc) / flows
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		tab.With(FlowKey{Proto: 6, Inside: selClient, InsidePort: uint16(i % flows), Server: selServer, ServerPort: 80},
			func(s *stream) bool { _ = s.outStart(int64(len(req))); return false })
	}
	b.ReportMetric(per, "B/flow")
	if !strings.Contains(string(req), "Host") {
		b.Fatal()
	}
}

// refusedSeg runs a client segment (flags, payload pay at client offset off,
// acknowledging server sequence number 5001) through s and returns the
// result and what leaves, decoded by gopacket (which checks both checksums).
func refusedSeg(t *testing.T, s *stream, off int64, flags uint8, pay string) (segResult, packettest.Decoded) {
	t.Helper()
	b, ip, tc := seg(off, 5001, flags, []byte(pay))
	res, n := s.client(b, len(b), ip, tc, 1500, &queue.Counters{})
	if res == segDrop {
		t.Fatalf("segment at %d dropped", off)
	}
	return res, packettest.Decode(t, b[:n])
}

// A refused flow (a client's own PROXY header, an ambiguous HTTP request):
// the refused segment leaves as a RST at the server's RCV.NXT; every later
// client segment leaves alternately as a bare ACK at that same sequence
// number (no payload, no FIN: the closed server answers it with a RST at
// its acknowledgement number, RFC 9293 §3.10.7.1, which resets the client)
// and as a RST again. The server's RST passes unchanged: its sequence
// number is the client's RCV.NXT, and the flow's state ends.
func TestRefusedFlowResetsBothEnds(t *testing.T) {
	const req1 = "GET / HTTP/1.1\r\nHost: a\r\n\r\n"
	for _, c := range []struct {
		name    string
		s       *stream
		at      int64 // client offset of the refused segment
		refused string
		wantOut int64 // output offset of the RSTs and the probes
	}{
		{"forged PROXY header", newStream(testISN, []byte("PROXY-HDR\r\n"), &proxyParser{stats: &queue.Counters{}}),
			0, "PROXY TCP4 6.6.6.6 198.51.100.1 1 7000\r\nhello", 0},
		{"ambiguous HTTP request", newStream(testISN, []byte(fields), newHTTPParser(&queue.Counters{})),
			int64(len(req1)), "GET / HTTP/1.2\r\nHost: a\r\n\r\n", int64(len(req1) + len(fields))},
	} {
		s := c.s
		if c.at == 0 {
			s.addInsert(0, false)
		} else {
			if res, d := refusedSeg(t, s, 0, packet.FlagACK|packet.FlagPSH, req1); res != segWritten || len(d.TCP.Payload) != len(req1)+len(fields) {
				t.Fatalf("%s: first request %d, %q", c.name, res, d.TCP.Payload)
			}
			serverAck(s, c.wantOut)
		}
		wantSeq := uint32(testISN + 1 + c.wantOut)
		check := func(what string, res, wantRes segResult, d packettest.Decoded, rst bool) {
			t.Helper()
			tc := d.TCP
			if res != wantRes || tc.RST != rst || !tc.ACK || tc.FIN || tc.PSH || tc.SYN || len(tc.Payload) != 0 ||
				tc.Seq != wantSeq || tc.Ack != 5001 || int(d.IP.Length) != 40 {
				t.Fatalf("%s: %s: result %d, RST %v ACK %v FIN %v PSH %v, seq %d ack %d, %d payload bytes, IP length %d; want result %d, RST %v, seq %d ack 5001, no payload",
					c.name, what, res, tc.RST, tc.ACK, tc.FIN, tc.PSH, tc.Seq, tc.Ack, len(tc.Payload), d.IP.Length, wantRes, rst, wantSeq)
			}
		}
		res, d := refusedSeg(t, s, c.at, packet.FlagACK|packet.FlagPSH, c.refused)
		check("the refused segment", res, segReset, d, true)
		for i := 1; i <= 4; i++ {
			flags := uint8(packet.FlagACK | packet.FlagPSH)
			if i > 2 {
				flags |= packet.FlagFIN // coalesced with the client's FIN
			}
			res, d := refusedSeg(t, s, c.at, flags, c.refused)
			if i%2 == 1 {
				check(fmt.Sprintf("retransmission %d", i), res, segProbe, d, false)
			} else {
				check(fmt.Sprintf("retransmission %d", i), res, segReset, d, true)
			}
		}
		// A segment without ACK would draw no RST at the client's RCV.NXT:
		// it goes as a RST, and the alternation goes on.
		b, ip, tc := seg(c.at, 0, packet.FlagPSH, []byte(c.refused))
		if res, n := s.client(b, len(b), ip, tc, 1500, &queue.Counters{}); res != segReset || n != 40 ||
			!packettest.Decode(t, b[:n]).TCP.RST {
			t.Fatalf("%s: a segment without ACK: result %d, length %d", c.name, res, n)
		}
		res, d = refusedSeg(t, s, c.at, packet.FlagACK, c.refused)
		check("after the segment without ACK", res, segProbe, d, false)
		// The closed server's answer to the probe: <SEQ=SEG.ACK><CTL=RST>.
		b, _, _ = seg(0, 0, packet.FlagRST, nil)
		binary.BigEndian.PutUint32(b[24:], 5001)
		packet.SetTCPChecksum4(b, 20)
		ip, tc, _ = packet.ParseIPv4TCP(b)
		orig := append([]byte(nil), b...)
		if changed, done := s.server(b, ip, tc); changed || !done || !bytes.Equal(b, orig) {
			t.Fatalf("%s: the server's RST: changed %v done %v", c.name, changed, done)
		}
	}
}

// The PROXY header on the handshake ACK (eager): once the server
// acknowledged it, a refused segment at offset 0 is reset past it, at the
// server's RCV.NXT (before: at the header's start, below the server's
// window, where the server discards a RST). Before its acknowledgement, at
// its start.
func TestRefusedAfterEagerHeader(t *testing.T) {
	const hdr = "PROXY-HDR\r\n"
	for _, acked := range []bool{true, false} {
		s := newStream(testISN, []byte(hdr), &proxyParser{stats: &queue.Counters{}})
		s.addInsert(0, true)
		if res, d := refusedSeg(t, s, 0, packet.FlagACK, ""); res != segWritten || string(d.TCP.Payload) != hdr {
			t.Fatalf("handshake ACK: %d %q", res, d.TCP.Payload)
		}
		want := uint32(testISN + 1)
		if acked {
			serverAck(s, int64(len(hdr)))
			want += uint32(len(hdr))
		}
		for i, wantRes := range []segResult{segReset, segProbe, segReset} {
			res, d := refusedSeg(t, s, 0, packet.FlagACK|packet.FlagPSH, "PROXY TCP4 6.6.6.6 198.51.100.1 1 7000\r\n")
			if res != wantRes || d.TCP.RST != (wantRes == segReset) || len(d.TCP.Payload) != 0 || d.TCP.Seq != want {
				t.Errorf("header acknowledged %v, segment %d: result %d, RST %v, seq %d, %d payload bytes; want result %d, seq %d",
					acked, i, res, d.TCP.RST, d.TCP.Seq, len(d.TCP.Payload), wantRes, want)
			}
		}
	}
}

// The refused flow's segments are rewritten without allocating.
func TestRefusedFlowNoAllocs(t *testing.T) {
	s := newStream(testISN, []byte("PROXY-HDR\r\n"), &proxyParser{stats: &queue.Counters{}})
	s.addInsert(0, false)
	tmpl, _, _ := seg(0, 5001, packet.FlagACK, []byte("PROXY TCP4 6.6.6.6 198.51.100.1 1 7000\r\n"))
	buf := make([]byte, len(tmpl), cap(tmpl))
	st := &queue.Counters{}
	if a := testing.AllocsPerRun(100, func() {
		copy(buf, tmpl)
		ip, tc, _ := packet.ParseIPv4TCP(buf)
		s.client(buf, len(buf), ip, tc, 1500, st)
	}); a != 0 || !s.reset {
		t.Errorf("%v allocations per refused segment (reset %v), want 0", a, s.reset)
	}
}
