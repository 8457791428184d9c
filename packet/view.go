package packet

import "net/netip"

// View is one parsed, family-neutral view of a queued packet: the IP header
// (IPv4, RFC 791 §3.1, or IPv6 with its extension header chain, RFC 8200
// §4) and the TCP (RFC 9293 §3.1) or UDP (RFC 768) header behind it. It
// holds values, not slices: building one allocates nothing, and a caller
// keeps it on its stack and hands a pointer to every step.
//
// Steps that rewrite the packet keep the view true: an encoder that changes
// the packet updates the view it got (lengths and offsets; Resize*), so the
// next step reads it without parsing again.
type View struct {
	N       int    // the packet is buf[:N]; bytes past Total are ignored (and dropped by a rewrite)
	Version uint8  // the version nibble (RFC 791 §3.1, RFC 8200 §3); 0 when N == 0
	IPRes   Result // the IP header (chain): Unchanged when it parsed
	L4Res   Result // the TCP or UDP header: Unchanged when it parsed; NotTCP for another protocol

	Proto uint8 // upper-layer protocol (IPv4 Protocol, the Next Header that ends the IPv6 chain)
	Frag  bool  // a fragment: IPv4 MF or offset, an IPv6 Fragment header
	Total int   // datagram length: IPv4 Total Length, 40 + IPv6 Payload Length
	L4Off int   // offset of the upper-layer header

	Src, Dst netip.Addr // Is4 or Is6 (never IPv4-mapped), without zone

	IP4 IPv4 // Version 4
	IP6 IPv6 // Version 6
	TCP TCP  // Proto 6, as far as it parsed
	UDP UDP  // Proto 17, as far as it parsed
}

// Parse parses the packet buf[:n] once (n may be up to cap(buf)). Result is
// Unchanged when the IP header and, for TCP and UDP, the transport header
// parsed; else the first failure: the IP header's (Truncated, BadHeader),
// then the transport's (Fragment, Truncated, BadHeader), NotTCP for other
// protocols. The view holds what parsed: IPRes and L4Res tell which part.
func Parse(buf []byte, n int) (View, Result) {
	var v View
	res := v.Parse(buf, n)
	return v, res
}

// Parse is Parse into v: no copy of the view on return.
func (v *View) Parse(buf []byte, n int) Result {
	*v = View{N: n, IPRes: Truncated, L4Res: NotTCP}
	if n <= 0 || n > cap(buf) {
		return Truncated
	}
	pkt := buf[:n]
	v.Version = pkt[0] >> 4
	switch v.Version {
	case 4:
		ip := &v.IP4
		if v.IPRes = ip.parse(pkt); v.IPRes != Unchanged {
			return v.IPRes
		}
		v.Proto, v.Frag, v.Total, v.L4Off = ip.Proto, ip.IsFragment(), ip.TotalLen, ip.HdrLen
		v.Src, v.Dst = netip.AddrFrom4(ip.Src), netip.AddrFrom4(ip.Dst)
	case 6:
		ip := &v.IP6
		if v.IPRes = ip.Parse(pkt); v.IPRes != Unchanged {
			return v.IPRes
		}
		v.Proto, v.Frag, v.Total, v.L4Off = ip.Proto, ip.Frag, ip.TotalLen, ip.Off
		v.Src, v.Dst = netip.AddrFrom16(ip.Src), netip.AddrFrom16(ip.Dst)
	default:
		v.IPRes = v.Res4() // what an IPv4 parser says: Truncated or BadHeader
		return v.IPRes
	}
	switch {
	case v.Proto != ProtoTCP && v.Proto != ProtoUDP:
		v.L4Res = NotTCP
	case v.Frag:
		v.L4Res = Fragment
	case v.Proto == ProtoTCP:
		v.L4Res = v.TCP.parse(pkt, v.L4Off, v.Total)
	default:
		v.L4Res = v.UDP.parse(pkt, v.L4Off, v.Total)
	}
	return v.L4Res
}

