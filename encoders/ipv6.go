package encoders

import (
	"github.com/natreveal/natreveal/packet"
)

// IPv6 Next Header values (IANA protocol numbers; RFC 8200 §4).
const (
	protoHopByHop = 0
	protoRouting  = 43
	protoFragment = 44
	protoAH       = 51 // RFC 4302
	ipv6HdrLen    = 40 // RFC 8200 §3: fixed header
	maxIPv6Pay    = 0xffff
)

// MinMSS6 is the floor LowerMSS6 never goes below: the default send MSS for
// IPv6, 1280 - 40 - 20 (RFC 9293 §3.7.1, RFC 8200 §5).
const MinMSS6 = 1220

// finalDst returns the destination address of the upper-layer pseudo-header
// (RFC 8200 §8.1): the Destination Address, or, while a Routing header has
// segments left, the final one it names: the last address for type 0 (RFC
// 5095 deprecates it) and type 2 (RFC 6275 §6.4), Segment List[0] for type
// 4 (RFC 8754 §2). ok is false for other types: the final address is
// unknown.
func finalDst(pkt []byte, ip IPv6) (dst []byte, ok bool) {
	if ip.RoutingOff == 0 {
		return pkt[24:40], true
	}
	r := pkt[ip.RoutingOff:]
	n := (extLen(r[1]) - 8) / 16 // 16-byte addresses after the first 8 bytes
	if n == 0 {
		return nil, false
	}
	switch r[2] {
	case 0, 2:
		return r[8+(n-1)*16 : 8+n*16], true
	case 4:
		return r[8:24], true
	}
	return nil, false
}

// AddHostIDOption6 is AddHostIDOption for IPv6/TCP (RFC 7974 does not
// depend on the address family): same option, same stripping of received
// HOST_ID options, same results and same stripped rule. The IPv6 Payload
// Length grows with the TCP header; the TCP checksum is updated
// incrementally (RFC 1624) for the new options and the new upper-layer
// length of the pseudo-header (RFC 8200 §8.1). mtu and the 65535-byte
// Payload Length limit play the role of the IPv4 limits.
//
// A packet with an Authentication Header is left alone as NotTCP: its ICV
// covers the Payload Length and the whole TCP segment (RFC 4302 §3.3.3), as
// an IPv4 packet with AH is NotTCP to AddHostIDOption.
func AddHostIDOption6(v *packet.View, buf []byte, id uint32, idLen int, mtu int) (newLen int, res Result, stripped bool) {
	return rewriteHostID(v, buf, id, idLen, mtu, addHostID|hostIDv6)
}

// StripHostIDOption6 removes every HOST_ID option from the IPv6/TCP packet
// buf[:v.N], like StripHostIDOption. Unchanged when there is none.
func StripHostIDOption6(v *packet.View, buf []byte) (newLen int, res Result) {
	newLen, res, _ = rewriteHostID(v, buf, 0, 0, 0, hostIDv6)
	return newLen, res
}

// HostIDOption6 decodes the first HOST_ID option of an IPv6/TCP packet, like
// HostIDOption (RFC 7974 §3, §5). ok is false for fragments.
func HostIDOption6(pkt []byte) (id uint32, idLen int, ok bool) {
	ip, res := ParseIPv6(pkt)
	if res != Unchanged || ip.Proto != protoTCP || ip.Frag {
		return 0, 0, false
	}
	return HostIDFromTCPHeader(pkt[ip.Off:ip.TotalLen])
}

// TCPChecksumOK6 verifies the TCP checksum of an IPv6 packet over the
// pseudo-header of RFC 8200 §8.1 (source, final destination, upper-layer
// length, next header 6) and the segment. Fragments, non-TCP packets and
// Routing headers whose final destination is unknown (see finalDst) are
// never OK.
func TCPChecksumOK6(pkt []byte) bool {
	ip, res := ParseIPv6(pkt)
	if res != Unchanged || ip.Proto != protoTCP || ip.Frag {
		return false
	}
	seg := pkt[ip.Off:ip.TotalLen]
	if len(seg) < tcpMinHdr {
		return false
	}
	dst, ok := finalDst(pkt, ip)
	if !ok {
		return false
	}
	return packet.OK(seg, packet.PseudoSum6(pkt, dst, protoTCP, len(seg)))
}

// LowerMSS6 is LowerMSS for IPv6/TCP, with the IPv6 floor MinMSS6. The
// checksum is updated incrementally (RFC 1624). AH: NotTCP, as for
// AddHostIDOption6.
func LowerMSS6(v *packet.View, buf []byte, delta uint16) Result {
	if res := tcpRes(v, true); res != Unchanged {
		return res
	}
	return lowerMSS(v, buf, delta, MinMSS6)
}
