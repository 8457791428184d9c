package packet

import "encoding/binary"

// The parsed headers of a queued packet. Each type holds values, not
// slices, so it costs nothing to keep; View gathers them.

// IANA protocol numbers (RFC 790; RFC 8200 §4 for the IPv6 extension
// headers, RFC 4302 for AH).
const (
	ProtoHopByHop = 0
	ProtoTCP      = 6
	ProtoUDP      = 17
	ProtoRouting  = 43
	ProtoFragment = 44
	ProtoAH       = 51
	ProtoDstOpts  = 60
)

// Fixed header sizes.
const (
	IPv4MinHdr = 20 // RFC 791 §3.1: IHL >= 5 words
	IPv6HdrLen = 40 // RFC 8200 §3: fixed header
	TCPMinHdr  = 20 // RFC 9293 §3.1: Data Offset >= 5 words
	UDPHdrLen  = 8  // RFC 768: ports, Length, Checksum
)

const (
	ipFlagDF     = 0x4000
	ipFlagMF     = 0x2000
	ipFragOffMsk = 0x1fff
	optEOL       = 0 // RFC 9293 §3.2
	optNOP       = 1
	optMSS       = 2
)

// TCP flag bits, byte 13 of the TCP header (RFC 9293 §3.1; ECE/CWR RFC 3168).
const (
	FlagFIN uint8 = 1 << iota
	FlagSYN
	FlagRST
	FlagPSH
	FlagACK
	FlagURG
	FlagECE
	FlagCWR
)

// IPv4 is a parsed view of an IPv4 header (RFC 791 §3.1).
type IPv4 struct {
	HdrLen   int    // IHL * 4
	TotalLen int    // Total Length; the packet is pkt[:TotalLen]
	Proto    uint8  // Protocol
	ID       uint16 // Identification
	DF, MF   bool   // Don't Fragment, More Fragments
	FragOff  uint16 // Fragment Offset, in 8-byte units (raw 13-bit value)
	Src, Dst [4]byte
}

// IsFragment reports whether the datagram is a fragment (MF set or offset != 0).
func (ip IPv4) IsFragment() bool { return ip.MF || ip.FragOff != 0 }

// ParseIPv4 validates and reads the IPv4 header at the start of pkt: version 4,
// IHL >= 5, IHL*4 <= Total Length <= len(pkt). Bytes past Total Length are
// ignored. It returns Unchanged on success, else Truncated or BadHeader.
func ParseIPv4(pkt []byte) (IPv4, Result) {
	var ip IPv4
	res := ip.parse(pkt)
	return ip, res
}

// parse is ParseIPv4 into ip, which must be zero.
func (ip *IPv4) parse(pkt []byte) Result {
	if len(pkt) < IPv4MinHdr {
		return Truncated
	}
	if pkt[0]>>4 != 4 {
		return BadHeader
	}
	ip.HdrLen = int(pkt[0]&0x0f) * 4
	if ip.HdrLen < IPv4MinHdr {
		return BadHeader
	}
	ip.TotalLen = int(binary.BigEndian.Uint16(pkt[2:4]))
	if ip.TotalLen < ip.HdrLen {
		return BadHeader
	}
	if ip.TotalLen > len(pkt) {
		return Truncated
	}
	ip.ID = binary.BigEndian.Uint16(pkt[4:6])
	ff := binary.BigEndian.Uint16(pkt[6:8])
	ip.DF = ff&ipFlagDF != 0
	ip.MF = ff&ipFlagMF != 0
	ip.FragOff = ff & ipFragOffMsk
	ip.Proto = pkt[9]
	copy(ip.Src[:], pkt[12:16])
	copy(ip.Dst[:], pkt[16:20])
	return Unchanged
}

// TCP is a parsed view of a TCP header (RFC 9293 §3.1).
type TCP struct {
	Off        int // offset of the TCP header in the packet (the L4 offset)
	HdrLen     int // Data Offset * 4
	PayloadLen int // segment bytes after the header, within the datagram
	SrcPort    uint16
	DstPort    uint16
	Seq, Ack   uint32
	Flags      uint8  // FlagFIN ... FlagCWR
	MSS        uint16 // MSS option value (RFC 9293 §3.7.1), 0 if none
}

// ParseTCP reads the TCP header following ip in pkt. It returns NotTCP,
// Fragment (any fragment: a first fragment's segment length is unknown),
// Truncated, or BadHeader (data offset < 5, an option list malformed
// anywhere before EOL). Unchanged means success.
func ParseTCP(pkt []byte, ip IPv4) (TCP, Result) {
	var t TCP
	if res := ip.l4(pkt, ProtoTCP); res != Unchanged {
		return t, res
	}
	res := t.parse(pkt, ip.HdrLen, ip.TotalLen)
	return t, res
}

