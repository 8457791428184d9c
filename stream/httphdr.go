package stream

// The http-header method: in every HTTP/1.0 and HTTP/1.1 request of a
// selected flow (RFC 9112: keep-alive and pipelining; bodies framed by
// Content-Length or chunked transfer coding, §6), remove every
// X-Forwarded-For and Forwarded field the client sent and add natreveal's:
// `X-Forwarded-For: <id>` and/or `Forwarded: for="<id>"` (RFC 7239 §4, §5.2),
// inserted right after the request line (field order carries no meaning
// between differently named fields, RFC 9110 §5.3).
//
// The parser is a byte-at-a-time state machine, so a request line, a field
// or a chunk-size line may be split across segments anywhere. The one
// decision it cannot defer is whether a field line is removed: its first
// byte must not be sent before its name is known. A segment that ends inside
// a field name that is a prefix of one of the two names holds that prefix
// back (removed, and so acknowledged to the client, translate.go); the
// segment that decides gives it back when the field is kept.
//
// Where natreveal and a lenient server could disagree on where a message
// ends or which fields it has, the connection is reset (http-refused), never
// passed with the client's fields in it: RFC 9112's MUST-reject cases and
// the lenient readings servers are known to take. Refused: whitespace
// before or inside the request line's separators (§3: one SP each; a
// leading SP), a version other than HTTP/1.0 or HTTP/1.1 (§2.3), a bare CR
// (§2.2), a field name that is not a token or whitespace before its colon
// (§5.1), obs-fold in a kept field (§5.2), NUL in a value (RFC 9110 §5.5), a
// Content-Length that is not 1*DIGIT or disagrees with another (§6.3), a
// Transfer-Encoding in HTTP/1.0 (§6.1) or beside a Content-Length (§6.3),
// one whose final coding is not chunked (§6.3), a malformed chunk-size line
// or chunk end (§7.1), a framing field's value longer than the value
// buffer, and a request line over 16 KiB.
//
// Passed unchanged (counted): a connection whose first byte is a TLS
// record ("http-tls") or cannot start a method ("http-non-http"), or that
// opens with the HTTP/2 preface (RFC 9113 §3.4); after CONNECT or an
// Upgrade request the rest is a tunnel once the server has answered 2xx
// resp. 101 (RFC 9110 §9.3.6, §7.8) at the start of one of its segments;
// until then the client's next bytes are parsed as the next request.
// Trailer fields of chunked bodies pass unchanged; obs-fold continuation
// lines of a removed field are removed with it.

import (
	"bytes"
	"fmt"
	"net/netip"
	"strings"

	"github.com/natreveal/natreveal/queue"
)

type httpState uint8

const (
	hsStart      httpState = iota // before a request (empty lines allowed, RFC 9112 §2.2)
	hsMethod                      // in the method token
	hsTarget                      // in the request target
	hsVersion                     // in the HTTP version, up to LF
	hsLineStart                   // at the start of a field line
	hsBlankCR                     // after a CR at the start of a line
	hsName                        // in a field name
	hsValue                       // in a kept field's value
	hsRemove                      // in a removed field line
	hsBody                        // in a Content-Length body
	hsChunkSize                   // in a chunk-size line
	hsChunkData                   // in chunk data
	hsChunkEnd                    // the CRLF after chunk data
	hsTrailer                     // in the trailer section
	hsTunnelWait                  // after CONNECT or Upgrade: the server has not switched yet
	hsPass                        // not HTTP, or a tunnel: everything passes
	hsRefused                     // the connection is being reset
)

// Field names compared case-insensitively (RFC 9110 §5.1).
const (
	nameXFF = "x-forwarded-for"
	nameFwd = "forwarded"
)

const maxRequestLine = 16 << 10

