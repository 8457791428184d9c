package reveal

import (
	"encoding/binary"
	"net/netip"
	"strconv"
)

// IP protocol numbers (IANA; RFC 790, RFC 8200 §4 for the IPv6 extension headers).
const (
	ProtoHopByHop = 0   // RFC 8200 §4.3
	ProtoTCP      = 6   // RFC 9293
	ProtoUDP      = 17  // RFC 768
	ProtoRouting  = 43  // RFC 8200 §4.4
	ProtoFragment = 44  // RFC 8200 §4.5
	ProtoAH       = 51  // RFC 4302 §2.2: length in 4-byte units, minus 2
	ProtoNoNext   = 59  // RFC 8200 §4.7
	ProtoDstOpts  = 60  // RFC 8200 §4.6
	ProtoHIP      = 139 // RFC 7401 §5.1
)

// TCP flags (RFC 9293 §3.1).
const (
	tcpFlagSYN = 0x02
	tcpFlagACK = 0x10
)

// maxExtHeaders bounds the IPv6 extension header walk.
const maxExtHeaders = 8

// Flow is what a packet says about the flow it belongs to.
type Flow struct {
	Src, Dst netip.Addr
	// Proto is the transport protocol: IPv4 Protocol, or the IPv6 Next
	// Header after the extension headers.
	Proto            uint8
	SrcPort, DstPort uint16 // TCP and UDP only
	TCPFlags         uint8  // TCP only
	// L4Off is the offset of the transport header in the packet, 0 when
	// it is unknown (a later fragment, a header that does not fit).
	L4Off int
	// Fragment is set for any fragment (IPv4 MF or offset, an IPv6
	// Fragment header). Ports are known for first fragments only.
	Fragment bool
	// DstOpts is the offset of the first IPv6 Destination Options header,
	// 0 when there is none.
	DstOpts int
}

// HasPorts reports whether the flow's protocol has ports and they were read.
func (f Flow) HasPorts() bool {
	return (f.Proto == ProtoTCP || f.Proto == ProtoUDP) && f.L4Off > 0
}

// Opening reports whether the packet is one that `observe` and `decode`
// report: a TCP SYN without ACK (an active open, RFC 9293 §3.5), any UDP
// datagram (callers keep only the first of each flow), any HIP packet.
func (f Flow) Opening() bool {
	switch f.Proto {
	case ProtoTCP:
		return f.L4Off > 0 && f.TCPFlags&(tcpFlagSYN|tcpFlagACK) == tcpFlagSYN
	case ProtoUDP:
		return f.L4Off > 0
	case ProtoHIP:
		return true
	}
	return false
}

// ProtoName is "tcp", "udp", "hip" or the protocol number.
func ProtoName(p uint8) string {
	switch p {
	case ProtoTCP:
		return "tcp"
	case ProtoUDP:
		return "udp"
	case ProtoHIP:
		return "hip"
	}
	return strconv.Itoa(int(p))
}

// ParseFlow reads the addresses, the transport protocol and, for TCP and
// UDP, the ports of an IPv4 (RFC 791 §3.1) or IPv6 (RFC 8200 §3) packet.
// Bytes past IPv4 Total Length or IPv6 Payload Length are ignored; a packet
// cut short after its headers is fine. ok is false when the IP header itself
// is malformed or cut.
func ParseFlow(pkt []byte) (f Flow, ok bool) {
	if len(pkt) < 1 {
		return f, false
	}
	switch pkt[0] >> 4 {
	case 4:
		return parseFlow4(pkt)
	case 6:
		return parseFlow6(pkt)
	}
	return f, false
}

func parseFlow4(pkt []byte) (f Flow, ok bool) {
	if len(pkt) < 20 {
		return f, false
	}
	hl := int(pkt[0]&0x0f) * 4
	total := int(binary.BigEndian.Uint16(pkt[2:4]))
	if hl < 20 || hl > len(pkt) || total < hl {
		return f, false
	}
	end := min(total, len(pkt))
	f.Src = netip.AddrFrom4([4]byte(pkt[12:16]))
	f.Dst = netip.AddrFrom4([4]byte(pkt[16:20]))
	f.Proto = pkt[9]
	ff := binary.BigEndian.Uint16(pkt[6:8])
	f.Fragment = ff&0x2000 != 0 || ff&0x1fff != 0 // MF, offset
	if ff&0x1fff != 0 {
		return f, true // a later fragment: no transport header
	}
	f.transport(pkt[:end], hl)
	return f, true
}

func parseFlow6(pkt []byte) (f Flow, ok bool) {
	if len(pkt) < 40 {
		return f, false
	}
	end := min(40+int(binary.BigEndian.Uint16(pkt[4:6])), len(pkt))
	f.Src = netip.AddrFrom16([16]byte(pkt[8:24]))
	f.Dst = netip.AddrFrom16([16]byte(pkt[24:40]))
	next, off := pkt[6], 40
	for range maxExtHeaders {
		switch next {
		case ProtoHopByHop, ProtoRouting, ProtoDstOpts, ProtoFragment, ProtoAH:
		default:
			f.Proto = next
			f.transport(pkt[:end], off)
			return f, true
		}
		if off+8 > end {
			f.Proto = next
			return f, true
		}
		h := pkt[off:]
		var l int
		switch next {
		case ProtoFragment: // RFC 8200 §4.5: fixed 8 bytes
			l = 8
			f.Fragment = true
			if binary.BigEndian.Uint16(h[2:4])&^7 != 0 {
				f.Proto = h[0]
				return f, true // a later fragment
			}
		case ProtoAH: // RFC 4302 §2.2
			l = (int(h[1]) + 2) * 4
		default: // RFC 8200 §4.3, §4.4, §4.6: 8-octet units, not counting the first
			l = (int(h[1]) + 1) * 8
		}
		if next == ProtoDstOpts && f.DstOpts == 0 {
			f.DstOpts = off
		}
		next, off = h[0], off+l
	}
	f.Proto = next // too many extension headers: transport unknown
	return f, true
}

// transport reads the ports (and TCP flags) of the header at pkt[off:].
func (f *Flow) transport(pkt []byte, off int) {
	switch f.Proto {
	case ProtoTCP:
		if off+20 > len(pkt) {
			return
		}
		f.TCPFlags = pkt[off+13]
	case ProtoUDP:
		if off+8 > len(pkt) {
			return
		}
	default:
		if off <= len(pkt) {
			f.L4Off = off
		}
		return
	}
	f.SrcPort = binary.BigEndian.Uint16(pkt[off:])
	f.DstPort = binary.BigEndian.Uint16(pkt[off+2:])
	f.L4Off = off
}
