package rules

// The terms rules are made of (describe.go): each match or statement as the
// expressions nft(8) 1.0.6 sends for it and the text it lists for them.

import (
	"encoding/binary"
	"fmt"
	"strings"

	"github.com/google/nftables/expr"
	"golang.org/x/sys/unix"
)

// join makes one term of several, in order.
func join(ts ...term) term {
	r := rule(ts)
	return term{r.exprs(), r.text()}
}

// insideMatch matches packets from inside hosts by their source address:
// before NAT the packet's own, after NAT the conntrack original one.
func (f family) insideMatch(p Placement) term {
	load, text := expr.Any(&expr.Payload{
		DestRegister: 1, Base: expr.PayloadBaseNetworkHeader, Offset: 12, Len: 4, // IPv4 source (RFC 791 §3.1)
	}), "ip saddr"
	switch {
	case f.v6:
		load, text = &expr.Payload{
			DestRegister: 1, Base: expr.PayloadBaseNetworkHeader, Offset: 8, Len: 16, // IPv6 source (RFC 8200 §3)
		}, "ip6 saddr"
	case p == PostNAT:
		load, text = &expr.Ct{Register: 1, Key: ctKeySrcIP, Direction: ctDirOriginal}, "ct original ip saddr"
	}
	return term{
		[]expr.Any{load, &expr.Lookup{SourceRegister: 1, SetName: insideSet, SetID: f.setID()}},
		text + " @" + insideSet,
	}
}

// protoNames are the upper-layer protocols the rules match.
var protoNames = map[byte]string{unix.IPPROTO_TCP: "tcp", unix.IPPROTO_UDP: "udp"}

// proto matches the upper-layer protocol: the IPv4 header's field, or for
// IPv6, where extension headers (RFC 8200 §4) may sit before the upper
// layer, what the kernel found after them.
func (f family) proto(p byte) term {
	if f.v6 {
		return term{[]expr.Any{
			&expr.Meta{Key: expr.MetaKeyL4PROTO, Register: 1},
			&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: []byte{p}},
		}, "meta l4proto " + protoNames[p]}
	}
	return ipProtocol(p)
}

// ipProtocol matches the IPv4 Protocol field. Not inlined, like ctDirection
// and chainDesc.add: a cold path whose copies cost the router build.
//
//go:noinline
func ipProtocol(p byte) term {
	return term{[]expr.Any{
		&expr.Payload{DestRegister: 1, Base: expr.PayloadBaseNetworkHeader, Offset: 9, Len: 1}, // IPv4 protocol
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: []byte{p}},
	}, "ip protocol " + protoNames[p]}
}

// Conntrack keys google/nftables v0.3.0 has no names for (nf_tables.h).
const (
	ctKeySrcIP    = expr.CtKey(unix.NFT_CT_SRC_IP)
	ctDirOriginal = 0 // IP_CT_DIR_ORIGINAL
	ctDirReply    = 1 // IP_CT_DIR_REPLY
)

// ctDirection matches the packet's conntrack direction (not inlined: see
// ipProtocol).
//
//go:noinline
func ctDirection(dir byte) term {
	name := "original"
	if dir == ctDirReply {
		name = "reply"
	}
	return term{[]expr.Any{
		&expr.Ct{Register: 1, Key: expr.CtKeyDIRECTION},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: []byte{dir}},
	}, "ct direction " + name}
}

// cmpOps are the comparisons as nft prints them.
var cmpOps = map[expr.CmpOp]string{
	expr.CmpOpEq: "==", expr.CmpOpNeq: "!=", expr.CmpOpLt: "<", expr.CmpOpLte: "<=", expr.CmpOpGt: ">", expr.CmpOpGte: ">=",
}

// ctPackets compares the packets of the flow's original direction with n:
// nft turns the 64-bit host-order counter to network order first.
func ctPackets(op expr.CmpOp, n uint64) term {
	return term{[]expr.Any{
		&expr.Ct{Register: 1, Key: expr.CtKeyPKTS, Direction: ctDirOriginal},
		&expr.Byteorder{SourceRegister: 1, DestRegister: 1, Op: expr.ByteorderHton, Len: 8, Size: 8},
		&expr.Cmp{Op: op, Register: 1, Data: binary.BigEndian.AppendUint64(nil, n)},
	}, fmt.Sprintf("ct original packets %s %d", cmpOps[op], n)}
}