// httpParser is the per-flow request parser.
type httpParser struct {
	st        httpState
	n         int64 // bytes left in a body or chunk; line length elsewhere
	lineStart int64 // offset of the current field line
	name      [24]byte
	nameLen   int
	val       [64]byte
	valLen    int
	interest  byte // 'l' content-length, 't' transfer-encoding, 'u' upgrade, 0 none
	method    [8]byte
	methodLen int
	ver       [10]byte
	verLen    int
	prevRem   bool  // the previous field line was removed (obs-fold continues it)
	cr        bool  // the previous byte was a CR: only LF may follow (RFC 9112 §2.2)
	heldTo    int64 // a field name prefix [lineStart, heldTo) is held back, undecided
	reqs      int   // requests seen: after one, bytes that are not HTTP are refused
	switched  bool  // the server answered the CONNECT or Upgrade: the rest is a tunnel
	major     bool  // HTTP/1.1 (else 1.0)
	teSeen    bool  // a Transfer-Encoding field was seen
	clSeen    bool  // a Content-Length field was seen
	// per request
	clen    int64
	chunked bool
	tunnel  bool
	first   bool // no byte seen yet
	stats   *queue.Counters
}

func newHTTPParser(st *queue.Counters) *httpParser { return &httpParser{first: true, stats: st} }

func (p *httpParser) skippable() int64 {
	switch p.st {
	case hsPass, hsRefused:
		return -1
	case hsBody, hsChunkData:
		return p.n
	}
	return 0
}

func (p *httpParser) skip(n int64) {
	if p.st == hsBody || p.st == hsChunkData {
		p.n -= n
		if p.n == 0 {
			p.endData()
		}
	}
}

// endData moves on after a body or chunk.
func (p *httpParser) endData() {
	if p.st == hsBody {
		p.endRequest()
	} else {
		p.st = hsChunkEnd
	}
}

func (p *httpParser) endRequest() {
	if p.tunnel {
		p.st = hsTunnelWait
		return
	}
	p.st = hsStart
}

// serverSaid notes the start of a server segment: after CONNECT a 2xx, after
// an Upgrade request a 101 (RFC 9110 §15.2.2) means the server switched.
func (p *httpParser) serverSaid(b []byte) {
	if (p.st != hsTunnelWait && !p.tunnel) || len(b) < 12 {
		return
	}
	if !bytes.HasPrefix(b, []byte("HTTP/1.1 ")) && !bytes.HasPrefix(b, []byte("HTTP/1.0 ")) {
		return
	}
	code := b[9:12]
	if string(code) == "101" || (p.methodLen == 7 && string(p.method[:7]) == "CONNECT" && code[0] == '2') {
		p.switched = true
	}
}

// refuse makes the connection reset: natreveal and the server could read
// the bytes differently.
func (p *httpParser) refuse() (int, bool) {
	p.st = hsRefused
	p.stats.Inc(queue.HTTPRefused)
	return 0, true
}

// notHTTP passes a connection that never looked like HTTP, and refuses one
// that did (a server could still read a request in what follows).
func (p *httpParser) notHTTP(n int) (int, bool) {
	if p.reqs > 0 {
		return p.refuse()
	}
	p.pass(queue.HTTPNonHTTP)
	return n, false
}

// isWS reports bytes some servers skip as whitespace in a request line.
func isWS(c byte) bool { return c == ' ' || c == '\t' || c == '\v' || c == '\f' || c == '\r' }

func isTchar(c byte) bool {
	return c > 0x20 && c < 0x7f && !strings.ContainsRune("\"(),/:;<=>?@[\\]{}", rune(c))
}

func lower(c byte) byte {
	if 'A' <= c && c <= 'Z' {
		return c + 32
	}
	return c
}

// prefixOfTarget reports whether the partial name could still become one of
// the removed names.
func (p *httpParser) prefixOfTarget() bool {
	for _, t := range []string{nameXFF, nameFwd} {
		if p.nameLen <= len(t) {
			ok := true
			for i := 0; i < p.nameLen; i++ {
				if lower(p.name[i]) != t[i] {
					ok = false
					break
				}
			}
			if ok {
				return true
			}
		}
	}
	return false
}

func (p *httpParser) nameIs(t string) bool {
	if p.nameLen != len(t) {
		return false
	}
	for i := 0; i < p.nameLen; i++ {
		if lower(p.name[i]) != t[i] {
			return false
		}
	}
	return true
}

