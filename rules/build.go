package rules

import (
	"encoding/binary"
	"fmt"
	"net/netip"
	"slices"

	"github.com/google/nftables"
	"github.com/google/nftables/expr"
	"github.com/google/nftables/xt"
	"golang.org/x/sys/unix"

	"github.com/natreveal/natreveal/markbits"
)

// Names of the objects inside the table.
const (
	insideSet     = "inside"
	tagChain      = "tag"
	steerChain    = "steer"
	rememberChain = "remember"
	// SeqAdjObject is the ct helper object that gives selected flows the
	// seqadj extension (Spec.SeqAdjHelper).
	SeqAdjObject = "natreveal-seqadj"
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

// TCP flag bits (RFC 9293 §3.1); tcpFlagsMask is fin|syn|rst|ack.
const (
	tcpFlagsMask = 0x17
	tcpFlagFIN   = 0x01
	tcpFlagSYN   = 0x02
	tcpFlagRST   = 0x04
	tcpFlagACK   = 0x10
)

// Ruleset is one table of a Spec as google/nftables objects, in the order
// Apply adds them.
type Ruleset struct {
	Table    *nftables.Table
	Set      *nftables.Set         // the inside prefixes, an interval set
	Elements []nftables.SetElement // elements of Set, as nft(8) would send them
	Chains   []*nftables.Chain     // tag (post-NAT), steer, then remember when Spec.Track
	Map      *nftables.Set         // the ip-id map (Spec.IPIDMap), or nil
	Objs     []*nftables.NamedObj  // counters (Spec.Track), the ct helper object (Spec.SeqAdjHelper)
	Rules    []*nftables.Rule      // in chain order; Rule.Chain tells which
}

// Build validates s and returns its ruleset as google/nftables objects: the
// ip table when s.Inside holds IPv4 prefixes, then the ip6 table when it
// holds IPv6 ones. It is pure: nothing is sent anywhere.
func Build(s Spec) ([]*Ruleset, error) {
	if err := s.Validate(); err != nil {
		return nil, err
	}
	return build(s), nil
}

// build is Build for a valid s.
func build(s Spec) []*Ruleset {
	var out []*Ruleset
	for _, f := range s.families() {
		out = append(out, buildTable(s, f))
	}
	return out
}

// buildTable is the table of one address family.
func buildTable(s Spec, f family) *Ruleset {
	steerPrio, rememberPrio := nftables.ChainPriority(prioSrcNAT-1), nftables.ChainPriority(prioSrcNAT+1)
	if s.Placement == PostNAT {
		steerPrio, rememberPrio = prioSrcNAT+1, prioSrcNAT+2
	}

	t := &nftables.Table{Family: f.tableFamily(), Name: s.table()}
	set := &nftables.Set{
		Table:    t,
		ID:       f.setID(),
		Name:     insideSet,
		Interval: true,
		KeyType:  nftables.TypeIPAddr,
	}
	if f.v6 {
		set.KeyType = nftables.TypeIP6Addr
	}
	rs := &Ruleset{Table: t, Set: set, Elements: intervalElements(f.inside)}

	rule := func(c *nftables.Chain, exprs ...[]expr.Any) {
		var all []expr.Any
		for _, e := range exprs {
			all = append(all, e...)
		}
		rs.Rules = append(rs.Rules, &nftables.Rule{Table: t, Chain: c, Exprs: all})
	}

	if s.Placement == PostNAT {
		// IPv4 only (Validate refuses IPv6 with post-NAT: a 128-bit source
		// does not fit the 32-bit mark).
		// ctnetlink cannot see a flow whose first packet sits in a queue
		// (the conntrack entry is unconfirmed until the packet leaves), so
		// the inside source travels with the packet: before source NAT,
		// packets that will be queued and carry no mark get their IPv4
		// source address as packet mark (4 bytes, as they are in the
		// header). The daemon reads it back and its verdict restores mark 0.
		tag := baseChain(t, tagChain, prioSrcNAT-1)
		rs.Chains = append(rs.Chains, tag)
		if f.udp {
			// meta mark 0 ip saddr @inside ip protocol udp ct state new ct mark & (TRACK|DONE) == 0 meta mark set @nh,96,32
			rule(tag, markIs(0), f.insideMatch(PreNAT), f.newUDPFlow(s), markFromSource())
			// meta mark 0 ip saddr @inside ct mark & TRACK == TRACK ip protocol udp meta mark set @nh,96,32
			rule(tag, markIs(0), f.insideMatch(PreNAT), markBitSet(true, s.TrackBit), f.proto(unix.IPPROTO_UDP), markFromSource())
		}
		if f.allTCP {
			// meta mark 0 ip saddr @inside ip protocol tcp meta mark set @nh,96,32
			rule(tag, markIs(0), f.insideMatch(PreNAT), f.proto(unix.IPPROTO_TCP), markFromSource())
		} else {
			if f.syn {
				// meta mark 0 ip saddr @inside tcp flags syn / fin,syn,rst,ack meta mark set @nh,96,32
				rule(tag, markIs(0), f.insideMatch(PreNAT), tcpSYN(), markFromSource())
			}
			if f.track {
				// meta mark 0 ip saddr @inside ct mark & TRACK == TRACK tcp flags ! rst [ct original packets <= N] meta mark set @nh,96,32
				// Only what the steer chain will queue: not what its done
				// rules end (a client RST, the packet bound), which would
				// otherwise leave with the tag as its mark.
				var bound []expr.Any
				if s.TrackPackets > 0 {
					bound = ctPackets(expr.CmpOpLte, s.TrackPackets)
				}
				rule(tag, markIs(0), f.insideMatch(PreNAT), markBitSet(true, s.TrackBit),
					tcpFlags(expr.CmpOpEq, tcpFlagRST, 0), bound, markFromSource())
			}
		}
	}

	if f.track {
		rs.Objs = append(rs.Objs, counterObj(t, CounterTrackDone))
		if s.TrackMSS {
			rs.Objs = append(rs.Objs, counterObj(t, CounterMSSLowered))
		}
	}
	if f.track && s.TrackMSS {
		mss := &nftables.Chain{Name: mssChain, Table: t} // regular chain: steer jumps to it
		rs.Chains = append(rs.Chains, mss)
		min := f.minMSS()
		// tcp option maxseg size <= MIN return
		rule(mss, mssLoad(), mssCmp(expr.CmpOpLte, min), verdict(expr.VerdictReturn))
		// tcp option maxseg size <= MIN+8 tcp option maxseg size set MIN return
		lowered := countIn(CounterMSSLowered)
		rule(mss, mssLoad(), mssCmp(expr.CmpOpLte, min+MSSDelta), lowered,
			[]expr.Any{&expr.Immediate{Register: 1, Data: be16(min)}}, mssStore(), verdict(expr.VerdictReturn))
		for _, st := range mssSteps() {
			// tcp option maxseg size & MASK == BIT counter name "mss_lowered" tcp option maxseg size set tcp option maxseg size ^ MASK return
			rule(mss, mssLoad(), mssMatch(st.mask, st.bit), lowered, mssLoad(), mssXor(st.mask), mssStore(), verdict(expr.VerdictReturn))
		}
	}

	steer := baseChain(t, steerChain, steerPrio)
	rs.Chains = append(rs.Chains, steer)
	queue := queueExprs(s)
	var skipKnown []expr.Any
	if s.IPIDMap != nil && !f.v6 {
		rs.Map = hostIDMapSet(t, s.IPIDMap)
		// tcp flags syn / fin,syn,rst,ack ip frag-off & 0x7fff == 0x4000 ip id set ip saddr map @hostid
		rule(steer, ipidKernelRule())
		if s.IPIDMap.SkipKnown {
			skipKnown = notKnown() // ip saddr != @hostid
		}
	}
	if f.syn {
		// ip saddr @inside [ip saddr != @hostid] tcp flags syn / fin,syn,rst,ack queue ...
		rule(steer, f.insideMatch(s.Placement), skipKnown, tcpSYN(), queue)
	}
	if f.track {
		// RFC 7974 §4.2 in the kernel (Spec.Track). done is
		// `ct mark set ct mark & ^(TRACK|DONE) | DONE`.
		track := markBitSet(true, s.TrackBit)
		done := append(countIn(CounterTrackDone), setMark(true, ^(s.TrackBit|s.DoneBit), s.DoneBit)...)
		if s.TrackMSS {
			// ct mark & TRACK == TRACK ct direction reply tcp flags syn,ack / syn,ack jump mss
			rule(steer, track, ctDirection(ctDirReply), tcpFlags(expr.CmpOpEq, tcpFlagSYN|tcpFlagACK, tcpFlagSYN|tcpFlagACK),
				[]expr.Any{&expr.Verdict{Kind: expr.VerdictJump, Chain: mssChain}})
		}
		// ct mark & TRACK == TRACK ct direction reply tcp flags != syn,ack / syn,ack ct mark set ... | DONE
		rule(steer, track, ctDirection(ctDirReply), tcpFlags(expr.CmpOpNeq, tcpFlagSYN|tcpFlagACK, tcpFlagSYN|tcpFlagACK), done)
		// ct mark & TRACK == TRACK ct direction original tcp flags & rst == rst ct mark set ... | DONE
		rule(steer, track, ctDirection(ctDirOriginal), tcpFlags(expr.CmpOpEq, tcpFlagRST, tcpFlagRST), done)
		if s.TrackPackets > 0 {
			// ct mark & TRACK == TRACK ct direction original ct original packets > N ct mark set ... | DONE
			rule(steer, track, ctDirection(ctDirOriginal), ctPackets(expr.CmpOpGt, s.TrackPackets), done)
		}
		// ct mark & TRACK == TRACK ct direction original ip protocol tcp [meta mark set meta mark | TRACK] queue ...
		// Pre-NAT, TRACK in the packet mark tells the daemon the segment
		// is one of the tracked phase, even when another rule (AllTCP,
		// Select) would queue it too. Post-NAT the mark holds the tag.
		var phase []expr.Any
		if s.Placement == PreNAT {
			phase = setMark(false, ^s.TrackBit, s.TrackBit)
		}
		rule(steer, track, ctDirection(ctDirOriginal), f.proto(unix.IPPROTO_TCP), phase, queue)
	}
	if f.sel {
		if s.SeqAdjBit != 0 {
			// ct mark & SEQADJ == SEQADJ ct direction reply tcp flags ! fin,syn,rst accept
			// The kernel's sequence adjustment maps these server
			// segments (stream/kernelack.go); FIN, SYN and RST still go to
			// the daemon, which follows the flow's end.
			rule(steer, markBitSet(true, s.SeqAdjBit), ctDirection(ctDirReply),
				tcpFlags(expr.CmpOpEq, tcpFlagFIN|tcpFlagSYN|tcpFlagRST, 0), verdict(expr.VerdictAccept))
		}
		// ct mark & SELECT == SELECT ip protocol tcp queue ...
		rule(steer, markBitSet(true, s.SelectBit), f.proto(unix.IPPROTO_TCP), queue)
	}
	if f.allTCP {
		// ip saddr @inside ip protocol tcp queue ...
		rule(steer, f.insideMatch(s.Placement), f.proto(unix.IPPROTO_TCP), queue)
	}
	if f.udp {
		// ip saddr @inside ip protocol udp ct state new ct mark & (TRACK|DONE) == 0 queue ...
		rule(steer, f.insideMatch(s.Placement), f.newUDPFlow(s), queue)
		// ct mark & TRACK == TRACK ip protocol udp queue ...
		rule(steer, markBitSet(true, s.TrackBit), f.proto(unix.IPPROTO_UDP), queue)
	}

	if f.tracks() || f.sel {
		remember := baseChain(t, rememberChain, rememberPrio)
		rs.Chains = append(rs.Chains, remember)
		both := f.bits(s)
		// Post-NAT, only a verdict's mark (0 plus the bits) counts: a tag
		// left by a queue nobody listened to (bypass) is an address.
		var verdictOnly []expr.Any
		if s.Placement == PostNAT {
			// meta mark & ^(TRACK|DONE) == 0
			verdictOnly = markMasked(false, ^both, 0)
		}
		if f.tracks() {
			// meta mark & TRACK == TRACK ct state new ct mark set ct mark | TRACK
			// Only a flow's first packets start tracking: a tracked TCP
			// segment's packet mark has TRACK too (the steer chain's
			// phase bit), and must not start it again once it ended.
			rule(remember, verdictOnly, markBitSet(false, s.TrackBit), ctStateIsNew(),
				setMark(true, ^s.TrackBit, s.TrackBit))
			// meta mark & DONE == DONE ct mark set ct mark & ^(TRACK|DONE) | DONE
			rule(remember, verdictOnly, markBitSet(false, s.DoneBit),
				setMark(true, ^(s.TrackBit|s.DoneBit), s.DoneBit))
		}
		if f.sel {
			// meta mark & SELECT == SELECT ct mark set ct mark | SELECT
			rule(remember, markBitSet(false, s.SelectBit), setMark(true, ^s.SelectBit, s.SelectBit))
			if s.SeqAdjHelper != "" {
				rs.Objs = append(rs.Objs, &nftables.NamedObj{
					Table: t, Name: SeqAdjObject, Type: nftables.ObjTypeCtHelper,
					Obj: &expr.CtHelper{Name: s.SeqAdjHelper, L3Proto: unix.NFPROTO_IPV4, L4Proto: unix.IPPROTO_TCP},
				})
				// meta mark & SELECT == SELECT ct helper set "natreveal-seqadj"
				rule(remember, markBitSet(false, s.SelectBit),
					[]expr.Any{&expr.Objref{Type: unix.NFT_OBJECT_CT_HELPER, Name: SeqAdjObject}})
			}
		}
		// meta mark & (TRACK|DONE[|SELECT]) != 0 meta mark set meta mark & ^(TRACK|DONE[|SELECT])
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

// intervalElements returns the elements of an ipv4_addr or ipv6_addr
// interval set holding ps (one family) the way nft(8) 1.0.6 sends them: a
// closing element at the zero address when the first range does not start
// there, then for each range its start and the first address after it
// (flagged as interval end). A range that reaches the all-ones address has
// no end element.
func intervalElements(ps []netip.Prefix) []nftables.SetElement {
	var els []nftables.SetElement
	for i, p := range sortedPrefixes(ps) {
		start := p.Addr().AsSlice()
		if i == 0 && !p.Addr().IsUnspecified() {
			els = append(els, nftables.SetElement{Key: make([]byte, len(start)), IntervalEnd: true})
		}
		els = append(els, nftables.SetElement{Key: start})
		// end = (start | host mask) + 1, unless that overflows.
		end := slices.Clone(start)
		for b := p.Bits(); b < len(end)*8; b++ {
			end[b/8] |= 0x80 >> (b % 8)
		}
		carry := true
		for j := len(end) - 1; j >= 0 && carry; j-- {
			end[j]++
			carry = end[j] == 0
		}
		if !carry {
			els = append(els, nftables.SetElement{Key: end, IntervalEnd: true})
		}
	}
	return els
}

// family is the part of a Spec one table (ip or ip6) holds.
type family struct {
	v6                           bool
	inside                       []netip.Prefix
	syn, track, allTCP, udp, sel bool
}

// bits are the mark bits the remember chain clears from the packet mark.
func (f family) bits(s Spec) uint32 {
	var b uint32
	if f.tracks() {
		b |= s.TrackBit | s.DoneBit
	}
	if f.sel {
		b |= s.SelectBit
	}
	return b
}

// families splits s by address family: the ip table's, then the ip6 table's
// (each only when s.Inside holds prefixes of that family).
func (s Spec) families() []family {
	v4 := family{syn: s.SYN, track: s.Track, allTCP: s.AllTCP, udp: s.UDP, sel: s.Select}
	v6 := family{v6: true, syn: s.SYN6, track: s.Track6, udp: s.UDP6}
	for _, p := range s.Inside {
		if p.Addr().Is4() {
			v4.inside = append(v4.inside, p)
		} else {
			v6.inside = append(v6.inside, p)
		}
	}
	var out []family
	for _, f := range []family{v4, v6} {
		if len(f.inside) > 0 {
			out = append(out, f)
		}
	}
	return out
}

// tracks reports whether the table follows flows through the ct mark.
func (f family) tracks() bool { return f.track || f.udp }

func (f family) tableFamily() nftables.TableFamily {
	if f.v6 {
		return nftables.TableFamilyIPv6
	}
	return nftables.TableFamilyIPv4
}

// setID is the batch-local set ID (unique per table of the batch).
func (f family) setID() uint32 {
	if f.v6 {
		return insideSetID + 1
	}
	return insideSetID
}

// insideMatch matches packets from inside hosts: `ip saddr @inside` before
// NAT, `ct original ip saddr @inside` after it; `ip6 saddr @inside` for IPv6.
func (f family) insideMatch(p Placement) []expr.Any {
	var load expr.Any = &expr.Payload{
		DestRegister: 1, Base: expr.PayloadBaseNetworkHeader, Offset: 12, Len: 4, // IPv4 source address
	}
	switch {
	case f.v6:
		load = &expr.Payload{
			DestRegister: 1, Base: expr.PayloadBaseNetworkHeader, Offset: 8, Len: 16, // IPv6 source (RFC 8200 §3)
		}
	case p == PostNAT:
		load = &expr.Ct{Register: 1, Key: ctKeySrcIP, Direction: ctDirOriginal}
	}
	return []expr.Any{load, &expr.Lookup{SourceRegister: 1, SetName: insideSet, SetID: f.setID()}}
}

// proto is `ip protocol P` for IPv4 and `meta l4proto P` for IPv6, where
// extension headers (RFC 8200 §4) may sit before the upper layer.
func (f family) proto(p byte) []expr.Any {
	if f.v6 {
		return []expr.Any{
			&expr.Meta{Key: expr.MetaKeyL4PROTO, Register: 1},
			&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: []byte{p}},
		}
	}
	return ipProtocol(p)
}

// Conntrack keys google/nftables v0.3.0 has no names for (nf_tables.h).
const (
	ctKeySrcIP    = expr.CtKey(unix.NFT_CT_SRC_IP)
	ctDirOriginal = 0 // IP_CT_DIR_ORIGINAL
	ctDirReply    = 1 // IP_CT_DIR_REPLY
)

// ctDirection is `ct direction original|reply`.
func ctDirection(dir byte) []expr.Any {
	return []expr.Any{
		&expr.Ct{Register: 1, Key: expr.CtKeyDIRECTION},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: []byte{dir}},
	}
}

// ctPackets is `ct original packets OP N`: nft turns the 64-bit host-order
// counter to network order before comparing.
func ctPackets(op expr.CmpOp, n uint64) []expr.Any {
	return []expr.Any{
		&expr.Ct{Register: 1, Key: expr.CtKeyPKTS, Direction: ctDirOriginal},
		&expr.Byteorder{SourceRegister: 1, DestRegister: 1, Op: expr.ByteorderHton, Len: 8, Size: 8},
		&expr.Cmp{Op: op, Register: 1, Data: binary.BigEndian.AppendUint64(nil, n)},
	}
}

// tcpFlags is `tcp flags & MASK OP VAL` with nft's `meta l4proto tcp`
// dependency.
func tcpFlags(op expr.CmpOp, mask, val byte) []expr.Any {
	return []expr.Any{
		&expr.Meta{Key: expr.MetaKeyL4PROTO, Register: 1},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: []byte{unix.IPPROTO_TCP}},
		&expr.Payload{DestRegister: 1, Base: expr.PayloadBaseTransportHeader, Offset: 13, Len: 1}, // TCP flags
		&expr.Bitwise{SourceRegister: 1, DestRegister: 1, Len: 1, Mask: []byte{mask}, Xor: []byte{0}},
		&expr.Cmp{Op: op, Register: 1, Data: []byte{val}},
	}
}

