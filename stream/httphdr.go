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
// a field name that is a prefix of one of the two names is cut before that
// line (translate.go), and the client's retransmission completes it.
//
// Limits (documented, counted): a request line over 16 KiB, a version other
// than HTTP/1.0 or 1.1, or a first byte that cannot start a method makes the
// rest of the connection pass unchanged (TLS: "http-tls", other:
// "http-non-http"); after CONNECT or an Upgrade request the stream is a
// tunnel and passes unchanged; trailer fields of chunked bodies pass
// unchanged; obs-fold continuation lines of a removed field are removed with it.

import (
	"bytes"
	"fmt"
	"net/netip"
	"strings"

	"github.com/natreveal/natreveal/queue"
)

type httpState uint8

const (
	hsStart     httpState = iota // before a request (empty lines allowed, RFC 9112 §2.2)
	hsMethod                     // in the method token
	hsTarget                     // in the request target
	hsVersion                    // in the HTTP version, up to LF
	hsLineStart                  // at the start of a field line
	hsBlankCR                    // after a CR at the start of a line
	hsName                       // in a field name
	hsValue                      // in a kept field's value
	hsRemove                     // in a removed field line
	hsBody                       // in a Content-Length body
	hsChunkSize                  // in a chunk-size line
	hsChunkData                  // in chunk data
	hsChunkEnd                   // the CRLF after chunk data
	hsTrailer                    // in the trailer section
	hsPass                       // not HTTP, or a tunnel: everything passes
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
	prevRem   bool // the previous field line was removed (obs-fold continues it)
	// per request
	clen       int64
	chunked    bool
	tunnel     bool
	badFraming bool
	first      bool // no byte seen yet
	stats      *queue.Counters
}

func newHTTPParser(st *queue.Counters) *httpParser { return &httpParser{first: true, stats: st} }