func (p *httpParser) pass(r queue.Reason) {
	p.st = hsPass
	p.stats.Inc(r)
}

func (p *httpParser) feed(s *stream, data []byte) (int, bool) {
	base := s.pos
	for i := 0; i < len(data); i++ {
		c := data[i]
		at := base + int64(i)
		if p.first {
			p.first = false
			if c == 0x16 { // TLS handshake record (RFC 8446 §5.1)
				p.pass(queue.HTTPTLS)
				return len(data), false
			}
		}
		if p.cr && c != '\n' && p.st != hsBody && p.st != hsChunkData {
			return p.refuse() // a bare CR (RFC 9112 §2.2)
		}
		p.cr = false
		switch p.st {
		case hsPass:
			return len(data), false
		case hsRefused:
			return 0, true
		case hsTunnelWait:
			if p.switched {
				p.st = hsPass
				return len(data), false
			}
			// The server has not switched: these bytes are the next request.
			p.st, p.tunnel = hsStart, false
			i--
			continue
		case hsStart:
			if c == '\r' || c == '\n' {
				p.cr = c == '\r'
				continue
			}
			if isWS(c) {
				return p.refuse() // a leading SP: some servers skip it
			}
			if !isTchar(c) {
				return p.notHTTP(len(data))
			}
			p.st, p.n, p.methodLen, p.verLen = hsMethod, 1, 0, 0
			p.clen, p.chunked, p.tunnel = 0, false, false
			p.teSeen, p.clSeen, p.switched = false, false, false
			p.method[0], p.methodLen = c, 1
		case hsMethod:
			p.n++
			switch {
			case c == ' ':
				p.st, p.valLen = hsTarget, 0
			case isWS(c) || c == '\n':
				return p.refuse()
			case !isTchar(c) || p.methodLen >= 32:
				return p.notHTTP(len(data))
			default:
				if p.methodLen < len(p.method) {
					p.method[p.methodLen] = c
				}
				p.methodLen++
			}
		case hsTarget:
			p.n++
			switch {
			case c == ' ' && p.valLen == 0:
				return p.refuse() // two SPs: an empty target
			case c == ' ':
				p.st = hsVersion
			case c <= 0x20 || c == 0x7f || p.n > maxRequestLine:
				return p.refuse()
			default:
				p.valLen = 1
			}
		case hsVersion:
			if c == '\r' {
				p.cr = true
				continue
			}
			if c == '\n' {
				v := p.ver[:p.verLen]
				if string(v) == "HTTP/2.0" && p.reqs == 0 && p.methodLen == 3 && string(p.method[:3]) == "PRI" {
					p.pass(queue.HTTPNonHTTP) // the HTTP/2 preface (RFC 9113 §3.4)
					return len(data), false
				}
				if string(v) != "HTTP/1.1" && string(v) != "HTTP/1.0" {
					return p.refuse() // RFC 9112 §2.3: only these two are HTTP/1.x here
				}
				p.major = string(v) == "HTTP/1.1"
				if p.methodLen == 7 && string(p.method[:7]) == "CONNECT" {
					p.tunnel = true
				}
				p.reqs++
				p.stats.Inc(queue.HTTPRequests)
				s.addInsert(at+1, false)
				p.st, p.prevRem = hsLineStart, false
				continue
			}
			if p.verLen >= len(p.ver) || c <= 0x20 {
				return p.refuse()
			}
			p.ver[p.verLen] = c
			p.verLen++
		case hsLineStart:
			switch c {
			case '\r':
				p.st = hsBlankCR
			case '\n':
				if _, r := p.endHeaders(); r {
					return 0, true
				}
			case ' ', '\t':
				if !p.prevRem {
					return p.refuse() // obs-fold in a kept field (RFC 9112 §5.2)
				}
				// obs-fold: part of the removed field
				s.removeTo(at, at+1)
				p.st = hsRemove
			default:
				if !isTchar(c) {
					return p.refuse() // not a field name (RFC 9112 §5.1)
				}
				p.st, p.lineStart, p.nameLen = hsName, at, 0
				p.name[0], p.nameLen = c, 1
			}
		case hsBlankCR:
			if c != '\n' {
				return p.refuse()
			}
			if _, r := p.endHeaders(); r {
				return 0, true
			}
		case hsName:
			switch c {
			case ':':
				p.prevRem = false
				if p.nameIs(nameXFF) || p.nameIs(nameFwd) {
					s.removeTo(p.lineStart, at+1)
					p.stats.Inc(queue.HTTPForged)
					p.st, p.prevRem, p.heldTo = hsRemove, true, 0
					continue
				}
				p.giveBack(s)
				p.interest = 0
				switch {
				case p.nameIs("content-length"):
					p.interest = 'l'
				case p.nameIs("transfer-encoding"):
					p.interest = 't'
				case p.nameIs("upgrade"):
					p.interest = 'u'
				}
				p.st, p.valLen = hsValue, 0
			default:
				if !isTchar(c) {
					return p.refuse() // whitespace before the colon, no colon (RFC 9112 §5.1)
				}
				if p.nameLen < len(p.name) {
					p.name[p.nameLen] = c
				}
				p.nameLen++
				if p.heldTo > 0 && !p.prefixOfTarget() {
					p.giveBack(s)
				}
			}
		case hsRemove:
			s.removeTo(p.lineStart, at+1)
			if c == '\n' {
				p.st = hsLineStart
			}
		case hsValue:
			switch {
			case c == '\r':
				p.cr = true
				continue
			case c == '\n':
				if !p.field() {
					return p.refuse()
				}
				p.st, p.prevRem = hsLineStart, false
				continue
			case c == 0:
				return p.refuse() // RFC 9110 §5.5
			case p.interest == 0 || (p.valLen == 0 && (c == ' ' || c == '\t')):
				continue // leading OWS of a framing field skipped
			case p.valLen >= len(p.val):
				return p.refuse() // a framing value longer than natreveal reads
			}
			p.val[p.valLen] = c
			p.valLen++
		case hsBody, hsChunkData:
			k := min(p.n, int64(len(data)-i))
			p.n -= k
			i += int(k) - 1
			if p.n == 0 {
				p.endData()
			}
		case hsChunkSize:
			// chunk-size [ chunk-ext ] CRLF (RFC 9112 §7.1); valLen: 0 no
			// digit yet, 1 in digits, 2 in an extension.
			switch {
			case c == '\r':
				p.cr = true
			case c == '\n':
				if p.valLen == 0 || p.n < 0 {
					return p.refuse()
				}
				if p.n == 0 {
					p.st, p.n = hsTrailer, 0
				} else {
					p.st = hsChunkData
				}
				p.valLen = 0
			case p.valLen < 2 && hexVal(c) >= 0:
				if p.n > 1<<40 {
					return p.refuse()
				}
				p.n, p.valLen = p.n<<4|int64(hexVal(c)), 1
			case p.valLen >= 1 && (c == ';' || c == ' ' || c == '\t'):
				p.valLen = 2
			case p.valLen == 2 && c > 0x20 && c != 0x7f:
			default:
				return p.refuse()
			}
		case hsChunkEnd:
			switch c {
			case '\r':
				p.cr = true
			case '\n':
				p.st, p.n, p.valLen = hsChunkSize, 0, 0
			default:
				return p.refuse() // chunk data must end in CRLF (RFC 9112 §7.1)
			}
		case hsTrailer:
			switch c {
			case '\n':
				if p.n == 0 {
					p.endRequest()
				}
				p.n = 0
			case '\r':
				p.cr = true
			case 0:
				return p.refuse()
			default:
				p.n++
			}
		}
		if p.st == hsPass {
			return len(data), false
		}
	}
	if p.st == hsName && p.prefixOfTarget() {
		// Undecided: hold the name back (removed, so acknowledged to the
		// client) until the segment that decides it; kept, it is given
		// back there.
		end := base + int64(len(data))
		s.removeTo(p.lineStart, end)
		p.heldTo = end
		p.stats.Inc(queue.SelHeld)
	}
	return len(data), false
}

