package destopt

import (
	"github.com/natreveal/natreveal/encoders"
	"github.com/natreveal/natreveal/packet"
)

// What the tests, written beside the other encoders, name without a
// package: the results and parsers (package packet) and the TCP encoders
// and checksum verifiers that build and check their packets (encoders).

type (
	Result = packet.Result
	IPv6   = packet.IPv6
	TCP    = packet.TCP
)

const (
	Written       = packet.Written
	Unchanged     = packet.Unchanged
	Truncated     = packet.Truncated
	BadHeader     = packet.BadHeader
	NotTCP        = packet.NotTCP
	Fragment      = packet.Fragment
	NoOptionSpace = packet.NoOptionSpace
	OverMTU       = packet.OverMTU
	NoBufferRoom  = packet.NoBufferRoom
	NumResults    = packet.NumResults
	protoTCP      = packet.ProtoTCP
	Headroom      = encoders.Headroom
	HostIDKind    = encoders.HostIDKind
	FlagSYN       = packet.FlagSYN
	FlagACK       = packet.FlagACK
)

var (
	ParseIPv6           = packet.ParseIPv6
	ParseTCP6           = packet.ParseTCP6
	HostIDOption6       = encoders.HostIDOption6
	HostIDOption        = encoders.HostIDOption
	TCPChecksumOK6      = encoders.TCPChecksumOK6
	TCPChecksumOK       = encoders.TCPChecksumOK
	IPv4ChecksumOK      = encoders.IPv4ChecksumOK
	HostIDFromTCPHeader = encoders.HostIDFromTCPHeader
)

// parseIPv6TCP parses the IPv6 header chain and the TCP header.
func parseIPv6TCP(pkt []byte) (IPv6, TCP, Result) {
	ip, res := ParseIPv6(pkt)
	if res != Unchanged {
		return ip, TCP{}, res
	}
	t, res := ParseTCP6(pkt, ip)
	return ip, t, res
}