func (p *httpParser) skippable() int64 {
	switch p.st {
	case hsPass:
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
		p.st = hsPass
		return
	}
	p.st = hsStart
}

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
		switch p.st {
		case hsPass:
			return len(data), false
		case hsStart:
			if c == '\r' || c == '\n' {
				continue
			}
			if !isTchar(c) {
				p.pass(queue.HTTPNonHTTP)
				return len(data), false
			}
			p.st, p.n, p.methodLen, p.verLen = hsMethod, 1, 0, 0
			p.clen, p.chunked, p.tunnel, p.badFraming = 0, false, false, false
			p.method[0], p.methodLen = c, 1
		case hsMethod:
			p.n++
			switch {
			case c == ' ':
				p.st = hsTarget
			case !isTchar(c) || p.methodLen >= 32:
				p.pass(queue.HTTPNonHTTP)
				return len(data), false
			default:
				if p.methodLen < len(p.method) {
					p.method[p.methodLen] = c
				}
				p.methodLen++
			}
		case hsTarget:
			p.n++
			switch {
			case c == ' ':
				p.st = hsVersion
			case c <= 0x20 || c == 0x7f || p.n > maxRequestLine:
				p.pass(queue.HTTPNonHTTP)
				return len(data), false
			}
		case hsVersion:
			if c == '\n' {
				v := p.ver[:p.verLen]
				v = bytes.TrimSuffix(v, []byte("\r"))
				if string(v) != "HTTP/1.1" && string(v) != "HTTP/1.0" {
					p.pass(queue.HTTPNonHTTP)
					return len(data), false
				}
				if p.methodLen == 7 && string(p.method[:7]) == "CONNECT" {
					p.tunnel = true
				}
				p.stats.Inc(queue.HTTPRequests)
				s.addInsert(at+1, false)
				p.st, p.prevRem = hsLineStart, false
				continue
			}
			if p.verLen >= len(p.ver) {
				p.pass(queue.HTTPNonHTTP)
				return len(data), false
			}
			p.ver[p.verLen] = c
			p.verLen++
		case hsLineStart:
			switch c {
			case '\r':
				p.st = hsBlankCR
			case '\n':
				p.endHeaders()
			case ' ', '\t':
				if p.prevRem { // obs-fold: part of the removed field
					s.removeTo(at, at+1)
					p.st = hsRemove
				} else {
					p.st, p.interest = hsValue, 0
				}
			default:
				p.st, p.lineStart, p.nameLen = hsName, at, 0
				p.name[0], p.nameLen = c, 1
			}
		case hsBlankCR:
			if c == '\n' {
				p.endHeaders()
			} else {
				p.pass(queue.HTTPNonHTTP)
				return len(data), false
			}
		case hsName:
			switch c {
			case ':':
				p.prevRem = false
				if p.nameIs(nameXFF) || p.nameIs(nameFwd) {
					s.removeTo(p.lineStart, at+1)
					p.stats.Inc(queue.HTTPForged)
					p.st, p.prevRem = hsRemove, true
					continue
				}
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
			case '\n':
				p.st, p.prevRem = hsLineStart, false // malformed line: kept
			default:
				if p.nameLen < len(p.name) {
					p.name[p.nameLen] = c
				}
				p.nameLen++
			}
		case hsRemove:
			s.removeTo(p.lineStart, at+1)
			if c == '\n' {
				p.st = hsLineStart
			}
		case hsValue:
			if c == '\n' {
				p.field()
				p.st, p.prevRem = hsLineStart, false
				continue
			}
			if p.interest != 0 && p.valLen < len(p.val) {
				p.val[p.valLen] = c
				p.valLen++
			}
		case hsBody, hsChunkData:
			k := min(p.n, int64(len(data)-i))
			p.n -= k
			i += int(k) - 1
			if p.n == 0 {
				p.endData()
			}
		case hsChunkSize:
			switch {
			case c == '\n':
				if p.n < 0 {
					p.pass(queue.HTTPNonHTTP)
					return len(data), false
				}
				if p.n == 0 {
					p.st, p.n = hsTrailer, 0
				} else {
					p.st = hsChunkData
				}
			case p.valLen == 0 && hexVal(c) >= 0:
				if p.n > 1<<40 {
					p.n = -1
				} else if p.n >= 0 {
					p.n = p.n<<4 | int64(hexVal(c))
				}
			default:
				p.valLen = 1 // chunk extension or CR: no more digits
			}
			if p.st != hsChunkSize {
				p.valLen = 0
			}
		case hsChunkEnd:
			if c == '\n' {
				p.st, p.n, p.valLen = hsChunkSize, 0, 0
			}
		case hsTrailer:
			switch c {
			case '\n':
				if p.n == 0 {
					p.endRequest()
				}
				p.n = 0
			case '\r':
			default:
				p.n++
			}
		}
		if p.st == hsPass {
			return len(data), false
		}
	}
	if p.st == hsName && p.prefixOfTarget() {
		// Undecided: cut the segment before this line.
		p.st = hsLineStart
		if p.lineStart < base {
			return 0, false // cannot happen: a line start is never sent undecided
		}
		return int(p.lineStart - base), false
	}
	return len(data), false
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

// field interprets a kept field that frames the body (RFC 9112 §6).
func (p *httpParser) field() {
	v := strings.TrimSpace(string(p.val[:p.valLen]))
	switch p.interest {
	case 'l':
		var n int64
		if _, err := fmt.Sscanf(v, "%d", &n); err != nil || n < 0 || (p.clen != 0 && p.clen != n) {
			p.badFraming = true
		}
		p.clen = n
	case 't':
		if strings.HasSuffix(strings.ToLower(v), "chunked") {
			p.chunked = true
		} else {
			p.badFraming = true // the body runs to the end: nothing more to parse
		}
	case 'u':
		p.tunnel = true // if the server switches protocols, the rest is not HTTP
	}
	p.interest = 0
}

func (p *httpParser) endHeaders() {
	switch {
	case p.badFraming && !p.chunked:
		p.pass(queue.HTTPNonHTTP)
	case p.chunked:
		p.st, p.n, p.valLen = hsChunkSize, 0, 0
	case p.clen > 0:
		p.st, p.n = hsBody, p.clen
	default:
		p.endRequest()
	}
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