// giveBack puts a held name prefix back into the stream where the hold
// ended: the name is kept.
func (p *httpParser) giveBack(s *stream) {
	if p.heldTo > 0 {
		s.addData(p.heldTo, p.name[:p.heldTo-p.lineStart])
		p.heldTo = 0
	}
}

func hexVal(c byte) int {
	switch {
	case '0' <= c && c <= '9':
		return int(c - '0')
	case 'a' <= c && c <= 'f':
		return int(c-'a') + 10
	case 'A' <= c && c <= 'F':
		return int(c-'A') + 10
	}
	return -1
}

// field interprets a kept field that frames the body (RFC 9112 §6); false:
// a value a lenient server could read otherwise.
func (p *httpParser) field() bool {
	v := p.val[:p.valLen]
	for len(v) > 0 && (v[len(v)-1] == ' ' || v[len(v)-1] == '\t') {
		v = v[:len(v)-1]
	}
	interest := p.interest
	p.interest = 0
	switch interest {
	case 'l':
		// Content-Length = 1*DIGIT (RFC 9110 §8.6); a second one must
		// agree (RFC 9112 §6.3 item 5).
		if len(v) == 0 || len(v) > 15 {
			return false
		}
		var n int64
		for _, c := range v {
			if c < '0' || c > '9' {
				return false
			}
			n = n*10 + int64(c-'0')
		}
		if p.clSeen && p.clen != n {
			return false
		}
		p.clen, p.clSeen = n, true
	case 't':
		// The final coding must be chunked (RFC 9112 §6.3 item 4); a list
		// of tokens.
		last := v
		if i := bytes.LastIndexByte(v, ','); i >= 0 {
			last = bytes.TrimLeft(v[i+1:], " \t")
		}
		for _, c := range v {
			if !isTchar(c) && c != ',' && c != ' ' && c != '\t' {
				return false
			}
		}
		if !strings.EqualFold(string(last), "chunked") {
			return false
		}
		p.chunked, p.teSeen = true, true
	case 'u':
		p.tunnel = true // once the server switches protocols, the rest is not HTTP
	}
	return true
}

