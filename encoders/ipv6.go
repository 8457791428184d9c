package encoders

import (
	"encoding/binary"

	"github.com/natreveal/natreveal/packet"
)

// IPv6 Next Header values (IANA protocol numbers; RFC 8200 §4).
const (
	protoHopByHop = 0
	protoRouting  = 43
	protoFragment = 44
	protoAH       = 51 // RFC 4302
	protoDestOpts = 60
	ipv6HdrLen    = 40 // RFC 8200 §3: fixed header
	maxIPv6Pay    = 0xffff
)

// MinMSS6 is the floor LowerMSS6 never goes below: the default send MSS for
// IPv6, 1280 - 40 - 20 (RFC 9293 §3.7.1, RFC 8200 §5).
const MinMSS6 = 1220

// IPv6 is a parsed view of an IPv6 header (RFC 8200 §3) and of the
// extension header chain behind it (§4). It holds values, not slices.
//
// Offsets are from the start of the packet. An extension header is never at
// offset 0, so 0 means "none".
type IPv6 struct {
	PayloadLen int   // Payload Length
	TotalLen   int   // 40 + Payload Length; the packet is pkt[:TotalLen]
	NextHdr    uint8 // Next Header of the fixed header
	HopLimit   uint8 // Hop Limit
	Proto      uint8 // upper-layer protocol: the Next Header that ends the walk
	Off        int   // offset of the upper-layer header
	ProtoField int   // offset of the Next Header field that holds Proto
	DestOff    int   // final Destination Options header (its Next Header is Proto), 0 if none
	DestField  int   // offset of the Next Header field that names DestOff
	RoutingOff int   // first Routing header with Segments Left > 0, 0 if none
	Frag       bool  // a Fragment header ends the walk (RFC 8200 §4.5)
	AH         bool  // an Authentication Header was walked (RFC 4302)
	Src, Dst   [16]byte
}

// IsFragment reports whether the packet has a Fragment header. Atomic
// fragments (offset 0, M clear; RFC 6946) count too: we never touch them.
func (ip IPv6) IsFragment() bool { return ip.Frag }

// extLen is the length of a Hop-by-Hop, Routing or Destination Options
// header from its Hdr Ext Len byte: 8-octet units, not counting the first 8
// (RFC 8200 §4.3, §4.4, §4.6).
func extLen(b byte) int { return (int(b) + 1) * 8 }

// ParseIPv6 validates and reads the IPv6 header at the start of pkt and walks
// its extension headers (RFC 8200 §4: Hop-by-Hop 0, Routing 43, Fragment 44,
// Destination Options 60; AH 51 with its own length unit, RFC 4302 §2.2) to
// the upper-layer header. Any other Next Header value ends the walk and is
// the upper layer (ESP, No Next Header and unknown values included). The walk
// also ends at a Fragment header: what follows it is a piece of the rest
// (§4.5); Proto and Off then describe what follows the Fragment header.
//
// Bytes past 40 + Payload Length are ignored. It returns Unchanged on
// success; Truncated when a header runs past the payload or the payload past
// pkt; BadHeader for version != 6, a Hop-by-Hop header that does not follow
// the fixed header (§4.1), an AH shorter than its 12 fixed bytes, or a
// jumbogram (Payload Length 0 with Hop-by-Hop, RFC 2675; not supported).
func ParseIPv6(pkt []byte) (IPv6, Result) {
	var ip IPv6
	res := ip.parse(pkt)
	return ip, res
}

// parse is ParseIPv6 into ip, which must be zero: no copy of the whole view
// on return, for the callers that need few of its fields.
func (ip *IPv6) parse(pkt []byte) Result {
	if len(pkt) < ipv6HdrLen {
		return Truncated
	}
	if pkt[0]>>4 != 6 {
		return BadHeader
	}
	ip.PayloadLen = int(binary.BigEndian.Uint16(pkt[4:6]))
	ip.NextHdr = pkt[6]
	if ip.PayloadLen == 0 && ip.NextHdr == protoHopByHop {
		return BadHeader
	}
	ip.TotalLen = ipv6HdrLen + ip.PayloadLen
	if ip.TotalLen > len(pkt) {
		return Truncated
	}
	ip.HopLimit = pkt[7]
	copy(ip.Src[:], pkt[8:24])
	copy(ip.Dst[:], pkt[24:40])

	nh, off, field := ip.NextHdr, ipv6HdrLen, 6
	last, lastOff, lastField := -1, 0, 0 // the previous extension header
	for {
		var l int
		switch nh {
		case protoHopByHop, protoRouting, protoDestOpts:
			if nh == protoHopByHop && off != ipv6HdrLen {
				return BadHeader // §4.1: only right after the IPv6 header
			}
			if off+2 > ip.TotalLen {
				return Truncated
			}
			l = extLen(pkt[off+1])
		case protoAH:
			// RFC 4302 §2.2: Payload Len is the AH length in 4-octet
			// units, minus 2.
			if off+2 > ip.TotalLen {
				return Truncated
			}
			l = (int(pkt[off+1]) + 2) * 4
			if l < 12 {
				return BadHeader
			}
			ip.AH = true
		case protoFragment:
			// §4.5: 8 bytes, no length field.
			if off+8 > ip.TotalLen {
				return Truncated
			}
			ip.Frag = true
			ip.Proto, ip.ProtoField, ip.Off = pkt[off], off, off+8
			return Unchanged
		default:
			ip.Proto, ip.ProtoField, ip.Off = nh, field, off
			if last == protoDestOpts {
				ip.DestOff, ip.DestField = lastOff, lastField
			}
			return Unchanged
		}
		if off+l > ip.TotalLen {
			return Truncated
		}
		if nh == protoRouting && pkt[off+3] != 0 && ip.RoutingOff == 0 {
			ip.RoutingOff = off // §4.4: byte 3 is Segments Left
		}
		last, lastOff, lastField = int(nh), off, field
		nh, field = pkt[off], off
		off += l
	}
}

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

