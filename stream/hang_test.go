package stream

import (
	"encoding/binary"
	"strings"
	"testing"

	"github.com/natreveal/natreveal/packet"
	"github.com/natreveal/natreveal/queue"
)

const testISN = 1000

// seg builds an IPv4 TCP segment with payload pay at client offset off (or
// a server segment acknowledging output offset ack), with room to grow.
func seg(off int64, ack uint32, flags uint8, pay []byte) ([]byte, packet.IPv4, packet.TCP) {
	n := 40 + len(pay)
	b := make([]byte, n, n+4096)
	b[0], b[8], b[9] = 0x45, 64, 6
	binary.BigEndian.PutUint16(b[2:], uint16(n))
	copy(b[12:], []byte{100, 64, 0, 7})
	copy(b[16:], []byte{198, 51, 100, 1})
	binary.BigEndian.PutUint32(b[24:], uint32(testISN+1+off))
	binary.BigEndian.PutUint32(b[28:], ack)
	b[32], b[33] = 5<<4, flags
	binary.BigEndian.PutUint16(b[34:], 65535)
	copy(b[40:], pay)
	packet.SetIPv4HeaderChecksum(b, 20)
	packet.SetTCPChecksum4(b, 20)
	ip, t, _ := packet.ParseIPv4TCP(b)
	return b, ip, t
}

// clientSeg runs a client segment through s and returns the packet that
// leaves (nil: dropped) and its output offset.
func clientSeg(t *testing.T, s *stream, off int64, pay []byte) ([]byte, int64) {
	t.Helper()
	b, ip, tc := seg(off, 1, packet.FlagACK, pay)
	res, n := s.client(b, len(b), ip, tc, 1500, &queue.Counters{})
	switch res {
	case segDrop:
		return nil, 0
	case segReset:
		t.Fatalf("segment at %d reset", off)
	}
	out := b[:n]
	return out[40:], int64(binary.BigEndian.Uint32(out[24:]) - (testISN + 1))
}

// serverAck maps a server acknowledgement of output offset o back to the
// client offset the client sees acknowledged.
func serverAck(s *stream, o int64) int64 {
	b, ip, tc := seg(0, uint32(testISN+1+o), packet.FlagACK, nil)
	s.server(b, ip, tc)
	return int64(binary.BigEndian.Uint32(b[28:]) - (testISN + 1))
}

// A removed field far longer than a client's window: every segment of it
// that leaves draws an acknowledgement from the server (a one-byte
// duplicate), and that acknowledgement covers the removed bytes, so the
// client never waits on bytes the server never sees (issue 17 item 8: 16,000
// bytes and more hung for good).
func TestRemovedBytesAcknowledgedOnTheirOwn(t *testing.T) {
	s := newStream(testISN, []byte(fields), newHTTPParser(&queue.Counters{}))
	req := "GET / HTTP/1.1\r\nHost: a\r\nX-Forwarded-For: " + strings.Repeat("6", 40000) + "\r\nAccept: */*\r\n\r\n"
	var server []byte // what the server got, in order
	for off := int64(0); off < int64(len(req)); off += 1400 {
		end := min(off+1400, int64(len(req)))
		pay, o := clientSeg(t, s, off, []byte(req[off:end]))
		if pay == nil {
			t.Fatalf("segment at %d dropped", off)
		}
		if len(pay) == 0 {
			t.Fatalf("segment at %d left empty: no acknowledgement would answer it", off)
		}
		if o+int64(len(pay)) > int64(len(server)) {
			server = append(server[:o], pay...)
		}
		// The server acknowledges what it has: the client sees all it sent.
		if got := serverAck(s, int64(len(server))); got != end {
			t.Fatalf("after the segment at %d: the client sees %d acknowledged, sent %d", off, got, end)
		}
	}
	want := "GET / HTTP/1.1\r\n" + fields + "Host: a\r\nAccept: */*\r\n\r\n"
	if string(server) != want {
		t.Fatalf("server got %q, want %q", server, want)
	}
	// A retransmission of a removed segment (a loss): again a duplicate
	// byte, again acknowledged.
	if pay, _ := clientSeg(t, s, 1400*5, []byte(req[1400*5:1400*6])); len(pay) != 1 {
		t.Fatalf("retransmitted removed segment: %q", pay)
	}
}

// A header name sent one byte a segment: each byte is acknowledged at once
// (held back, not dropped), and a kept name is given back whole.
func TestNameOneByteAtATime(t *testing.T) {
	for _, name := range []string{"X-Forwarded-For", "X-Forwarded-Proto", "Forwarde", "Forwarded"} {
		s := newStream(testISN, []byte(fields), newHTTPParser(&queue.Counters{}))
		req := "GET / HTTP/1.1\r\n" + name + ": v\r\n\r\n"
		var server []byte
		off := int64(0)
		pay, o := clientSeg(t, s, 0, []byte(req[:16]))
		server = append(server[:o], pay...)
		for off = 16; off < int64(len(req)); off++ {
			pay, o := clientSeg(t, s, off, []byte{req[off]})
			if pay == nil {
				t.Fatalf("%s: byte %d dropped", name, off)
			}
			if o+int64(len(pay)) > int64(len(server)) {
				server = append(server[:o], pay...)
			}
			if got := serverAck(s, int64(len(server))); got != off+1 {
				t.Fatalf("%s: byte %d: the client sees %d acknowledged", name, off, got)
			}
		}
		want := "GET / HTTP/1.1\r\n" + fields + name + ": v\r\n\r\n"
		if name == "X-Forwarded-For" || name == "Forwarded" {
			want = "GET / HTTP/1.1\r\n" + fields + "\r\n"
		}
		if string(server) != want {
			t.Errorf("%s: server got %q, want %q", name, server, want)
		}
	}
}

