package rules

import (
	"encoding/binary"
	"fmt"
	"net/netip"

	"github.com/google/nftables"
	"github.com/google/nftables/expr"
	"github.com/google/nftables/xt"
	"golang.org/x/sys/unix"
)

// Names of the objects inside the table.
const (
	insideSet     = "inside"
	steerChain    = "steer"
	rememberChain = "remember"
)

// insideSetID identifies the inside set within the batch that creates it
// (NFTA_SET_ID, referenced by the lookups). It only has to be unique within
// one batch; a fixed value keeps the messages reproducible.
const insideSetID = 0x6e720001 // "nr" 1

// Chain priorities, relative to NF_IP_PRI_NAT_SRC (100, "srcnat").
const prioSrcNAT = 100

// NFQUEUE target, xt_NFQ_info_v3 (include/uapi/linux/netfilter/xt_NFQUEUE.h).
const (
	nfqFlagBypass    = 0x01 // NFQ_FLAG_BYPASS
	nfqFlagCPUFanout = 0x02 // NFQ_FLAG_CPU_FANOUT
	nfqTargetName    = "NFQUEUE"
	nfqTargetRev     = 3
)

// tcpFlagsMask is fin|syn|rst|ack, tcpFlagSYN is syn (RFC 9293 §3.1).
const (
	tcpFlagsMask = 0x17
	tcpFlagSYN   = 0x02
)

// Ruleset is a Spec as google/nftables objects, in the order Apply adds them.
type Ruleset struct {
	Table    *nftables.Table
	Set      *nftables.Set         // the inside prefixes, an interval set
	Elements []nftables.SetElement // elements of Set, as nft(8) would send them
	Chains   []*nftables.Chain     // steer, then remember when Spec.Track
	Rules    []*nftables.Rule      // in chain order; Rule.Chain tells which
}

// Build validates s and returns its ruleset as google/nftables objects. It is
// pure: nothing is sent anywhere.
func Build(s Spec) (*Ruleset, error) {
	if err := s.Validate(); err != nil {
		return nil, err
	}
	return build(s), nil
}

// build is Build for a valid s.
func build(s Spec) *Ruleset {
	steerPrio, rememberPrio := nftables.ChainPriority(prioSrcNAT-1), nftables.ChainPriority(prioSrcNAT+1)
	if s.Placement == PostNAT {
		steerPrio, rememberPrio = prioSrcNAT+1, prioSrcNAT+2
	}

	t := &nftables.Table{Family: nftables.TableFamilyIPv4, Name: s.table()}
	set := &nftables.Set{
		Table:    t,
		ID:       insideSetID,
		Name:     insideSet,
		Interval: true,
		KeyType:  nftables.TypeIPAddr,
	}
	rs := &Ruleset{Table: t, Set: set, Elements: intervalElements(s.Inside)}

	steer := baseChain(t, steerChain, steerPrio)
	rs.Chains = append(rs.Chains, steer)
	rule := func(c *nftables.Chain, exprs ...[]expr.Any) {
		var all []expr.Any
		for _, e := range exprs {
			all = append(all, e...)
		}
		rs.Rules = append(rs.Rules, &nftables.Rule{Table: t, Chain: c, Exprs: all})
	}
	queue := queueExprs(s)
	if s.SYN {
		// ip saddr @inside tcp flags syn / fin,syn,rst,ack queue ...
		rule(steer, insideMatch(s.Placement), tcpSYN(), queue)
	}
	if s.Track {
		// ct mark & TRACK == TRACK ip protocol tcp queue ...
		rule(steer, markBitSet(true, s.TrackBit), ipProtocolTCP(), queue)
	}
	if s.AllTCP {
		// ip saddr @inside ip protocol tcp queue ...
		rule(steer, insideMatch(s.Placement), ipProtocolTCP(), queue)
	}

	if s.Track {
		remember := baseChain(t, rememberChain, rememberPrio)
		rs.Chains = append(rs.Chains, remember)
		both := s.TrackBit | s.DoneBit
		// meta mark & TRACK == TRACK ct mark set ct mark | TRACK
		rule(remember, markBitSet(false, s.TrackBit),
			setMark(true, ^s.TrackBit, s.TrackBit))
		// meta mark & DONE == DONE ct mark set ct mark & ^TRACK
		rule(remember, markBitSet(false, s.DoneBit),
			setMark(true, ^s.TrackBit, 0))
		// meta mark & (TRACK|DONE) != 0 meta mark set meta mark & ^(TRACK|DONE)
		rule(remember, markAnySet(both), setMark(false, ^both, 0))
	}
	return rs
}

func baseChain(t *nftables.Table, name string, prio nftables.ChainPriority) *nftables.Chain {
	accept := nftables.ChainPolicyAccept
	return &nftables.Chain{
		Name:     name,
		Table:    t,
		Type:     nftables.ChainTypeFilter,
		Hooknum:  nftables.ChainHookPostrouting,
		Priority: nftables.ChainPriorityRef(prio),
		Policy:   &accept,
	}
}

// intervalElements returns the elements of an ipv4_addr interval set holding
// ps the way nft(8) 1.0.6 sends them: a closing element at 0.0.0.0 when the
// first range does not start there, then for each range its start and the
// first address after it (flagged as interval end). A range that reaches
// 255.255.255.255 has no end element.
func intervalElements(ps []netip.Prefix) []nftables.SetElement {
	var els []nftables.SetElement
	for i, p := range sortedPrefixes(ps) {
		start := p.Addr().As4()
		if i == 0 && start != [4]byte{} {
			els = append(els, nftables.SetElement{Key: make([]byte, 4), IntervalEnd: true})
		}
		els = append(els, nftables.SetElement{Key: start[:]})
		last := binary.BigEndian.Uint32(start[:]) | (1<<(32-p.Bits()) - 1)
		if last != 0xffffffff {
			els = append(els, nftables.SetElement{Key: binary.BigEndian.AppendUint32(nil, last+1), IntervalEnd: true})
		}
	}
	return els
}

