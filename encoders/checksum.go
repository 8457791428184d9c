package encoders

// Checksum verifiers; the sums themselves are package packet's.

import "github.com/natreveal/natreveal/packet"

// IPv4ChecksumOK verifies the IPv4 header checksum (RFC 791 §3.1): the sum
// over the header, checksum included, is all ones (RFC 1071 receiver test).
func IPv4ChecksumOK(pkt []byte) bool {
	ip, res := ParseIPv4(pkt)
	if res != Unchanged {
		return false
	}
	return packet.OK(pkt[:ip.HdrLen], 0)
}

// TCPChecksumOK verifies the TCP checksum over pseudo-header and segment
// (RFC 9293 §3.1). Fragments and non-TCP packets are never OK.
func TCPChecksumOK(pkt []byte) bool {
	ip, res := ParseIPv4(pkt)
	if res != Unchanged || ip.Proto != protoTCP || ip.IsFragment() {
		return false
	}
	seg := pkt[ip.HdrLen:ip.TotalLen]
	if len(seg) < tcpMinHdr {
		return false
	}
	return packet.OK(seg, packet.PseudoSum4(pkt, protoTCP, len(seg)))
}
