package rules

import "github.com/google/nftables/expr"

// dropInvalid are the rules that see every packet whose source is an inside
// host's (pre-NAT the first of chain from_inside, post-NAT chain
// drop_invalid): packets of inside hosts that must not leave the NAT.
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
func dropInvalid() []rule {
	drop := verdict(expr.VerdictDrop)
	return []rule{
		{ctStateIsInvalid(), drop},
		{tcpFlags(expr.CmpOpEq, tcpFlagFIN|tcpFlagSYN, tcpFlagFIN|tcpFlagSYN), drop},
		{tcpFlags(expr.CmpOpEq, tcpFlagSYN|tcpFlagRST, tcpFlagSYN|tcpFlagRST), drop},
	}
}
