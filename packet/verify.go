package packet

// Checksum verifiers, for readers of HOST_IDs and for tests; the packet
// path itself updates checksums incrementally (RFC 1624).

// IPv4ChecksumOK verifies the IPv4 header checksum (RFC 791 §3.1): the sum
// over the header, checksum included, is all ones (RFC 1071 receiver test).
func IPv4ChecksumOK(pkt []byte) bool {
	ip, res := ParseIPv4(pkt)
	if res != Unchanged {
		return false
	}
	return OK(pkt[:ip.HdrLen], 0)
}

// TCPChecksumOK verifies the TCP checksum over pseudo-header and segment
// (RFC 9293 §3.1). Fragments and non-TCP packets are never OK.
func TCPChecksumOK(pkt []byte) bool {
	ip, res := ParseIPv4(pkt)
	if res != Unchanged || ip.Proto != ProtoTCP || ip.IsFragment() {
		return false
	}
	seg := pkt[ip.HdrLen:ip.TotalLen]
	if len(seg) < TCPMinHdr {
		return false
	}
	return OK(seg, PseudoSum4(pkt, ProtoTCP, len(seg)))
}

// UDPChecksumOK verifies the UDP checksum over pseudo-header (addresses,
// protocol, UDP Length) and datagram (RFC 768). A zero checksum means the
// sender computed none (RFC 768) and is OK. Fragments, non-UDP packets and
// datagrams ParseUDP rejects are never OK. Like TCPChecksumOK it uses the
// header's Destination Address, also for source-routed datagrams.
func UDPChecksumOK(pkt []byte) bool {
	ip, res := ParseIPv4(pkt)
	if res != Unchanged {
		return false
	}
	u, res := ParseUDP(pkt, ip)
	if res != Unchanged {
		return false
	}
	d := pkt[ip.HdrLen : ip.HdrLen+u.Len]
	if d[6] == 0 && d[7] == 0 {
		return true
	}
	return OK(d, PseudoSum4(pkt, ProtoUDP, u.Len))
}

// TCPChecksumOK6 verifies the TCP checksum of an IPv6 packet over the
// pseudo-header of RFC 8200 §8.1 (source, final destination, upper-layer
// length, next header 6) and the segment. Fragments, non-TCP packets and
// Routing headers whose final destination is unknown (see finalDst) are
// never OK.
func TCPChecksumOK6(pkt []byte) bool {
	ip, res := ParseIPv6(pkt)
	if res != Unchanged || ip.Proto != ProtoTCP || ip.Frag {
		return false
	}
	seg := pkt[ip.Off:ip.TotalLen]
	if len(seg) < TCPMinHdr {
		return false
	}
	dst, ok := finalDst(pkt, ip)
	if !ok {
		return false
	}
	return OK(seg, PseudoSum6(pkt, dst, ProtoTCP, len(seg)))
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
	n := (ExtLen(r[1]) - 8) / 16 // 16-byte addresses after the first 8 bytes
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
