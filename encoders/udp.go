package encoders

import (
	"github.com/natreveal/natreveal/packet"
)

const (
	protoUDP  = 17 // RFC 768 / IANA protocol numbers
	udpHdrLen = 8  // RFC 768: ports, Length, Checksum
)

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
	return packet.OK(d, packet.PseudoSum4(pkt, protoUDP, u.Len))
}