// TCP flag bits (RFC 9293 §3.1) in nft's order; tcpFlagsMask is
// fin|syn|rst|ack.
const (
	tcpFlagsMask = 0x17
	tcpFlagFIN   = 0x01
	tcpFlagSYN   = 0x02
	tcpFlagRST   = 0x04
	tcpFlagACK   = 0x10
)

var tcpFlagNames = []string{"fin", "syn", "rst", "psh", "ack", "urg", "ecn", "cwr"}

func tcpFlagList(v byte) string {
	var names []string
	for i, n := range tcpFlagNames {
		if v&(1<<i) != 0 {
			names = append(names, n)
		}
	}
	return strings.Join(names, ",")
}

// tcpFlags compares the TCP flags under mask with val, with the `meta
// l4proto tcp` dependency nft adds. nft lists `& mask == 0` as `! mask`, a
// single-bit test as `& bit == bit` and the rest as `[!= ]val / mask`.
func tcpFlags(op expr.CmpOp, mask, val byte) term {
	var text string
	switch {
	case op == expr.CmpOpEq && val == 0:
		text = "tcp flags ! " + tcpFlagList(mask)
	case op == expr.CmpOpEq && val == mask && mask&(mask-1) == 0:
		text = fmt.Sprintf("tcp flags & %s == %s", tcpFlagList(mask), tcpFlagList(val))
	case op == expr.CmpOpEq:
		text = fmt.Sprintf("tcp flags %s / %s", tcpFlagList(val), tcpFlagList(mask))
	default:
		text = fmt.Sprintf("tcp flags %s %s / %s", cmpOps[op], tcpFlagList(val), tcpFlagList(mask))
	}
	return term{[]expr.Any{
		&expr.Meta{Key: expr.MetaKeyL4PROTO, Register: 1},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: []byte{unix.IPPROTO_TCP}},
		&expr.Payload{DestRegister: 1, Base: expr.PayloadBaseTransportHeader, Offset: 13, Len: 1}, // TCP flags
		&expr.Bitwise{SourceRegister: 1, DestRegister: 1, Len: 1, Mask: []byte{mask}, Xor: []byte{0}},
		&expr.Cmp{Op: op, Register: 1, Data: []byte{val}},
	}, text}
}

// tcpSYN matches the first segment of a connection: SYN without ACK, RST
// or FIN.
func tcpSYN() term { return tcpFlags(expr.CmpOpEq, tcpFlagsMask, tcpFlagSYN) }

var verdictNames = map[expr.VerdictKind]string{expr.VerdictAccept: "accept", expr.VerdictReturn: "return", expr.VerdictDrop: "drop"}

func verdict(k expr.VerdictKind) term {
	return term{[]expr.Any{&expr.Verdict{Kind: k}}, verdictNames[k]}
}

func jump(chain string) term {
	return term{[]expr.Any{&expr.Verdict{Kind: expr.VerdictJump, Chain: chain}}, "jump " + chain}
}

// goTo continues in chain and does not come back: where chain ends, the
// base chain's policy applies.
func goTo(chain string) term {
	return term{[]expr.Any{&expr.Verdict{Kind: expr.VerdictGoto, Chain: chain}}, "goto " + chain}
}

// ctStateNew is the conntrack state bit of IP_CT_NEW (NF_CT_STATE_BIT);
// ctStateInvalid is NF_CT_STATE_INVALID_BIT.
const (
	ctStateNew     = 1 << (2 + 1)
	ctStateInvalid = 1
)

// ctStateIsInvalid matches packets conntrack could not track: malformed
// (a TCP data offset past the segment, a truncated header, a bad checksum,
// a UDP length below 8), or a TCP flag combination no stack sends.
func ctStateIsInvalid() term {
	return term{[]expr.Any{
		&expr.Ct{Register: 1, Key: expr.CtKeySTATE},
		&expr.Bitwise{SourceRegister: 1, DestRegister: 1, Len: 4, Mask: u32(ctStateInvalid), Xor: u32(0)},
		&expr.Cmp{Op: expr.CmpOpNeq, Register: 1, Data: u32(0)},
	}, "ct state invalid"}
}

