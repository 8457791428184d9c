package packet

import "encoding/binary"

// The Internet checksum, in one place: the one's complement sum of RFC 1071,
// its incremental update (RFC 1624), and the pseudo-headers TCP and UDP sum
// over (RFC 9293 §3.1, RFC 768 for IPv4; RFC 8200 §8.1 for IPv6).

// Sum adds b to acc as big-endian 16-bit words, an odd last byte padded with
// zero (RFC 1071 §4.1). The result is not folded; uint64 cannot overflow for
// any IP datagram.
func Sum(b []byte, acc uint64) uint64 {
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

// Fold folds carries back in: the one's complement sum (RFC 1071 §2(1)),
// not complemented.
func Fold(acc uint64) uint16 {
	for acc > 0xffff {
		acc = acc>>16 + acc&0xffff
	}
	return uint16(acc)
}

// Checksum returns the Internet checksum of b (RFC 1071): the complement of
// the one's complement sum of its 16-bit words, starting from initial (for a
// pseudo-header, say).
func Checksum(b []byte, initial uint32) uint16 {
	return ^Fold(Sum(b, uint64(initial)))
}

// Adjust returns checksum hc updated for one 16-bit field changing from old
// to new: RFC 1624 eqn 3, HC' = ~(~HC + ~m + m').
func Adjust(hc, old, new uint16) uint16 {
	return ^Fold(uint64(^hc) + uint64(^old) + uint64(new))
}

// AdjustSum is Adjust for a run of words: oldSum and newSum are the unfolded
// sums (Sum) of the words before and after the change (RFC 1624 eqn 3 with
// m and m' the folded sums).
func AdjustSum(hc uint16, oldSum, newSum uint64) uint16 {
	return ^Fold(uint64(^hc) + uint64(^Fold(oldSum)) + newSum)
}

// OK reports whether b verifies: its sum, checksum included, from initial
// (a pseudo-header sum) is all ones (RFC 1071 §1, the receiver's test).
func OK(b []byte, initial uint64) bool { return Fold(Sum(b, initial)) == 0xffff }

// PseudoSum4 is the unfolded sum of the IPv4 pseudo-header of an L4 segment
// of l4Len bytes in the IPv4 packet pkt: source, destination, zero and
// protocol, length (RFC 9293 §3.1, RFC 768).
func PseudoSum4(pkt []byte, proto uint8, l4Len int) uint64 {
	return Sum(pkt[12:20], uint64(proto)+uint64(l4Len))
}

// PseudoSum6 is the unfolded sum of the IPv6 pseudo-header (RFC 8200 §8.1):
// source, final destination (dst: the last address of a routing header, or
// the header's own), upper-layer length, next header.
func PseudoSum6(pkt, dst []byte, proto uint8, l4Len int) uint64 {
	return Sum(dst, Sum(pkt[8:24], uint64(proto)+uint64(l4Len)))
}

// SetIPv4HeaderChecksum recomputes the IPv4 header checksum of
// pkt[:hdrLen] (RFC 791 §3.1).
func SetIPv4HeaderChecksum(pkt []byte, hdrLen int) {
	pkt[10], pkt[11] = 0, 0
	binary.BigEndian.PutUint16(pkt[10:], Checksum(pkt[:hdrLen], 0))
}

// SetTCPChecksum4 recomputes the TCP checksum of the IPv4 packet pkt whose
// segment starts at off and runs to the end of pkt (RFC 9293 §3.1).
func SetTCPChecksum4(pkt []byte, off int) {
	seg := pkt[off:]
	seg[16], seg[17] = 0, 0
	binary.BigEndian.PutUint16(seg[16:], ^Fold(Sum(seg, PseudoSum4(pkt, 6, len(seg)))))
}

// SetField32 writes v at seg[off:off+4] of a TCP segment and updates its
// checksum at seg[16:18] incrementally (RFC 1624 eqn 3) over the 16-bit
// words the field touches: the segment starts 4-byte aligned in the
// pseudo-header sum, so alignment within seg is alignment within the
// checksum.
func SetField32(seg []byte, off int, v uint32) {
	if binary.BigEndian.Uint32(seg[off:]) == v {
		return
	}
	lo, hi := off&^1, min((off+4+1)&^1, len(seg))
	oldSum := Sum(seg[lo:hi], 0)
	binary.BigEndian.PutUint32(seg[off:], v)
	cs := binary.BigEndian.Uint16(seg[16:])
	binary.BigEndian.PutUint16(seg[16:], AdjustSum(cs, oldSum, Sum(seg[lo:hi], 0)))
}
