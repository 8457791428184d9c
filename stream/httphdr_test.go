package stream

import (
	"strings"
	"testing"

	"github.com/natreveal/natreveal/queue"
)

// runHTTP feeds data to a fresh http-header stream in segments of seg
// bytes (0: whole) and returns the output bytes and whether it was reset.
func runHTTP(data string, seg int) (string, bool) {
	st := &queue.Counters{}
	s := newStream(0, []byte(fields), newHTTPParser(st))
	b := []byte(data)
	if seg <= 0 {
		seg = len(b)
	}
	for s.pos < int64(len(b)) {
		end := min(int(s.pos)+seg, len(b))
		n, reset := s.p.feed(s, b[s.pos:end])
		if reset {
			return "", true
		}
		if n == 0 {
			// Held before an undecided name: the client sends more.
			if end == len(b) {
				break
			}
			seg++
			continue
		}
		s.pos += int64(n)
	}
	return string(s.render(nil, 0, b[:s.pos])), false
}

// Shapes where natreveal and a lenient server (Go net/http, Python
// http.server, nginx, HAProxy) could disagree on the message boundaries
// or fields: each connection is reset (RFC 9112), none passes with the
// client's X-Forwarded-For.
func TestHTTPRefusesAmbiguous(t *testing.T) {
	xff := "X-Forwarded-For: 6.6.6.6\r\n"
	next := "GET /next HTTP/1.1\r\nHost: a\r\n" + xff + "\r\n"
	for name, req := range map[string]string{
		"1.0 chunked + CL":     "POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\nContent-Length: 45\r\n\r\n0\r\n\r\n" + next,
		"1.1 chunked + CL":     "POST / HTTP/1.1\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n" + next,
		"1.0 chunked":          "POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n" + next,
		"CL after 70 spaces":   "POST / HTTP/1.1\r\nContent-Length:" + strings.Repeat(" ", 70) + "x5\r\n\r\nhello" + next,
		"HTTP/1.2":             "GET / HTTP/1.2\r\n" + xff + "\r\n",
		"HTTP/1.2 pipelined":   "GET / HTTP/1.1\r\n\r\nGET / HTTP/1.2\r\n" + xff + "\r\n",
		"obs-fold TE":          "POST / HTTP/1.1\r\nTransfer-Encoding:\r\n chunked\r\nContent-Length: 3\r\n\r\n0\r\n\r\n" + next,
		"obs-fold kept":        "GET / HTTP/1.1\r\nHost: a\r\n " + xff + "\r\n",
		"double space":         "GET  / HTTP/1.1\r\n" + xff + "\r\n",
		"double space version": "GET /  HTTP/1.1\r\n" + xff + "\r\n",
		"leading space":        " GET / HTTP/1.1\r\n" + xff + "\r\n",
		"leading tab":          "\tGET / HTTP/1.1\r\n" + xff + "\r\n",
		"invalid CL":           "POST / HTTP/1.1\r\nContent-Length: 1x\r\n\r\n" + next,
		"signed CL":            "POST / HTTP/1.1\r\nContent-Length: +0\r\n\r\n" + next,
		"CL list":              "POST / HTTP/1.1\r\nContent-Length: 0, 0\r\n\r\n" + next,
		"two CLs":              "POST / HTTP/1.1\r\nContent-Length: 0\r\nContent-Length: 44\r\n\r\n" + next,
		"TE not chunked":       "POST / HTTP/1.1\r\nTransfer-Encoding: gzip\r\n\r\n" + next,
		"TE chunked junk":      "POST / HTTP/1.1\r\nTransfer-Encoding: xchunked\r\n\r\n0\r\n\r\n" + next,
		"space before colon":   "GET / HTTP/1.1\r\nX-Forwarded-For : 6.6.6.6\r\n\r\n",
		"tab in name":          "GET / HTTP/1.1\r\nX-Forwarded-For\t: 6.6.6.6\r\n\r\n",
		"line without colon":   "GET / HTTP/1.1\r\nHost\r\n" + xff + "\r\n",
		"bare CR in value":     "GET / HTTP/1.1\r\nHost: a\r" + xff + "\r\n",
		"bare CR request line": "GET / HTTP/1.1\r" + xff + "\r\n",
		"NUL in value":         "GET / HTTP/1.1\r\nHost: a\x00b\r\n" + xff + "\r\n",
		"bad chunk size":       "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n\r\n" + next,
		"empty chunk size":     "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n\r\n" + next,
		"huge chunk size":      "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nfffffffffffffffff\r\n" + next,
		"chunk data no CRLF":   "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n1\r\naXX\r\n0\r\n\r\n" + next,
		"garbage after req":    "GET / HTTP/1.1\r\n\r\n\x01\x02" + next,
	} {
		for _, seg := range []int{0, 1, 7} {
			out, reset := runHTTP(req, seg)
			if !reset {
				t.Errorf("%s (segments of %d): not reset, output %q", name, seg, out)
			}
		}
	}
}

