package stream

// The proxy-protocol method: a PROXY protocol header (haproxy
// doc/proxy-protocol.txt: v1 text line §2.1, v2 binary header §2.2) before
// the first client byte of a selected flow, built with
// github.com/pires/go-proxyproto. v2 carries TLV 0x05 PP2_TYPE_UNIQUE_ID
// with the HOST_ID text (§2.2.5) and, when configured, TLV 0x03
// PP2_TYPE_CRC32C (§2.2.3: CRC32c over the whole header with the checksum
// field zero). Addresses are the inside host's and the server's as the
// packet shows them before NAT.
//
// For protocols where the server speaks first (SMTP, FTP, ...) the header
// rides on the handshake-completing ACK ("on_ack"), so the server reads it
// before it must answer; it is carried again on the client's empty segments
// until the server acknowledges it.
//
// A PROXY header the client sent itself (either signature at the stream
// start) is never passed on: the connection is reset (client_header reset)
// or the client's header removed and ours put in its place (replace); in
// replace mode, a second client header behind the first, a v1 line longer
// than §2.1 allows or a v2 header claiming more than maxV2 bytes reset it
// (proxy-bad-header).

import (
	"bytes"
	"encoding/binary"
	"hash/crc32"
	"net"
	"net/netip"

	proxyproto "github.com/pires/go-proxyproto"

	"github.com/natreveal/natreveal/queue"
)

var (
	sigV1 = []byte("PROXY ")
	sigV2 = []byte("\r\n\r\n\x00\r\nQUIT\n") // §2.2: the 12-byte v2 signature
)

// maxV1 is the longest v1 line, CRLF included (§2.1); maxV2 the longest
// client v2 header removed in replace mode: §2.2 has receivers expect 536
// bytes at most with TLVs; a longer claim is refused (reset) rather than
// let it swallow the stream.
const (
	maxV1 = 107
	maxV2 = 536
)

// proxyParser looks for a client's own PROXY header at the stream start.
// The bytes of a possible signature are held back (removed, so acknowledged
// to the client) until they decide, and given back when they are not one:
// a client sending one byte at a time never waits on natreveal. In replace
// mode the client's header is removed as it arrives, bounded (maxV1,
// maxV2); a second header right behind it is refused.
type proxyParser struct {
	stats   *queue.Counters
	replace bool
	done    bool
	inV1    bool  // removing a client's v1 line
	v2left  int64 // bytes of a client's v2 header still to remove
	seen    int   // bytes of the client's v1 line seen
	removed bool  // one client header was removed
	pend    [16]byte
	npend   int // signature bytes held back
}

func (p *proxyParser) skippable() int64 {
	if p.done {
		return -1
	}
	return 0
}

func (p *proxyParser) skip(int64) {}

// isPrefixOf reports whether b is a proper prefix of sig.
func isPrefixOf(b, sig []byte) bool { return len(b) < len(sig) && bytes.HasPrefix(sig, b) }

// refuse resets the connection, counting why.
func (p *proxyParser) refuse(r queue.Reason) (int, bool) {
	p.stats.Inc(r)
	return 0, true
}

func (p *proxyParser) feed(s *stream, data []byte) (int, bool) {
	for i := 0; i < len(data); i++ {
		if p.done {
			return len(data), false
		}
		at := s.pos + int64(i)
		c := data[i]
		switch {
		case p.inV1:
			s.removeTo(at, at+1)
			p.seen++
			if p.seen > maxV1 {
				return p.refuse(queue.ProxyBadHeader)
			}
			if c == '\n' {
				p.inV1, p.removed, p.npend = false, true, 0
			}
		case p.v2left > 0:
			k := min(p.v2left, int64(len(data)-i))
			s.removeTo(at, at+k)
			p.v2left -= k
			i += int(k) - 1
			if p.v2left == 0 {
				p.removed, p.npend = true, 0
			}
		default:
			p.pend[p.npend] = c
			p.npend++
			b := p.pend[:p.npend]
			v2 := bytes.HasPrefix(b, sigV2)
			switch {
			case isPrefixOf(b, sigV1) || isPrefixOf(b, sigV2) || (v2 && len(b) < 16):
				s.removeTo(at, at+1) // undecided: held back
				continue
			case bytes.Equal(b, sigV1) || v2:
				if !p.replace {
					return p.refuse(queue.ProxyForgedReset)
				}
				if p.removed {
					return p.refuse(queue.ProxyBadHeader) // a second header stacked behind the first
				}
				s.removeTo(at, at+1)
				p.stats.Inc(queue.ProxyForgedReplaced)
				if v2 {
					l := int64(binary.BigEndian.Uint16(b[14:16]))
					if 16+l > maxV2 {
						return p.refuse(queue.ProxyBadHeader)
					}
					p.v2left = l
					if l == 0 {
						p.removed, p.npend = true, 0
					}
				} else {
					p.inV1, p.seen = true, len(sigV1)
				}
				continue
			}
			// Not a header: give back what was held, this byte passes.
			if p.npend > 1 {
				s.addData(at, p.pend[:p.npend-1])
			}
			p.npend, p.done = 0, true
		}
	}
	return len(data), false
}

// ProxyConfig is the proxy-protocol method's behaviour.
type ProxyConfig struct {
	Version       int  // 1 or 2
	CRC32C        bool // v2: add the PP2_TYPE_CRC32C TLV
	OnAck         bool // carry the header on the handshake-completing ACK (all destinations)
	ReplaceClient bool // a client's own PROXY header is replaced (else the connection is reset)
}

// BuildProxyHeader returns the PROXY header for a TCP connection from src to
// dst with the HOST_ID text id (v2: in PP2_TYPE_UNIQUE_ID).
func BuildProxyHeader(version int, crc bool, src, dst netip.AddrPort, id string) ([]byte, error) {
	tp := proxyproto.TCPv4
	if src.Addr().Is6() {
		tp = proxyproto.TCPv6
	}
	h := &proxyproto.Header{
		Version:           byte(version),
		Command:           proxyproto.PROXY,
		TransportProtocol: tp,
		SourceAddr:        net.TCPAddrFromAddrPort(src),
		DestinationAddr:   net.TCPAddrFromAddrPort(dst),
	}
	if version == 2 {
		tlvs := []proxyproto.TLV{{Type: proxyproto.PP2_TYPE_UNIQUE_ID, Value: []byte(id)}}
		if crc {
			tlvs = append(tlvs, proxyproto.TLV{Type: proxyproto.PP2_TYPE_CRC32C, Value: make([]byte, 4)})
		}
		if err := h.SetTLVs(tlvs); err != nil {
			return nil, err
		}
	}
	b, err := h.Format()
	if err != nil || version != 2 || !crc {
		return b, err
	}
	// The CRC TLV is last: its 4 value bytes end the header.
	sum := crc32.Checksum(b, crc32.MakeTable(crc32.Castagnoli))
	binary.BigEndian.PutUint32(b[len(b)-4:], sum)
	return b, nil
}
