package stream

import (
	"net/netip"
	"runtime"
	"strings"
	"testing"

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