// An Upgrade or CONNECT request followed by a pipelined request: until the
// server answers 101 (resp. 2xx) the next bytes are a request and get the
// fields; after the answer they are a tunnel.
func TestHTTPUpgradeWaitsForServer(t *testing.T) {
	xff := "X-Forwarded-For: 6.6.6.6\r\n"
	for _, first := range []string{
		"GET / HTTP/1.1\r\nUpgrade: foo\r\nConnection: upgrade\r\n\r\n",
		"CONNECT a:443 HTTP/1.1\r\nHost: a:443\r\n\r\n",
	} {
		req := first + "GET /next HTTP/1.1\r\n" + xff + "\r\n"
		out, reset := runHTTP(req, 0)
		if reset || strings.Contains(out, "6.6.6.6") || strings.Count(out, fields) != 2 {
			t.Errorf("pipelined after %q: reset %v, output %q", first, reset, out)
		}
		// The server switches: what follows passes.
		st := &queue.Counters{}
		s := newStream(0, []byte(fields), newHTTPParser(st))
		n, _ := s.p.feed(s, []byte(first))
		s.pos += int64(n)
		p := s.p.(*httpParser)
		answer := "HTTP/1.1 101 Switching Protocols\r\n\r\n"
		if strings.HasPrefix(first, "CONNECT") {
			answer = "HTTP/1.1 200 OK\r\n\r\n"
		}
		p.serverSaid([]byte(answer))
		frame := "\x81\x85abcdhello"
		if n, reset := s.p.feed(s, []byte(frame)); reset || n != len(frame) || p.st != hsPass {
			t.Errorf("after %q and the server's %q: n %d reset %v state %d", first, answer, n, reset, p.st)
		}
	}
}

// Well-formed requests still get the fields, forged ones removed, in any
// segmentation.
func TestHTTPStrictKeepsValid(t *testing.T) {
	for _, req := range []string{
		"GET / HTTP/1.1\r\nHost: a\r\nX-Forwarded-For: 6.6.6.6\r\n\r\n",
		"GET / HTTP/1.0\n\n",
		"\r\nGET / HTTP/1.1\r\nContent-Length:   0  \r\n\r\n",
		"POST / HTTP/1.1\r\nTransfer-Encoding: gzip, chunked\r\n\r\n3;x=y\r\nabc\r\n0\r\nT: 1\r\n\r\nGET / HTTP/1.1\r\n\r\n",
		"POST / HTTP/1.1\r\nContent-Length: 3\r\nContent-Length: 3\r\n\r\nabcGET / HTTP/1.1\r\nForwarded: for=x\r\n\r\n",
	} {
		for _, seg := range []int{0, 1, 5} {
			out, reset := runHTTP(req, seg)
			if reset || strings.Contains(out, "6.6.6.6") || strings.Contains(out, "for=x") || !strings.Contains(out, fields) {
				t.Errorf("%q (segments of %d): reset %v, output %q", req, seg, reset, out)
			}
		}
	}
	// Not HTTP at all, TLS: passed.
	for _, req := range []string{"\x16\x03\x01\x00\x10", "\x00\x01binary", "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"} {
		if out, reset := runHTTP(req, 0); reset || out != req {
			t.Errorf("%q: reset %v, output %q", req, reset, out)
		}
	}
}
