// Package packettest builds and checks the packets of the packet-path
// tests with gopacket, an independent encoder and decoder: tests never
// trust the code under test to verify itself. Only _test.go files import
// it, so gopacket stays out of the binaries.
package packettest

import "github.com/natreveal/natreveal/packet"

// The values tests put on the wire, from the RFCs rather than from the
// packages under test.
const (
	HostIDKind = 253 // RFC 6994 §3 experimental TCP option kind (RFC 4727), RFC 7974 §3

	// RFC 4727 §2.1: the four IPv4 option types of experiment number 30.
	IPOptionExp             = 0x1e
	IPOptionExpClass2       = 0x5e
	IPOptionExpCopied       = 0x9e
	IPOptionExpCopiedClass2 = 0xde
)

// parseIPv6TCP parses the IPv6 header chain and the TCP header.
func parseIPv6TCP(pkt []byte) (packet.IPv6, packet.TCP, packet.Result) {
	ip, res := packet.ParseIPv6(pkt)
	if res != packet.Unchanged {
		return ip, packet.TCP{}, res
	}
	t, res := packet.ParseTCP6(pkt, ip)
	return ip, t, res
}