// endHeaders starts the body; reset when its framing is ambiguous.
func (p *httpParser) endHeaders() (int, bool) {
	switch {
	case p.teSeen && (!p.major || p.clSeen):
		// RFC 9112 §6.1: Transfer-Encoding in HTTP/1.0 is faulty framing;
		// §6.3: beside Content-Length, a smuggling attempt.
		return p.refuse()
	case p.chunked:
		p.st, p.n, p.valLen = hsChunkSize, 0, 0
	case p.clen > 0:
		p.st, p.n = hsBody, p.clen
	default:
		p.endRequest()
	}
	return 0, false
}

// HTTPFields are the fields natreveal adds.
type HTTPFields struct {
	XFF       bool // X-Forwarded-For (de facto; RFC 7239 §1 names it)
	Forwarded bool // Forwarded: for= (RFC 7239)
}

// IDText is the HOST_ID as a header value: the inside address itself when
// the HOST_ID source is "address" (IPv6 in brackets and quotes in
// Forwarded, RFC 7239 §6), else an RFC 7239 §6.3 obfuscated identifier
// "_0x" and 4 or 8 hex digits (obfnode = "_" 1*(ALPHA / DIGIT / "." / "_" / "-")).
func IDText(id uint32, bits int, addr netip.Addr, useAddr bool) string {
	if useAddr && addr.IsValid() {
		return addr.String()
	}
	if bits <= 16 {
		return fmt.Sprintf("_0x%04x", id&0xffff)
	}
	return fmt.Sprintf("_0x%08x", id)
}

// HeaderBytes is what one insertion adds: the configured fields, each
// ending in CRLF.
func HeaderBytes(f HTTPFields, idText string, v6 bool) []byte {
	var b []byte
	if f.XFF {
		b = append(b, "X-Forwarded-For: "+idText+"\r\n"...)
	}
	if f.Forwarded {
		node := idText
		if v6 {
			node = "[" + idText + "]"
		}
		// A quoted-string is valid for every node form (RFC 7239 §4, §6);
		// IPv6 must be quoted.
		b = append(b, "Forwarded: for=\""+node+"\"\r\n"...)
	}
	return b
}
