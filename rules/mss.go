package rules

// The mss chain: the SYN-ACK of a tracked flow gets its MSS option lowered
// by MSSDelta in the kernel, so the client's segments leave room for the
// HOST_ID option (RFC 7974 §4.2.3: no fragmentation because of it), and the
// daemon never sees the server's packets. nft has no subtraction, but v - 8
// is a bit pattern: for the lowest set bit k >= 3 of v, clear it and set
// bits 3..k-1. One rule per k, each ending in return so that no second rule
// sees the value the first one wrote.

import (
	"encoding/binary"
	"fmt"

	"github.com/google/nftables/expr"
)

const mssChain = "mss"

// MSSDelta is what Spec.TrackMSS takes off the MSS: the header bytes the
// HOST_ID option takes (tcpoption.HostIDOptionSpace).
const MSSDelta = 8

// Floors of the lowered MSS: RFC 9293 §3.7.1 (IPv4 default MSS) and RFC
// 8200 §5 (IPv6 minimum link MTU 1280 minus 60), as packet.LowerMSS.
const (
	minMSS4 = 536
	minMSS6 = 1220
)

func (f family) minMSS() uint16 {
	if f.v6 {
		return minMSS6
	}
	return minMSS4
}

// mssStep is `tcp option maxseg size & mask == bit ... set ... ^ mask`.
type mssStep struct{ mask, bit uint16 }

// mssSteps are the rules for bits k = 3..15; mask is bits 3..k.
func mssSteps() []mssStep {
	out := make([]mssStep, 0, 13)
	for k := 3; k < 16; k++ {
		out = append(out, mssStep{mask: uint16(1<<(k+1) - MSSDelta), bit: 1 << k})
	}
	return out
}

// chainMSS is what the mss chain does to an MSS value v (for the tests): the
// rules in order, the first match returns.
func chainMSS(v, min uint16) uint16 {
	switch {
	case v <= min:
		return v
	case v <= min+MSSDelta:
		return min
	}
	for _, st := range mssSteps() {
		if v&st.mask == st.bit {
			return v ^ st.mask
		}
	}
	return v
}

func be16(v uint16) []byte { return binary.BigEndian.AppendUint16(nil, v) }

// mssChainDesc is the mss chain for the floor min.
func mssChainDesc(min uint16) chainDesc {
	c := chainDesc{name: mssChain}
	lowered := countIn(CounterMSSLowered)
	c.add(mssAtMost(min), verdict(expr.VerdictReturn))
	c.add(mssAtMost(min+MSSDelta), lowered, mssSetTo(min), verdict(expr.VerdictReturn))
	for _, st := range mssSteps() {
		c.add(mssMatch(st.mask, st.bit), lowered, mssXor(st.mask), verdict(expr.VerdictReturn))
	}
	return c
}

// mssLoad loads the MSS option's value (kind 2, 2 bytes at offset 2) into
// register 1; a segment without the option ends the rule (NFT_BREAK).
func mssLoad() expr.Any {
	return &expr.Exthdr{Op: expr.ExthdrOpTcpopt, Type: 2, Offset: 2, Len: 2, DestRegister: 1}
}

// mssStore writes register 1 back as the MSS; the kernel updates the TCP
// checksum (nft_exthdr_tcp_set_eval).
func mssStore() expr.Any {
	return &expr.Exthdr{Op: expr.ExthdrOpTcpopt, Type: 2, Offset: 2, Len: 2, SourceRegister: 1}
}

func mssAtMost(v uint16) term {
	return term{[]expr.Any{mssLoad(), &expr.Cmp{Op: expr.CmpOpLte, Register: 1, Data: be16(v)}},
		fmt.Sprintf("tcp option maxseg size <= %d", v)}
}

func mssSetTo(v uint16) term {
	return term{[]expr.Any{&expr.Immediate{Register: 1, Data: be16(v)}, mssStore()},
		fmt.Sprintf("tcp option maxseg size set %d", v)}
}

// mssMatch: nft lists the mask and value in decimal.
func mssMatch(mask, val uint16) term {
	return term{[]expr.Any{
		mssLoad(),
		&expr.Bitwise{SourceRegister: 1, DestRegister: 1, Len: 2, Mask: be16(mask), Xor: be16(0)},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: be16(val)},
	}, fmt.Sprintf("tcp option maxseg size & %d == %d", mask, val)}
}

// mssXor flips the bits x of the MSS. nft lists the operand as `0x..
// [invalid type]`, which it cannot read back; Text prints the operand
// alone.
func mssXor(x uint16) term {
	return term{[]expr.Any{
		mssLoad(),
		&expr.Bitwise{SourceRegister: 1, DestRegister: 1, Len: 2, Mask: be16(0xffff), Xor: be16(x)},
		mssStore(),
	}, fmt.Sprintf("tcp option maxseg size set tcp option maxseg size ^ %#x", x)}
}
