package encoders

import "github.com/natreveal/natreveal/packet"

// The parsed headers and the parsers are package packet's (one parse per
// packet: packet.View). These names stay so that readers of HOST_IDs
// outside the packet path keep compiling.

const (
	protoTCP   = packet.ProtoTCP
	ipv4MinHdr = packet.IPv4MinHdr
	tcpMinHdr  = packet.TCPMinHdr
)

// Result says what an encoder did (packet.Result).
type Result = packet.Result

// The results; see packet.Result.
const (
	Written       = packet.Written
	Unchanged     = packet.Unchanged
	Truncated     = packet.Truncated
	BadHeader     = packet.BadHeader
	NotTCP        = packet.NotTCP
	Fragment      = packet.Fragment
	NotAtomic     = packet.NotAtomic
	NoOptionSpace = packet.NoOptionSpace
	OverMTU       = packet.OverMTU
	NoBufferRoom  = packet.NoBufferRoom
	NumResults    = packet.NumResults
)

// TCP flag bits (packet.FlagFIN ...).
const (
	FlagFIN = packet.FlagFIN
	FlagSYN = packet.FlagSYN
	FlagRST = packet.FlagRST
	FlagPSH = packet.FlagPSH
	FlagACK = packet.FlagACK
	FlagURG = packet.FlagURG
	FlagECE = packet.FlagECE
	FlagCWR = packet.FlagCWR
)

// The parsed headers (package packet).
type (
	IPv4 = packet.IPv4
	IPv6 = packet.IPv6
	TCP  = packet.TCP
	UDP  = packet.UDP
)

// ParseIPv4 is packet.ParseIPv4.
func ParseIPv4(pkt []byte) (IPv4, Result) { return packet.ParseIPv4(pkt) }

// ParseTCP is packet.ParseTCP.
func ParseTCP(pkt []byte, ip IPv4) (TCP, Result) { return packet.ParseTCP(pkt, ip) }

// ParseIPv4TCP is packet.ParseIPv4TCP.
func ParseIPv4TCP(pkt []byte) (IPv4, TCP, Result) { return packet.ParseIPv4TCP(pkt) }

// ParseUDP is packet.ParseUDP.
func ParseUDP(pkt []byte, ip IPv4) (UDP, Result) { return packet.ParseUDP(pkt, ip) }

// ParseIPv6 is packet.ParseIPv6.
func ParseIPv6(pkt []byte) (IPv6, Result) { return packet.ParseIPv6(pkt) }

// ParseTCP6 is packet.ParseTCP6.
func ParseTCP6(pkt []byte, ip IPv6) (TCP, Result) { return packet.ParseTCP6(pkt, ip) }

// parseIPv6TCP parses the IPv6 header chain and the TCP header.
func parseIPv6TCP(pkt []byte) (IPv6, TCP, Result) {
	ip, res := ParseIPv6(pkt)
	if res != Unchanged {
		return ip, TCP{}, res
	}
	t, res := ParseTCP6(pkt, ip)
	return ip, t, res
}

// optLen and findOption walk a TCP or IPv4 option list (packet.OptLen,
// packet.FindOption).
func optLen(opts []byte, i int) int { return packet.OptLen(opts, i) }

func findOption(opts []byte, kind byte, want int) (int, Result) {
	return packet.FindOption(opts, kind, want)
}

// extLen is packet.ExtLen: the length of an IPv6 extension header.
func extLen(b byte) int { return packet.ExtLen(b) }

// view parses buf[:n] for the readers here that take bytes.
func view(buf []byte, n int) (packet.View, Result) { return packet.Parse(buf, n) }
