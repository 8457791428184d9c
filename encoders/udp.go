package encoders

import (
	"encoding/binary"

	"github.com/natreveal/natreveal/packet"
)

const (
	protoUDP  = 17 // RFC 768 / IANA protocol numbers
	udpHdrLen = 8  // RFC 768: ports, Length, Checksum
)

// UDP is a parsed view of the UDP header that follows an IPv4 header
// (RFC 768). The header starts at the IPv4 HdrLen.
type UDP struct {
	SrcPort, DstPort uint16
	Len              int // Length field: header and data, >= 8
	PayloadLen       int // Len - 8
}

// ParseUDP reads the UDP header following ip in pkt. It returns NotTCP
// (reused here for "protocol is not 17"), Fragment (any fragment),
// Truncated (fewer than 8 bytes, or Length beyond the IPv4 payload) or
// BadHeader (Length < 8; 0 means a jumbogram only in IPv6, RFC 2675).
// Unchanged means success. Bytes of the IPv4 payload past Length are not
// UDP data (RFC 768 defines the datagram by Length) and are ignored.
func ParseUDP(pkt []byte, ip IPv4) (UDP, Result) {
	var u UDP
	if ip.Proto != protoUDP {
		return u, NotTCP
	}
	if ip.IsFragment() {
		return u, Fragment
	}
	if ip.HdrLen < ipv4MinHdr || ip.TotalLen > len(pkt) || ip.HdrLen > ip.TotalLen {
		return u, BadHeader // not from ParseIPv4
	}
	seg := pkt[ip.HdrLen:ip.TotalLen]
	if len(seg) < udpHdrLen {
		return u, Truncated
	}
	u.Len = int(binary.BigEndian.Uint16(seg[4:6]))
	if u.Len < udpHdrLen {
		return u, BadHeader
	}
	if u.Len > len(seg) {
		return u, Truncated
	}
	u.SrcPort = binary.BigEndian.Uint16(seg[0:2])
	u.DstPort = binary.BigEndian.Uint16(seg[2:4])
	u.PayloadLen = u.Len - udpHdrLen
	return u, Unchanged
}

// UDPChecksumOK verifies the UDP checksum over pseudo-header (addresses,
// protocol, UDP Length) and datagram (RFC 768). A zero checksum means the
// sender computed none (RFC 768) and is OK. Fragments, non-UDP packets and
// datagrams ParseUDP rejects are never OK. Like TCPChecksumOK it uses the
// header's Destination Address, also for source-routed datagrams.
func UDPChecksumOK(pkt []byte) bool {
	ip, res := ParseIPv4(pkt)
	if res != Unchanged {
		return false
	}
	u, res := ParseUDP(pkt, ip)
	if res != Unchanged {
		return false
	}
	d := pkt[ip.HdrLen : ip.HdrLen+u.Len]
	if d[6] == 0 && d[7] == 0 {
		return true
	}
	return packet.OK(d, packet.PseudoSum4(pkt, protoUDP, u.Len))
}