// ParseTCP6 reads the TCP header that ends ip's header chain, like ParseTCP
// for IPv4: NotTCP, Fragment, Truncated, BadHeader, or Unchanged on success.
// TCP.Off is ip.Off.
func ParseTCP6(pkt []byte, ip IPv6) (TCP, Result) {
	if ip.Proto != protoTCP {
		return TCP{}, NotTCP
	}
	if ip.Frag {
		return TCP{}, Fragment
	}
	if ip.Off < ipv6HdrLen || ip.TotalLen > len(pkt) || ip.Off > ip.TotalLen {
		return TCP{}, BadHeader // not from ParseIPv6
	}
	// ParseTCP reads Proto, the fragment fields, HdrLen (where TCP starts)
	// and TotalLen only.
	return ParseTCP(pkt, IPv4{HdrLen: ip.Off, TotalLen: ip.TotalLen, Proto: protoTCP})
}

// parseIPv6TCP parses the IPv6 header chain and the TCP header.
func parseIPv6TCP(pkt []byte) (IPv6, TCP, Result) {
	ip, res := ParseIPv6(pkt)
	if res != Unchanged {
		return ip, TCP{}, res
	}
	t, res := ParseTCP6(pkt, ip)
	return ip, t, res
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
func AddHostIDOption6(buf []byte, n int, id uint32, idLen int, mtu int) (newLen int, res Result, stripped bool) {
	return rewriteHostID(buf, n, id, idLen, mtu, addHostID|hostIDv6)
}

// StripHostIDOption6 removes every HOST_ID option from the IPv6/TCP packet
// buf[:n], like StripHostIDOption. Unchanged when there is none.
func StripHostIDOption6(buf []byte, n int) (newLen int, res Result) {
	newLen, res, _ = rewriteHostID(buf, n, 0, 0, 0, hostIDv6)
	return newLen, res
}

// tcpBounds6 is tcpBounds for IPv6: parseIPv6TCP's checks, in the same
// order, with the same results, then a packet with AH is NotTCP (see
// AddHostIDOption6). Without AH, ParseTCP6's option walk up to MSS is
// skipped: rewriteHostID's walk of the whole list (filterHostID) is
// BadHeader wherever that one is.
func tcpBounds6(pkt []byte) (tcpOff, total, tcpHdr int, res Result) {
	var ip IPv6
	if res = ip.parse(pkt); res != Unchanged {
		return 0, 0, 0, res
	}
	if ip.AH {
		if _, res := ParseTCP6(pkt, ip); res != Unchanged {
			return 0, 0, 0, res
		}
		return 0, 0, 0, NotTCP
	}
	if ip.Proto != protoTCP {
		return 0, 0, 0, NotTCP
	}
	if ip.Frag {
		return 0, 0, 0, Fragment
	}
	if tcpHdr, res = tcpHdrLen(pkt[ip.Off:ip.TotalLen]); res != Unchanged {
		return 0, 0, 0, res
	}
	return ip.Off, ip.TotalLen, tcpHdr, Unchanged
}

// growOK checks a datagram growing to newTotal bytes against the Payload
// Length limit and mtu (OverMTU) and against cap(buf) (NoBufferRoom).
func growOK(buf []byte, newTotal, mtu int) Result {
	if newTotal-ipv6HdrLen > maxIPv6Pay || (mtu > 0 && newTotal > mtu) {
		return OverMTU
	}
	if newTotal > cap(buf) {
		return NoBufferRoom
	}
	return Written
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
func LowerMSS6(pkt []byte, delta uint16) Result {
	ip, t, res := parseIPv6TCP(pkt)
	if res != Unchanged {
		return res
	}
	if ip.AH {
		return NotTCP
	}
	return lowerMSS(pkt, t, delta, MinMSS6)
}