// l4 checks that ip, over pkt, carries a whole (unfragmented) datagram of
// proto: NotTCP for another protocol (whichever proto asked), Fragment for
// any fragment, BadHeader for lengths that did not come from ParseIPv4.
func (ip IPv4) l4(pkt []byte, proto uint8) Result {
	if ip.Proto != proto {
		return NotTCP
	}
	if ip.IsFragment() {
		return Fragment
	}
	if ip.HdrLen < IPv4MinHdr || ip.TotalLen > len(pkt) || ip.HdrLen > ip.TotalLen {
		return BadHeader // not from ParseIPv4
	}
	return Unchanged
}

// parse reads the TCP header at off of the datagram pkt[:total] into t,
// which must be zero; off <= total <= len(pkt).
func (t *TCP) parse(pkt []byte, off, total int) Result {
	seg := pkt[off:total]
	if len(seg) < TCPMinHdr {
		return Truncated
	}
	t.Off = off
	t.HdrLen = int(seg[12]>>4) * 4
	if t.HdrLen < TCPMinHdr {
		return BadHeader
	}
	if t.HdrLen > len(seg) {
		return Truncated
	}
	t.PayloadLen = len(seg) - t.HdrLen
	t.SrcPort = binary.BigEndian.Uint16(seg[0:2])
	t.DstPort = binary.BigEndian.Uint16(seg[2:4])
	t.Seq = binary.BigEndian.Uint32(seg[4:8])
	t.Ack = binary.BigEndian.Uint32(seg[8:12])
	t.Flags = seg[13]
	p, res := walkOptions(seg[TCPMinHdr:t.HdrLen])
	if res != Unchanged {
		return res
	}
	if p >= 0 {
		t.MSS = binary.BigEndian.Uint16(seg[TCPMinHdr+p+2:])
	}
	return Unchanged
}

// walkOptions validates the whole TCP option list up to EOL (RFC 9293
// §3.1: each option but EOL and NOP is kind, length >= 2, data within the
// header) and returns the offset of the first 4-byte MSS option (§3.7.1),
// or -1. A list malformed anywhere, not only before MSS, is BadHeader: an
// option hidden behind a malformed one would otherwise reach a receiver
// that reads the list as far as it goes.
func walkOptions(opts []byte) (mss int, res Result) {
	return scanOptions(opts, optMSS, 4, true)
}

// ParseIPv4TCP parses the IPv4 and TCP headers of pkt.
func ParseIPv4TCP(pkt []byte) (IPv4, TCP, Result) {
	ip, res := ParseIPv4(pkt)
	if res != Unchanged {
		return ip, TCP{}, res
	}
	t, res := ParseTCP(pkt, ip)
	return ip, t, res
}

// OptLen returns the length of the TCP or IPv4 option at opts[i] (the
// kind-length form of RFC 9293 §3.1 and RFC 791 §3.1): 1 for NOP, 0 for
// EOL (end of list), -1 when malformed (a length byte below 2 or running
// past the option space).
func OptLen(opts []byte, i int) int {
	switch opts[i] {
	case optEOL:
		return 0
	case optNOP:
		return 1
	}
	if i+1 >= len(opts) {
		return -1
	}
	l := int(opts[i+1])
	if l < 2 || l > len(opts)-i {
		return -1
	}
	return l
}

// FindOption returns the offset in opts of the first option of kind with
// length want, or -1. It stops at EOL and reports a malformed list met
// before the option as BadHeader.
func FindOption(opts []byte, kind byte, want int) (int, Result) {
	return scanOptions(opts, kind, want, false)
}

// scanOptions walks opts up to EOL and returns the offset of the first
// option of kind with length want, or -1. It stops there unless whole, in
// which case it validates the rest of the list too; a malformed option met
// on the way is BadHeader.
func scanOptions(opts []byte, kind byte, want int, whole bool) (int, Result) {
	at := -1
	for i := 0; i < len(opts); {
		l := OptLen(opts, i)
		if l == 0 {
			break
		}
		if l < 0 {
			return -1, BadHeader
		}
		if at < 0 && opts[i] == kind && l == want {
			at = i
			if !whole {
				break
			}
		}
		i += l
	}
	return at, Unchanged
}

// UDP is a parsed view of a UDP header (RFC 768).
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
	if res := ip.l4(pkt, ProtoUDP); res != Unchanged {
		return u, res
	}
	res := u.parse(pkt, ip.HdrLen, ip.TotalLen)
	return u, res
}