// insideMatch matches packets from inside hosts: `ip saddr @inside` before
// NAT, `ct original ip saddr @inside` after it.
func insideMatch(p Placement) []expr.Any {
	var load expr.Any = &expr.Payload{
		DestRegister: 1, Base: expr.PayloadBaseNetworkHeader, Offset: 12, Len: 4, // IPv4 source address
	}
	if p == PostNAT {
		load = &expr.Ct{Register: 1, Key: ctKeySrcIP, Direction: ctDirOriginal}
	}
	return []expr.Any{load, &expr.Lookup{SourceRegister: 1, SetName: insideSet, SetID: insideSetID}}
}

// Conntrack keys google/nftables v0.3.0 has no names for (nf_tables.h).
const (
	ctKeySrcIP    = expr.CtKey(unix.NFT_CT_SRC_IP)
	ctDirOriginal = 0 // IP_CT_DIR_ORIGINAL
)

// tcpSYN is `tcp flags syn / fin,syn,rst,ack`, with the `meta l4proto tcp`
// dependency nft(8) adds for it.
func tcpSYN() []expr.Any {
	return []expr.Any{
		&expr.Meta{Key: expr.MetaKeyL4PROTO, Register: 1},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: []byte{unix.IPPROTO_TCP}},
		&expr.Payload{DestRegister: 1, Base: expr.PayloadBaseTransportHeader, Offset: 13, Len: 1}, // TCP flags
		&expr.Bitwise{SourceRegister: 1, DestRegister: 1, Len: 1, Mask: []byte{tcpFlagsMask}, Xor: []byte{0}},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: []byte{tcpFlagSYN}},
	}
}

// ipProtocolTCP is `ip protocol tcp`.
func ipProtocolTCP() []expr.Any {
	return []expr.Any{
		&expr.Payload{DestRegister: 1, Base: expr.PayloadBaseNetworkHeader, Offset: 9, Len: 1}, // IPv4 protocol
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: []byte{unix.IPPROTO_TCP}},
	}
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

// markBitSet is `ct mark & BIT == BIT` (ct true) or `meta mark & BIT == BIT`
// (ct false).
func markBitSet(ct bool, bit uint32) []expr.Any {
	return []expr.Any{
		loadMark(ct),
		&expr.Bitwise{SourceRegister: 1, DestRegister: 1, Len: 4, Mask: u32(bit), Xor: u32(0)},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: u32(bit)},
	}
}

// markAnySet is `meta mark & BITS != 0x00000000`.
func markAnySet(bits uint32) []expr.Any {
	return []expr.Any{
		loadMark(false),
		&expr.Bitwise{SourceRegister: 1, DestRegister: 1, Len: 4, Mask: u32(bits), Xor: u32(0)},
		&expr.Cmp{Op: expr.CmpOpNeq, Register: 1, Data: u32(0)},
	}
}

// setMark is `ct mark set ct mark & MASK ^ XOR` (ct true) or the same for
// meta mark; nft prints it as `| XOR` when MASK is ^XOR and `& MASK` when XOR
// is 0.
func setMark(ct bool, mask, xor uint32) []expr.Any {
	var store expr.Any = &expr.Meta{Key: expr.MetaKeyMARK, SourceRegister: true, Register: 1}
	if ct {
		store = &expr.Ct{Key: expr.CtKeyMARK, SourceRegister: true, Register: 1}
	}
	return []expr.Any{
		loadMark(ct),
		&expr.Bitwise{SourceRegister: 1, DestRegister: 1, Len: 4, Mask: u32(mask), Xor: u32(xor)},
		store,
	}
}

// queueFlags returns the NFQUEUE flags of s: always bypass (no daemon
// listening means packets pass untouched), fanout when there are several
// queues. NFT_QUEUE_FLAG_* and NFQ_FLAG_* have the same values.
func queueFlags(s Spec) uint16 {
	f := uint16(nfqFlagBypass)
	if s.QueueCount > 1 {
		f |= nfqFlagCPUFanout
	}
	return f
}

// queueExprs is the queue statement of s, native or compat.
func queueExprs(s Spec) []expr.Any {
	if s.Mechanism == Native {
		return []expr.Any{&expr.Queue{Num: s.QueueNum, Total: s.QueueCount, Flag: expr.QueueFlag(queueFlags(s))}}
	}
	return []expr.Any{nfqueueTarget(s.QueueNum, s.QueueCount, queueFlags(s))}
}

// nfqueueTarget is the xtables NFQUEUE target, revision 3. Its info is
// struct xt_NFQ_info_v3 {__u16 queuenum; __u16 queues_total; __u16 flags;}
// in host byte order, padded to 8 bytes (XT_ALIGN) as iptables-nft sends it.
func nfqueueTarget(num, total, flags uint16) *expr.Target {
	info := make(xt.Unknown, 0, 8)
	info = binary.NativeEndian.AppendUint16(info, num)
	info = binary.NativeEndian.AppendUint16(info, total)
	info = binary.NativeEndian.AppendUint16(info, flags)
	info = append(info, 0, 0)
	return &expr.Target{Name: nfqTargetName, Rev: nfqTargetRev, Info: &info}
}

// String describes the ruleset briefly, for logs.
func (rs *Ruleset) String() string {
	return fmt.Sprintf("table ip %s: %d chains, %d rules, %d set elements",
		rs.Table.Name, len(rs.Chains), len(rs.Rules), len(rs.Elements))
}
