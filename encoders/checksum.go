package encoders

import "encoding/binary"

// sum adds b to acc as big-endian 16-bit words, an odd last byte padded with
// zero (RFC 1071 §4.1). The result is not folded; uint64 cannot overflow for
// any IPv4 datagram.
func sum(b []byte, acc uint64) uint64 {
	for len(b) >= 8 {
		acc += uint64(binary.BigEndian.Uint16(b[0:])) +
			uint64(binary.BigEndian.Uint16(b[2:])) +
			uint64(binary.BigEndian.Uint16(b[4:])) +
			uint64(binary.BigEndian.Uint16(b[6:]))
		b = b[8:]
	}
	for len(b) >= 2 {
		acc += uint64(binary.BigEndian.Uint16(b))
		b = b[2:]
	}
	if len(b) == 1 {
		acc += uint64(b[0]) << 8
	}
	return acc
}

// fold folds carries back in: the one's complement sum (RFC 1071 §2(1)),
// not complemented.
func fold(acc uint64) uint16 {
	for acc > 0xffff {
		acc = acc>>16 + acc&0xffff
	}
	return uint16(acc)
}

// Checksum returns the Internet checksum of b (RFC 1071): the complement of
// the one's complement sum of its 16-bit words, starting from initial (for a
// pseudo-header, say).
func Checksum(b []byte, initial uint32) uint16 {
	return ^fold(sum(b, uint64(initial)))
}

// ChecksumAdjust returns checksum hc updated for one 16-bit field changing
// from old to new: RFC 1624 eqn 3, HC' = ~(~HC + ~m + m').
func ChecksumAdjust(hc, old, new uint16) uint16 {
	return ^fold(uint64(^hc) + uint64(^old) + uint64(new))
}

// pseudoSum is the sum of the TCP pseudo-header (RFC 9293 §3.1): source,
// destination, zero+protocol, TCP length.
func pseudoSum(pkt []byte, tcpLen int) uint64 {
	return sum(pkt[12:20], uint64(protoTCP)+uint64(tcpLen))
}

// IPv4ChecksumOK verifies the IPv4 header checksum (RFC 791 §3.1): the sum
// over the header, checksum included, is all ones (RFC 1071 receiver test).
func IPv4ChecksumOK(pkt []byte) bool {
	ip, res := ParseIPv4(pkt)
	if res != Unchanged {
		return false
	}
	return fold(sum(pkt[:ip.HdrLen], 0)) == 0xffff
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
	return fold(sum(seg, pseudoSum(pkt, len(seg)))) == 0xffff
}