// parse reads the UDP header at off of the datagram pkt[:total] into u,
// which must be zero; off <= total <= len(pkt).
func (u *UDP) parse(pkt []byte, off, total int) Result {
	seg := pkt[off:total]
	if len(seg) < UDPHdrLen {
		return Truncated
	}
	u.Len = int(binary.BigEndian.Uint16(seg[4:6]))
	if u.Len < UDPHdrLen {
		return BadHeader
	}
	if u.Len > len(seg) {
		return Truncated
	}
	u.SrcPort = binary.BigEndian.Uint16(seg[0:2])
	u.DstPort = binary.BigEndian.Uint16(seg[2:4])
	u.PayloadLen = u.Len - UDPHdrLen
	return Unchanged
}

// IPv6 is a parsed view of an IPv6 header (RFC 8200 §3) and of the
// extension header chain behind it (§4).
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
	ProtoField int   // offset of the Next Header field that holds Proto (with Frag: the Fragment header)
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

// ExtLen is the length of a Hop-by-Hop, Routing or Destination Options
// header from its Hdr Ext Len byte: 8-octet units, not counting the first 8
// (RFC 8200 §4.3, §4.4, §4.6).
func ExtLen(b byte) int { return (int(b) + 1) * 8 }

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
	res := ip.Parse(pkt)
	return ip, res
}

// Parse is ParseIPv6 into ip, which must be zero: no copy of the whole view
// on return, for the callers that need few of its fields.
func (ip *IPv6) Parse(pkt []byte) Result {
	if len(pkt) < IPv6HdrLen {
		return Truncated
	}
	if pkt[0]>>4 != 6 {
		return BadHeader
	}
	ip.PayloadLen = int(binary.BigEndian.Uint16(pkt[4:6]))
	ip.NextHdr = pkt[6]
	if ip.PayloadLen == 0 && ip.NextHdr == ProtoHopByHop {
		return BadHeader
	}
	ip.TotalLen = IPv6HdrLen + ip.PayloadLen
	if ip.TotalLen > len(pkt) {
		return Truncated
	}
	ip.HopLimit = pkt[7]
	copy(ip.Src[:], pkt[8:24])
	copy(ip.Dst[:], pkt[24:40])

	nh, off, field := ip.NextHdr, IPv6HdrLen, 6
	last, lastOff, lastField := -1, 0, 0 // the previous extension header
	for {
		var l int
		switch nh {
		case ProtoHopByHop, ProtoRouting, ProtoDstOpts:
			if nh == ProtoHopByHop && off != IPv6HdrLen {
				return BadHeader // §4.1: only right after the IPv6 header
			}
			if off+2 > ip.TotalLen {
				return Truncated
			}
			l = ExtLen(pkt[off+1])
		case ProtoAH:
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
		case ProtoFragment:
			// §4.5: 8 bytes, no length field.
			if off+8 > ip.TotalLen {
				return Truncated
			}
			ip.Frag = true
			ip.Proto, ip.ProtoField, ip.Off = pkt[off], off, off+8
			return Unchanged
		default:
			ip.Proto, ip.ProtoField, ip.Off = nh, field, off
			if last == ProtoDstOpts {
				ip.DestOff, ip.DestField = lastOff, lastField
			}
			return Unchanged
		}
		if off+l > ip.TotalLen {
			return Truncated
		}
		if nh == ProtoRouting && pkt[off+3] != 0 && ip.RoutingOff == 0 {
			ip.RoutingOff = off // §4.4: byte 3 is Segments Left
		}
		last, lastOff, lastField = int(nh), off, field
		nh, field = pkt[off], off
		off += l
	}
}

// ParseTCP6 reads the TCP header that ends ip's header chain, like ParseTCP
// for IPv4: NotTCP, Fragment, Truncated, BadHeader, or Unchanged on success.
// TCP.Off is ip.Off.
func ParseTCP6(pkt []byte, ip IPv6) (TCP, Result) {
	var t TCP
	res := t.parse6(pkt, &ip)
	return t, res
}

// parse6 is ParseTCP6 into t, which must be zero.
func (t *TCP) parse6(pkt []byte, ip *IPv6) Result {
	if ip.Proto != ProtoTCP {
		return NotTCP
	}
	if ip.Frag {
		return Fragment
	}
	if ip.Off < IPv6HdrLen || ip.TotalLen > len(pkt) || ip.Off > ip.TotalLen {
		return BadHeader // not from ParseIPv6
	}
	return t.parse(pkt, ip.Off, ip.TotalLen)
}