func ctStateIsNew() term {
	return term{[]expr.Any{
		&expr.Ct{Register: 1, Key: expr.CtKeySTATE},
		&expr.Bitwise{SourceRegister: 1, DestRegister: 1, Len: 4, Mask: u32(ctStateNew), Xor: u32(0)},
		&expr.Cmp{Op: expr.CmpOpNeq, Register: 1, Data: u32(0)},
	}, "ct state new"}
}

// newUDPFlow matches a UDP packet of a flow natreveal has not decided about
// yet: a new flow with neither TRACK nor DONE in its ct mark.
func (f family) newUDPFlow(s Spec) term {
	return join(f.proto(unix.IPPROTO_UDP), ctStateIsNew(), markMasked(true, s.TrackBit|s.DoneBit, 0))
}

// u32 encodes a mark the way registers hold it: host byte order.
func u32(v uint32) []byte { return binary.NativeEndian.AppendUint32(nil, v) }

// loadMark loads the ct mark (ct) or the packet mark into register 1.
func loadMark(ct bool) expr.Any {
	if ct {
		return &expr.Ct{Register: 1, Key: expr.CtKeyMARK}
	}
	return &expr.Meta{Key: expr.MetaKeyMARK, Register: 1}
}

func markName(ct bool) string {
	if ct {
		return "ct mark"
	}
	return "meta mark"
}

// markBitSet tests one bit of the ct mark (ct) or the packet mark.
func markBitSet(ct bool, bit uint32) term { return markMasked(ct, bit, bit) }

// markMasked compares the ct mark (ct) or the packet mark under mask with
// val.
func markMasked(ct bool, mask, val uint32) term {
	return term{[]expr.Any{
		loadMark(ct),
		&expr.Bitwise{SourceRegister: 1, DestRegister: 1, Len: 4, Mask: u32(mask), Xor: u32(0)},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: u32(val)},
	}, maskedMatch(markName(ct), mask, val, false)}
}

// markIs compares the whole packet mark with val.
func markIs(val uint32) term {
	return term{[]expr.Any{loadMark(false), &expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: u32(val)}}, "meta mark " + hex32(val)}
}

// markAnySet matches a ct mark (ct) or packet mark with any of bits set.
func markAnySet(ct bool, bits uint32) term {
	return term{[]expr.Any{
		loadMark(ct),
		&expr.Bitwise{SourceRegister: 1, DestRegister: 1, Len: 4, Mask: u32(bits), Xor: u32(0)},
		&expr.Cmp{Op: expr.CmpOpNeq, Register: 1, Data: u32(0)},
	}, maskedMatch(markName(ct), bits, 0, true)}
}

// setMark sets the ct mark (ct) or the packet mark to (mark & mask) ^ xor.
// nft lists it as `| xor` when mask is ^xor, `& mask` when xor is 0, and
// otherwise `& (mask|xor) | xor`.
func setMark(ct bool, mask, xor uint32) term {
	var store expr.Any = &expr.Meta{Key: expr.MetaKeyMARK, SourceRegister: true, Register: 1}
	if ct {
		store = &expr.Ct{Key: expr.CtKeyMARK, SourceRegister: true, Register: 1}
	}
	var op string
	switch {
	case xor == 0:
		op = "& " + hex32(mask)
	case mask == ^xor:
		op = "| " + hex32(xor)
	default:
		op = "& " + hex32(mask|xor) + " | " + hex32(xor)
	}
	return term{[]expr.Any{
		loadMark(ct),
		&expr.Bitwise{SourceRegister: 1, DestRegister: 1, Len: 4, Mask: u32(mask), Xor: u32(xor)},
		store,
	}, fmt.Sprintf("%s set %s %s", markName(ct), markName(ct), op)}
}

// setHelper assigns the ct helper object name to the packet's flow.
func setHelper(name string) term {
	return term{[]expr.Any{&expr.Objref{Type: unix.NFT_OBJECT_CT_HELPER, Name: name}}, fmt.Sprintf("ct helper set %q", name)}
}

// queueTerm is the queue statement of s, native or compat.
func queueTerm(s Spec) term { return term{queueExprs(s, false), queueText(s, false)} }

// queueTermSelect is the queue statement of a selected flow's packets: to
// the second range of queues (Spec.SelectQueues), without bypass: with no
// daemon listening, the kernel drops the packet.
func queueTermSelect(s Spec) term { return term{queueExprs(s, true), queueText(s, true)} }
