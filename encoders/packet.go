package encoders

import "encoding/binary"

const (
	protoTCP     = 6  // RFC 790 / IANA protocol numbers
	ipv4MinHdr   = 20 // RFC 791 §3.1: IHL >= 5 words
	tcpMinHdr    = 20 // RFC 9293 §3.1: Data Offset >= 5 words
	ipFlagDF     = 0x4000
	ipFlagMF     = 0x2000
	ipFragOffMsk = 0x1fff
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

// IPv4 is a parsed view of an IPv4 header (RFC 791 §3.1). It holds values,
// not slices, so it costs nothing to keep.
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
	if len(pkt) < ipv4MinHdr {
		return ip, Truncated
	}
	if pkt[0]>>4 != 4 {
		return ip, BadHeader
	}
	ip.HdrLen = int(pkt[0]&0x0f) * 4
	if ip.HdrLen < ipv4MinHdr {
		return ip, BadHeader
	}
	ip.TotalLen = int(binary.BigEndian.Uint16(pkt[2:4]))
	if ip.TotalLen < ip.HdrLen {
		return ip, BadHeader
	}
	if ip.TotalLen > len(pkt) {
		return ip, Truncated
	}
	ip.ID = binary.BigEndian.Uint16(pkt[4:6])
	ff := binary.BigEndian.Uint16(pkt[6:8])
	ip.DF = ff&ipFlagDF != 0
	ip.MF = ff&ipFlagMF != 0
	ip.FragOff = ff & ipFragOffMsk
	ip.Proto = pkt[9]
	copy(ip.Src[:], pkt[12:16])
	copy(ip.Dst[:], pkt[16:20])
	return ip, Unchanged
}

// TCP is a parsed view of the TCP header that follows an IPv4 header
// (RFC 9293 §3.1).
type TCP struct {
	Off        int // offset of the TCP header in the packet (= IPv4 HdrLen)
	HdrLen     int // Data Offset * 4
	PayloadLen int // segment bytes after the header, within IPv4 Total Length
	SrcPort    uint16
	DstPort    uint16
	Seq, Ack   uint32
	Flags      uint8  // FlagFIN ... FlagCWR
	MSS        uint16 // MSS option value (RFC 9293 §3.7.1), 0 if none
}

// ParseTCP reads the TCP header following ip in pkt. It returns NotTCP,
// Fragment (any fragment: a first fragment's segment length is unknown),
// Truncated, or BadHeader (data offset < 5, malformed option list). Options
// are walked only as far as needed to find MSS. Unchanged means success.
func ParseTCP(pkt []byte, ip IPv4) (TCP, Result) {
	var t TCP
	if ip.Proto != protoTCP {
		return t, NotTCP
	}
	if ip.IsFragment() {
		return t, Fragment
	}
	if ip.HdrLen < ipv4MinHdr || ip.TotalLen > len(pkt) || ip.HdrLen > ip.TotalLen {
		return t, BadHeader // not from ParseIPv4
	}
	seg := pkt[ip.HdrLen:ip.TotalLen]
	if len(seg) < tcpMinHdr {
		return t, Truncated
	}
	t.Off = ip.HdrLen
	t.HdrLen = int(seg[12]>>4) * 4
	if t.HdrLen < tcpMinHdr {
		return t, BadHeader
	}
	if t.HdrLen > len(seg) {
		return t, Truncated
	}
	t.PayloadLen = len(seg) - t.HdrLen
	t.SrcPort = binary.BigEndian.Uint16(seg[0:2])
	t.DstPort = binary.BigEndian.Uint16(seg[2:4])
	t.Seq = binary.BigEndian.Uint32(seg[4:8])
	t.Ack = binary.BigEndian.Uint32(seg[8:12])
	t.Flags = seg[13]
	p, res := findOption(seg[tcpMinHdr:t.HdrLen], optMSS, 4)
	if res != Unchanged {
		return t, res
	}
	if p >= 0 {
		t.MSS = binary.BigEndian.Uint16(seg[tcpMinHdr+p+2:])
	}
	return t, Unchanged
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
