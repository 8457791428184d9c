package hip

import (
	"encoding/binary"

	"github.com/natreveal/natreveal/packet"
)

const (
	protoHIP  = 139 // RFC 7401 §5.1 (IANA protocol number for HIP)
	hipMinHdr = 40  // fixed header with both HITs
)

// HIPSenderHIT returns the Sender's Host Identity Tag of a HIP packet: an
// IPv4 datagram with protocol 139 (not a fragment), or an IPv6 packet whose
// Next Header is 139 directly after the fixed header (no extension headers,
// no jumbogram). A NAT does not rewrite the HIT, so it identifies the host
// behind one. But the HIP checksum covers the addresses a NAT rewrites:
// HIP across NATs normally runs over UDP (RFC 9028, RFC 5770), which this
// does not parse.
//
// RFC 7401 §5.1, the fixed HIP header (a logical IPv6 extension header):
//
//	byte 0      Next Header (normally 59, IPPROTO_NONE)
//	byte 1      Header Length: 8-byte units past the first 8; >= 4,
//	            as both HITs are always there
//	byte 2      fixed 0 bit, 7-bit Packet Type (I1 = 1, R1 = 2, ...)
//	byte 3      4-bit Version (2; 1 in RFC 5201), 3 reserved bits, fixed 1 bit
//	bytes 4-5   Checksum (pseudo-header and HIP packet, like TCP/UDP)
//	bytes 6-7   Controls
//	bytes 8-23  Sender's HIT
//	bytes 24-39 Receiver's HIT
//	40-...      HIP parameters (TLV)
//
// ok is false unless the HIP header fits: Header Length >= 4 and
// (Header Length+1)*8 within the IP payload. Version, fixed bits and
// checksum are not checked.
func HIPSenderHIT(pkt []byte) (hit [16]byte, ok bool) {
	var h []byte
	switch {
	case len(pkt) >= 1 && pkt[0]>>4 == 4:
		ip, res := packet.ParseIPv4(pkt)
		if res != packet.Unchanged || ip.Proto != protoHIP || ip.IsFragment() {
			return hit, false
		}
		h = pkt[ip.HdrLen:ip.TotalLen]
	case len(pkt) >= packet.IPv6HdrLen && pkt[0]>>4 == 6:
		if pkt[6] != protoHIP {
			return hit, false
		}
		// Payload Length 0 (jumbogram, RFC 2675) leaves h empty.
		pl := int(binary.BigEndian.Uint16(pkt[4:6]))
		if packet.IPv6HdrLen+pl > len(pkt) {
			return hit, false
		}
		h = pkt[packet.IPv6HdrLen : packet.IPv6HdrLen+pl]
	default:
		return hit, false
	}
	if len(h) < hipMinHdr {
		return hit, false
	}
	if hl := packet.ExtLen(h[1]); hl < hipMinHdr || hl > len(h) {
		return hit, false
	}
	copy(hit[:], h[8:24])
	return hit, true
}