func verdict(k expr.VerdictKind) []expr.Any { return []expr.Any{&expr.Verdict{Kind: k}} }

// tcpSYN is `tcp flags syn / fin,syn,rst,ack`, with the `meta l4proto tcp`
// dependency nft(8) adds for it.
func tcpSYN() []expr.Any { return tcpFlags(expr.CmpOpEq, tcpFlagsMask, tcpFlagSYN) }

// ipProtocol is `ip protocol P`.
func ipProtocol(p byte) []expr.Any {
	return []expr.Any{
		&expr.Payload{DestRegister: 1, Base: expr.PayloadBaseNetworkHeader, Offset: 9, Len: 1}, // IPv4 protocol
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: []byte{p}},
	}
}

// ctStateNew is the conntrack state bit of IP_CT_NEW (NF_CT_STATE_BIT).
const ctStateNew = 1 << (2 + 1)

// ctStateIsNew is `ct state new`.
func ctStateIsNew() []expr.Any {
	return []expr.Any{
		&expr.Ct{Register: 1, Key: expr.CtKeySTATE},
		&expr.Bitwise{SourceRegister: 1, DestRegister: 1, Len: 4, Mask: u32(ctStateNew), Xor: u32(0)},
		&expr.Cmp{Op: expr.CmpOpNeq, Register: 1, Data: u32(0)},
	}
}