// Res4 is what ParseIPv4 says of the packet: IPRes for version 4, else
// Truncated (fewer than 20 bytes) or BadHeader. Res6 is the same for
// ParseIPv6. Encoders of one family report it for a packet of the other.
func (v *View) Res4() Result { return v.resFor(4, IPv4MinHdr) }

// Res6 is Res4 for IPv6.
func (v *View) Res6() Result { return v.resFor(6, IPv6HdrLen) }

func (v *View) resFor(version uint8, min int) Result {
	switch {
	case v.Version == version:
		return v.IPRes
	case v.N < min:
		return Truncated
	}
	return BadHeader
}

// TCPRes is what ParseTCP (ParseTCP6) says after the IP header parsed:
// NotTCP, Fragment, or the TCP header's result.
func (v *View) TCPRes() Result {
	if v.Proto != ProtoTCP {
		return NotTCP
	}
	return v.L4Res
}

// IPOptOff and IPOptLen locate the IPv4 options (RFC 791 §3.1): the header
// past its 20 fixed bytes.
func (v *View) IPOptOff() int { return IPv4MinHdr }

// IPOptLen is the length of the IPv4 options; 0 for IPv6.
func (v *View) IPOptLen() int {
	if v.Version != 4 {
		return 0
	}
	return v.IP4.HdrLen - IPv4MinHdr
}

// TCPOptOff and TCPOptLen locate the TCP options (RFC 9293 §3.1) of a
// parsed TCP header.
func (v *View) TCPOptOff() int { return v.TCP.Off + TCPMinHdr }

// TCPOptLen is the length of the TCP options.
func (v *View) TCPOptLen() int { return v.TCP.HdrLen - TCPMinHdr }

// FragHdrOff is the offset of the IPv6 Fragment header, 0 if none.
func (v *View) FragHdrOff() int {
	if v.Version == 6 && v.IP6.Frag {
		return v.IP6.ProtoField
	}
	return 0
}

// setTotal sets the datagram length after a rewrite: the packet is now
// buf[:total].
func (v *View) setTotal(total int) {
	v.Total, v.N = total, total
	if v.Version == 4 {
		v.IP4.TotalLen = total
		return
	}
	v.IP6.TotalLen, v.IP6.PayloadLen = total, total-IPv6HdrLen
}

// shiftL4 moves the upper-layer header by d bytes.
func (v *View) shiftL4(d int) {
	v.L4Off += d
	if v.TCP.Off != 0 {
		v.TCP.Off += d
	}
}

// ResizeTCPHeader updates v for a TCP header whose option list changed so
// that the datagram is now total bytes long (the payload moved with it).
func (v *View) ResizeTCPHeader(total int) {
	v.TCP.HdrLen += total - v.Total
	v.setTotal(total)
}

// ResizeIPv4Header updates v for an IPv4 header whose options changed so
// that the datagram is now total bytes long.
func (v *View) ResizeIPv4Header(total int) {
	d := total - v.Total
	v.IP4.HdrLen += d
	v.shiftL4(d)
	v.setTotal(total)
}

// InsertDstOpts updates v for a Destination Options header of hl bytes
// inserted right before the upper-layer header (RFC 8200 §4.1): the field
// that named the upper layer now names it.
func (v *View) InsertDstOpts(hl int) {
	ip := &v.IP6
	ip.DestOff, ip.DestField, ip.ProtoField = v.L4Off, ip.ProtoField, v.L4Off
	if ip.DestField == 6 {
		ip.NextHdr = ProtoDstOpts
	}
	v.shiftL4(hl)
	ip.Off = v.L4Off
	v.setTotal(v.Total + hl)
}

// ResizeDstOpts updates v for the final Destination Options header grown
// or shrunk by d bytes (it stays).
func (v *View) ResizeDstOpts(d int) {
	v.shiftL4(d)
	v.IP6.Off = v.L4Off
	v.setTotal(v.Total + d)
}
