package queue

import (
	"encoding/binary"

	"github.com/natreveal/natreveal/packet"
)

// Checksums of packets the kernel queued with their checksum not ready
// (NFQA_SKB_CSUMNOTREADY, only with NFQA_CFG_F_GSO): the skb is
// CHECKSUM_PARTIAL, its TCP/UDP checksum field holds the folded
// pseudo-header sum (not complemented; tcp_v4_send_check), and the kernel or
// the NIC would add the rest on the way out. A verdict with a new packet
// ends that: nfqnl_mangle sets CHECKSUM_NONE, so the bytes we return must
// carry a complete checksum, except for a GSO packet, which the kernel cuts
// into segments and checksums anew (tcp4_gso_segment, tcp6_gso_segment set up
// the pseudo-header of a packet that is not CHECKSUM_PARTIAL); for it we
// write the pseudo-header sum, as the kernel had it.
//
// The handlers update checksums incrementally (RFC 1624) as if they were
// complete; finishL4Checksum then writes the right value over whatever that
// left.

const (
	protoTCPNum = 6
	protoUDPNum = 17
)

// gsoTCP reports whether a super-packet is TCP over IPv4 or IPv6 (its
// segments can all take the same header rewrite).
func gsoTCP(pkt []byte) bool {
	if len(pkt) > 0 && pkt[0]>>4 == 6 {
		ip, r := packet.ParseIPv6(pkt)
		return r == packet.Unchanged && ip.Proto == protoTCPNum && !ip.Frag
	}
	ip, r := packet.ParseIPv4(pkt)
	return r == packet.Unchanged && ip.Proto == protoTCPNum && !ip.IsFragment()
}

// finishL4Checksum completes the TCP or UDP checksum of a rewritten packet
// whose checksum the kernel had left partial: the whole checksum, or for a
// GSO packet the pseudo-header sum. Other packets stay as they are.
func finishL4Checksum(pkt []byte, gso bool) {
	var l4 []byte
	var proto uint8
	var ps uint64
	if len(pkt) > 0 && pkt[0]>>4 == 6 {
		ip, r := packet.ParseIPv6(pkt)
		if r != packet.Unchanged || ip.Frag {
			return
		}
		l4, proto = pkt[ip.Off:ip.TotalLen], ip.Proto
		ps = packet.Sum(pkt[8:40], 0) // RFC 8200 §8.1: source, destination, length, next header
	} else {
		ip, r := packet.ParseIPv4(pkt)
		if r != packet.Unchanged || ip.IsFragment() {
			return
		}
		l4, proto = pkt[ip.HdrLen:ip.TotalLen], ip.Proto
		ps = packet.Sum(pkt[12:20], 0) // RFC 9293 §3.1: source, destination, protocol, length
	}
	var off int
	switch proto {
	case protoTCPNum:
		off = 16
		if len(l4) < 20 {
			return
		}
	case protoUDPNum:
		off = 6
		if len(l4) < 8 {
			return
		}
	default:
		return
	}
	ps += uint64(proto) + uint64(len(l4)>>16) + uint64(len(l4)&0xffff)
	if gso {
		binary.BigEndian.PutUint16(l4[off:], packet.Fold(ps))
		return
	}
	l4[off], l4[off+1] = 0, 0
	c := ^packet.Fold(packet.Sum(l4, ps))
	if c == 0 && proto == protoUDPNum {
		c = 0xffff // RFC 768: 0 means no checksum
	}
	binary.BigEndian.PutUint16(l4[off:], c)
}