// newUDPFlow is `ip protocol udp ct state new ct mark & (TRACK|DONE) == 0`
// (`meta l4proto udp ...` for IPv6): a UDP packet of a flow natreveal has not
// decided about yet.
func (f family) newUDPFlow(s Spec) []expr.Any {
	e := f.proto(unix.IPPROTO_UDP)
	e = append(e, ctStateIsNew()...)
	return append(e, markMasked(true, s.TrackBit|s.DoneBit, 0)...)
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
func markBitSet(ct bool, bit uint32) []expr.Any { return markMasked(ct, bit, bit) }

// markMasked is `ct mark & MASK == VAL` or `meta mark & MASK == VAL`.
func markMasked(ct bool, mask, val uint32) []expr.Any {
	return []expr.Any{
		loadMark(ct),
		&expr.Bitwise{SourceRegister: 1, DestRegister: 1, Len: 4, Mask: u32(mask), Xor: u32(0)},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: u32(val)},
	}
}

// markIs is `meta mark VAL`.
func markIs(val uint32) []expr.Any {
	return []expr.Any{loadMark(false), &expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: u32(val)}}
}

// markFromSource is `meta mark set @nh,96,32`: the 4 bytes of the IPv4
// source address (RFC 791 §3.1) become the packet mark unconverted, so the
// mark read as a host-order integer holds them in memory order (see
// SourceFromMark). nft lists it as `meta mark set ip saddr`, which it cannot
// read back (datatype mismatch); Text prints the raw form.
func markFromSource() []expr.Any {
	return []expr.Any{
		&expr.Payload{DestRegister: 1, Base: expr.PayloadBaseNetworkHeader, Offset: 12, Len: 4},
		&expr.Meta{Key: expr.MetaKeyMARK, SourceRegister: true, Register: 1},
	}
}

// SourceFromMark returns the address a tag rule (post-NAT placement) put in
// a packet mark (markbits.SourceFromMark).
func SourceFromMark(mark uint32) netip.Addr { return markbits.SourceFromMark(mark) }

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
	fam := "ip"
	if rs.Table.Family == nftables.TableFamilyIPv6 {
		fam = "ip6"
	}
	return fmt.Sprintf("table %s %s: %d chains, %d rules, %d set elements",
		fam, rs.Table.Name, len(rs.Chains), len(rs.Rules), len(rs.Elements))
}