// proxyRun feeds data to a replace-mode proxy stream in segments of seg
// bytes and returns the output and whether it was reset.
func proxyRun(data string, seg int, replace bool) (string, bool) {
	st := &queue.Counters{}
	s := newStream(0, []byte("PROXY-HDR\r\n"), &proxyParser{stats: st, replace: replace})
	s.addInsert(0, false)
	b := []byte(data)
	for s.pos < int64(len(b)) {
		end := min(int(s.pos)+seg, len(b))
		n, reset := s.p.feed(s, b[s.pos:end])
		if reset {
			return "", true
		}
		s.pos += int64(n)
	}
	return string(s.render(nil, 0, b)), false
}

// Replace mode: the client's header goes, byte by byte too; a second one
// behind it, an overlong v1 line or a v2 header claiming more than maxV2
// bytes reset the connection; bytes that only look like a signature's start
// are given back.
func TestProxyReplaceShapes(t *testing.T) {
	v1 := "PROXY TCP4 6.6.6.6 1.2.3.4 1 2\r\n"
	v2 := func(l int) string {
		h := string(sigV2) + "\x21\x11" + string([]byte{byte(l >> 8), byte(l)})
		return h + strings.Repeat("\x00", min(l, 12))
	}
	for _, seg := range []int{1, 3, 1000} {
		for in, want := range map[string]string{
			v1 + "GET /":                   "PROXY-HDR\r\nGET /",
			v2(12) + "GET /":               "PROXY-HDR\r\nGET /",
			"PROXZ":                        "PROXY-HDR\r\nPROXZ",
			"\r\n\r\nhello":                "PROXY-HDR\r\n\r\n\r\nhello",
			"GET / HTTP/1.1\r\n\r\nPROXY ": "PROXY-HDR\r\nGET / HTTP/1.1\r\n\r\nPROXY ",
		} {
			out, reset := proxyRun(in, seg, true)
			if reset || out != want {
				t.Errorf("segments of %d: %q: reset %v, output %q", seg, in, reset, out)
			}
		}
		for _, in := range []string{
			v1 + v1 + "GET /",
			v1 + v2(12) + "GET /",
			v2(12) + v1,
			"PROXY " + strings.Repeat("x", 200) + "\r\n",
			v2(65535) + "GET / HTTP/1.1\r\n\r\n",
		} {
			if out, reset := proxyRun(in, seg, true); !reset {
				t.Errorf("segments of %d: %q not reset: %q", seg, in, out)
			}
		}
		if _, reset := proxyRun(v1, seg, false); !reset {
			t.Errorf("segments of %d: client header not reset without replace", seg)
		}
	}
}

// FuzzProxyHeader: whatever a client sends at the stream start, the parser
// never panics, leaves sorted edits no further than it read, and in replace
// mode what leaves starts with natreveal's header and no client header
// right behind it.
func FuzzProxyHeader(f *testing.F) {
	f.Add([]byte("PROXY TCP4 1.2.3.4 5.6.7.8 1 2\r\nGET /"), 1)
	f.Add([]byte("PROXY TCP4 1.2.3.4 5.6.7.8 1 2\r\nPROXY TCP4 1.2.3.4 5.6.7.8 1 2\r\n"), 3)
	f.Add(append(append([]byte{}, sigV2...), 0x21, 0x11, 0xff, 0xff), 7)
	f.Add(append(append([]byte{}, sigV2...), 0x21, 0x11, 0x00, 0x0c, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 'G'), 2)
	f.Fuzz(func(t *testing.T, data []byte, seg int) {
		seg = 1 + (seg&0xffff)%64
		st := &queue.Counters{}
		hdr := []byte("PROXY-HDR\r\n")
		s := newStream(0, hdr, &proxyParser{stats: st, replace: true})
		s.addInsert(0, false)
		for s.pos < int64(len(data)) {
			end := min(int(s.pos)+seg, len(data))
			n, reset := s.p.feed(s, data[s.pos:end])
			if reset {
				return
			}
			s.pos += int64(n)
		}
		for i := 1; i < len(s.edits); i++ {
			if a, b := s.edits[i-1], s.edits[i]; b.at < a.at+a.rem {
				t.Fatalf("edits overlap: %+v %+v", a, b)
			}
		}
		for _, e := range s.edits {
			if e.at+e.rem > s.pos {
				t.Fatalf("edit %+v past the parse position %d", e, s.pos)
			}
		}
		if len(data) == 0 {
			return
		}
		out := s.render(nil, 0, data)
		if !strings.HasPrefix(string(out), string(hdr)) {
			t.Fatalf("output %q does not start with natreveal's header", out)
		}
		rest := out[len(hdr):]
		if s.p.(*proxyParser).done && (strings.HasPrefix(string(rest), "PROXY ") || strings.HasPrefix(string(rest), string(sigV2))) {
			t.Fatalf("a client header right behind natreveal's: %q", out)
		}
		for x := int64(0); x <= s.pos; x++ {
			if y := s.invFloor(s.outStart(x)); y < x {
				t.Fatalf("invFloor(outStart(%d)) = %d", x, y)
			}
		}
	})
}
