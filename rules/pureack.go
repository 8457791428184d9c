package rules

// The pureack chain: while the kernel's sequence adjustment holds a
// selected flow's offset (Spec.SeqAdjBit), the client's segments without
// payload need nothing from the daemon (stream/kernelack.go): seqadj adds
// the offset to their sequence numbers, their acknowledgement numbers and
// SACK blocks (RFC 2018) count the server's bytes, which no edit moves. nft
// has no arithmetic, so "no payload" is one rule per TCP Data Offset (RFC
// 9293 §3.1): the IPv4 Total Length is the 20-byte IPv4 header plus the
// TCP header. A packet with IPv4 options matching one of them would have
// less than no payload: conntrack calls it invalid, and it has no ct mark.
//
// With Spec.UploadSize, a last rule accepts the client segments of a
// request body the daemon put in the uploads set (uploads.go).

import (
	"fmt"

	"github.com/google/nftables/expr"
	"golang.org/x/sys/unix"
)

const pureAckChain = "pureack"

// pureAckChainDesc accepts a TCP segment whose headers are all it holds.
func pureAckChainDesc() chainDesc {
	c := chainDesc{name: pureAckChain}
	for doff := byte(5); doff <= 15; doff++ {
		c.add(tcpDataOffset(doff), ipLength(20+4*uint16(doff)), verdict(expr.VerdictAccept))
	}
	return c
}

// tcpDataOffset matches the TCP header length in 32-bit words, with the
// `meta l4proto tcp` dependency nft adds.
func tcpDataOffset(doff byte) term {
	return term{[]expr.Any{
		&expr.Meta{Key: expr.MetaKeyL4PROTO, Register: 1},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: []byte{unix.IPPROTO_TCP}},
		&expr.Payload{DestRegister: 1, Base: expr.PayloadBaseTransportHeader, Offset: 12, Len: 1}, // Data Offset, high nibble
		&expr.Bitwise{SourceRegister: 1, DestRegister: 1, Len: 1, Mask: []byte{0xf0}, Xor: []byte{0}},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: []byte{doff << 4}},
	}, fmt.Sprintf("tcp doff %d", doff)}
}

// ipLength matches the IPv4 Total Length (RFC 791 §3.1).
func ipLength(n uint16) term {
	return term{[]expr.Any{
		&expr.Payload{DestRegister: 1, Base: expr.PayloadBaseNetworkHeader, Offset: 2, Len: 2},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: be16(n)},
	}, fmt.Sprintf("ip length %d", n)}
}
