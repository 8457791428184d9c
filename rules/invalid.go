package rules

import "github.com/google/nftables/expr"

// dropInvalid is the first rules of the steer chain: packets of inside
// hosts that must not leave the NAT.
//
// Conntrack gives no NAT to a packet it calls invalid (a TCP data offset
// past the segment, a truncated header, a bad checksum, a UDP length below
// 8, a TCP flag combination no stack sends): it would leave with the
// inside host's own address, and with whatever a forged header holds. A
// SYN with FIN or RST (RFC 9293 §3.1: SYN opens, FIN and RST close; no stack
// sends them together) is never queued (tcpSYN), so natreveal would not
// strip a forged HOST_ID from it; conntrack calls it invalid too, but the
// explicit rules do not depend on that. Neither kind was NATed, so the
// packet's own source address names the inside host in both placements.
func dropInvalid(f family) []rule {
	inside, drop := f.insideMatch(PreNAT), verdict(expr.VerdictDrop)
	return []rule{
		{inside, ctStateIsInvalid(), drop},
		{inside, tcpFlags(expr.CmpOpEq, tcpFlagFIN|tcpFlagSYN, tcpFlagFIN|tcpFlagSYN), drop},
		{inside, tcpFlags(expr.CmpOpEq, tcpFlagSYN|tcpFlagRST, tcpFlagSYN|tcpFlagRST), drop},
	}
}
