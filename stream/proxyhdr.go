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
// or the client's header removed and ours put in its place (replace).

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

// maxV1 is the longest v1 line, CRLF included (§2.1).
const maxV1 = 107

type proxyParser struct {
	stats   *queue.Counters
	replace bool
	done    bool
	inV1    bool // removing a client's v1 line that spans segments
	seen    int  // bytes of the client's v1 line seen
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

func (p *proxyParser) feed(s *stream, data []byte) (int, bool) {
	if p.done {
		return len(data), false
	}
	if p.inV1 {
		return p.v1(s, data)
	}
	// s.pos is 0: the first client bytes.
	switch {
	case isPrefixOf(data, sigV1) || isPrefixOf(data, sigV2) || (bytes.HasPrefix(data, sigV2) && len(data) < 16):
		return 0, false // undecided: wait for more bytes
	case bytes.HasPrefix(data, sigV1):
		if !p.replace {
			p.stats.Inc(queue.ProxyForgedReset)
			return 0, true
		}
		p.inV1 = true
		p.stats.Inc(queue.ProxyForgedReplaced)
		return p.v1(s, data)
	case bytes.HasPrefix(data, sigV2):
		if !p.replace {
			p.stats.Inc(queue.ProxyForgedReset)
			return 0, true
		}
		l := 16 + int64(binary.BigEndian.Uint16(data[14:16]))
		s.removeTo(0, l)
		p.stats.Inc(queue.ProxyForgedReplaced)
		p.done = true
		return len(data), false
	}
	p.done = true
	return len(data), false
}

// v1 removes the client's v1 line up to its LF.
func (p *proxyParser) v1(s *stream, data []byte) (int, bool) {
	i := bytes.IndexByte(data, '\n')
	if i < 0 {
		if p.seen+len(data) >= maxV1 {
			return 0, true
		}
		s.removeTo(s.pos, s.pos+int64(len(data)))
		p.seen += len(data)
		return len(data), false
	}
	if p.seen+i+1 > maxV1 {
		return 0, true
	}
	s.removeTo(s.pos, s.pos+int64(i)+1)
	p.inV1, p.done = false, true
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
