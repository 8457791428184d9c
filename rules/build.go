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
	// Regular chains the steer chain sends packets into.
	fromInsideChain  = "from_inside"
	followedChain    = "followed"
	dropInvalidChain = "drop_invalid" // post-NAT only

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

// Ruleset is one table of a Spec as google/nftables objects, in the order
// Apply adds them.
type Ruleset struct {
	Table    *nftables.Table
	Set      *nftables.Set         // the inside prefixes, an interval set
	Elements []nftables.SetElement // elements of Set, as nft(8) would send them
	Chains   []*nftables.Chain     // tag (post-NAT), mss (Spec.TrackMSS), pureack (Spec.SeqAdjBit), steer, then remember when flows are followed
	Map      *nftables.Set         // the ip-id map (Spec.IPIDMap), or nil
	Uploads  *nftables.Set         // the uploads set (Spec.UploadSize), or nil
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
		out = append(out, describeTable(s, f).ruleset())
	}
	return out
}

// describeTable is the table of one address family of a valid s.
func describeTable(s Spec, f family) *tableDesc {
	steerPrio, rememberPrio := -1, +1
	if s.Placement == PostNAT {
		steerPrio, rememberPrio = +1, +2
	}

	t := &nftables.Table{Family: f.tableFamily(), Name: s.table()}
	set := &nftables.Set{
		Table:    t,
		ID:       f.setID(),
		Name:     insideSet,
		Interval: true,
		KeyType:  nftables.TypeIPAddr,
	}
	addrType := "ipv4_addr"
	if f.v6 {
		set.KeyType, addrType = nftables.TypeIP6Addr, "ipv6_addr"
	}
	d := &tableDesc{
		table: t, set: set, elements: intervalElements(f.inside),
		setText: fmt.Sprintf("\tset %s {\n\t\ttype %s\n\t\tflags interval\n\t\telements = { %s }\n\t}\n",
			insideSet, addrType, elementsText(f.inside)),
	}

	queue := queueTerm(s)
	trackMatch := markBitSet(true, s.TrackBit)

	if s.Placement == PostNAT {
		// IPv4 only (Validate refuses IPv6 with post-NAT: a 128-bit source
		// does not fit the 32-bit mark).
		// ctnetlink cannot see a flow whose first packet sits in a queue
		// (the conntrack entry is unconfirmed until the packet leaves), so
		// the inside source travels with the packet: before source NAT,
		// packets that will be queued and carry no mark get their IPv4
		// source address as packet mark (4 bytes, as they are in the
		// header). The daemon reads it back and its verdict restores mark 0.
		tag := chainDesc{name: tagChain, base: true, prio: -1}
		untagged, inside, toMark := markIs(0), f.insideMatch(PreNAT), markFromSource()
		if f.udp {
			tag.add(untagged, inside, f.newUDPFlow(s), toMark)
			tag.add(untagged, inside, trackMatch, f.proto(unix.IPPROTO_UDP), toMark)
		}
		if f.allTCP {
			tag.add(untagged, inside, f.proto(unix.IPPROTO_TCP), toMark)
		} else {
			if f.syn {
				tag.add(untagged, inside, tcpSYN(), toMark)
			}
			if f.track {
				// Only what the steer chain will queue: not what its done
				// rules end (a client RST, the packet bound), which would
				// otherwise leave with the tag as its mark.
				var bound term
				if s.TrackPackets > 0 {
					bound = ctPackets(expr.CmpOpLte, s.TrackPackets)
				}
				tag.add(untagged, inside, trackMatch, tcpFlags(expr.CmpOpEq, tcpFlagRST, 0), bound, toMark)
			}
		}
		d.chains = append(d.chains, tag)
	}

	if f.track {
		d.objs = append(d.objs, counterObj(t, CounterTrackDone))
		if s.TrackMSS {
			d.objs = append(d.objs, counterObj(t, CounterMSSLowered))
			d.chains = append(d.chains, mssChainDesc(f.minMSS()))
		}
	}

	if f.sel && s.SeqAdjBit != 0 {
		pureAck := pureAckChainDesc()
		if s.UploadSize != 0 {
			d.uploads, d.upText = f.uploadsSet(t, s), f.uploadsText(s)
			pureAck.add(f.uploadsMatch(), verdict(expr.VerdictAccept))
		}
		d.chains = append(d.chains, pureAck)
	}
	// The steer chain sends each packet into the one concern it can have:
	// rules for packets of inside hosts (chain from_inside) or rules for
	// flows natreveal follows through their ct mark (chain followed). A
	// packet of neither, such as the server's half of a flow natreveal is
	// done with, leaves after two rules; within each concern the rules keep
	// their order, and from_inside reaches followed where the steer chain
	// reached its rules before.
	steer := chainDesc{name: steerChain, base: true, prio: steerPrio}
	fromInside := chainDesc{name: fromInsideChain}
	followed := chainDesc{name: followedChain}
	if s.Placement == PreNAT {
		fromInside.rules = append(fromInside.rules, dropInvalid()...) // invalid.go
	}
	var skipKnown term
	if s.IPIDMap != nil && !f.v6 {
		// Only hosts of the inside set are in the map: the daemon learns
		// them from their queued SYNs.
		d.hostID, d.mapText = hostIDMapSet(t, s.IPIDMap), ipidMapText(s.IPIDMap)
		fromInside.add(ipidKernelRule()...)
		if s.IPIDMap.SkipKnown {
			skipKnown = notKnown()
		}
	}
	if f.syn {
		fromInside.add(skipKnown, tcpSYN(), queue)
	}
	if f.track {
		// RFC 7974 §4.2 in the kernel (Spec.Track): the server's segments
		// are never queued; its first one other than a SYN-ACK, a client
		// reset or the packet bound end the tracked phase.
		done := []term{countIn(CounterTrackDone), setMark(true, ^(s.TrackBit | s.DoneBit), s.DoneBit)}
		synAck := func(op expr.CmpOp) term { return tcpFlags(op, tcpFlagSYN|tcpFlagACK, tcpFlagSYN|tcpFlagACK) }
		if s.TrackMSS {
			followed.add(trackMatch, ctDirection(ctDirReply), synAck(expr.CmpOpEq), jump(mssChain))
		}
		followed.add(append([]term{trackMatch, ctDirection(ctDirReply), synAck(expr.CmpOpNeq)}, done...)...)
		followed.add(append([]term{trackMatch, ctDirection(ctDirOriginal), tcpFlags(expr.CmpOpEq, tcpFlagRST, tcpFlagRST)}, done...)...)
		if s.TrackPackets > 0 {
			followed.add(append([]term{trackMatch, ctDirection(ctDirOriginal), ctPackets(expr.CmpOpGt, s.TrackPackets)}, done...)...)
		}
		// Pre-NAT, TRACK in the packet mark tells the daemon the segment
		// is one of the tracked phase, even when another rule (AllTCP,
		// Select) would queue it too. Post-NAT the mark holds the tag.
		var phase term
		if s.Placement == PreNAT {
			phase = setMark(false, ^s.TrackBit, s.TrackBit)
		}
		followed.add(trackMatch, ctDirection(ctDirOriginal), f.proto(unix.IPPROTO_TCP), phase, queue)
	}
	if f.sel {
		if s.SeqAdjBit != 0 {
			// The kernel's sequence adjustment maps these server segments
			// (stream/kernelack.go); FIN, SYN and RST still go to the daemon,
			// which follows the flow's end.
			followed.add(markBitSet(true, s.SeqAdjBit), ctDirection(ctDirReply),
				tcpFlags(expr.CmpOpEq, tcpFlagFIN|tcpFlagSYN|tcpFlagRST, 0), verdict(expr.VerdictAccept))
			// And the client's segments without payload (pureack.go).
			followed.add(markBitSet(true, s.SeqAdjBit), ctDirection(ctDirOriginal),
				tcpFlags(expr.CmpOpEq, tcpFlagFIN|tcpFlagSYN|tcpFlagRST, 0), jump(pureAckChain))
		}
		// SelectBit in the packet mark tells the daemon a client segment is
		// a selected flow's even when it holds no state for it (a restart,
		// an HA failover: stream/orphan.go resets such flows).
		//
		// Fail closed: without bypass, a selected flow's segment that finds
		// no daemon (killed, not yet restarted; an HA node whose daemon
		// died before its links) is dropped by the kernel, and its sender
		// retransmits. Passed, it would reach the other end untranslated:
		// client bytes at sequence numbers the edits moved (a corrupt
		// stream) or without natreveal's fields, server acknowledgements of
		// bytes the client never sent. The daemon that comes back resets
		// the flow (stream/orphan.go).
		//
		// And to queues of their own (Spec.SelectQueues), which the daemon
		// binds without NFQA_CFG_F_FAIL_OPEN and serves fail closed: a
		// segment the kernel queue or the daemon's backlog cannot take is
		// dropped too, whatever queue.fail_open says for the SYNs.
		selQueue := queueTermSelect(s)
		followed.add(markBitSet(true, s.SelectBit), ctDirection(ctDirOriginal), f.proto(unix.IPPROTO_TCP),
			setMark(false, ^s.SelectBit, s.SelectBit), selQueue)
		followed.add(markBitSet(true, s.SelectBit), f.proto(unix.IPPROTO_TCP), selQueue)
	}
	if f.udp {
		// Before the rules of inside hosts that follow in from_inside, as it
		// was after them in one chain: it matches UDP with TRACK in the ct
		// mark, they TCP or UDP without.
		followed.add(trackMatch, f.proto(unix.IPPROTO_UDP), queue)
	}
	// Every followed rule tests one of these bits of the ct mark first.
	isFollowed := markAnySet(true, f.followBits(s))
	if len(followed.rules) > 0 {
		fromInside.add(isFollowed, jump(followedChain))
	}
	if f.allTCP {
		fromInside.add(f.proto(unix.IPPROTO_TCP), queue)
	}
	if f.udp {
		fromInside.add(f.newUDPFlow(s), queue)
	}

	if s.Placement == PostNAT {
		// The source of an invalid packet was not translated (invalid.go),
		// the one of every other packet of an inside host may have been.
		drops := chainDesc{name: dropInvalidChain, rules: dropInvalid()}
		d.chains = append(d.chains, drops)
		steer.add(f.insideMatch(PreNAT), jump(dropInvalidChain))
	}
	if len(followed.rules) > 0 {
		d.chains = append(d.chains, followed)
	}
	switch {
	case len(followed.rules) > 0 && len(fromInside.rules) == 1:
		// Post-NAT and tracking alone: from_inside would only lead to
		// followed, where the next rule leads too.
	case len(fromInside.rules) == 1:
		// Post-NAT, one rule: in the steer chain, a jump less.
		steer.add(append([]term{f.insideMatch(s.Placement)}, fromInside.rules[0]...)...)
	case len(fromInside.rules) > 1:
		d.chains = append(d.chains, fromInside)
		steer.add(f.insideMatch(s.Placement), goTo(fromInsideChain))
	}
	if len(followed.rules) > 0 {
		steer.add(isFollowed, goTo(followedChain))
	}
	d.chains = append(d.chains, steer)

	if f.tracks() || f.sel {
		remember := chainDesc{name: rememberChain, base: true, prio: rememberPrio}
		both := f.bits(s)
		// Each rule below needs one of both in the packet mark: a packet
		// without leaves at once.
		remember.add(markMasked(false, both, 0), verdict(expr.VerdictReturn))
		// Post-NAT, only a verdict's mark (0 plus the bits) counts: a tag
		// left by a queue nobody listened to (bypass) is an address.
		var verdictOnly term
		if s.Placement == PostNAT {
			verdictOnly = markMasked(false, ^both, 0)
		}
		if f.tracks() {
			// Only a flow's first packets start tracking: a tracked TCP
			// segment's packet mark has TRACK too (the steer chain's
			// phase bit), and must not start it again once it ended.
			remember.add(verdictOnly, markBitSet(false, s.TrackBit), ctStateIsNew(),
				setMark(true, ^s.TrackBit, s.TrackBit))
			remember.add(verdictOnly, markBitSet(false, s.DoneBit),
				setMark(true, ^(s.TrackBit|s.DoneBit), s.DoneBit))
		}
		if f.sel {
			remember.add(markBitSet(false, s.SelectBit), setMark(true, ^s.SelectBit, s.SelectBit))
			if s.SeqAdjHelper != "" {
				d.objs = append(d.objs, ctHelperObj(t, s.SeqAdjHelper))
				remember.add(markBitSet(false, s.SelectBit), setHelper(SeqAdjObject))
			}
		}
		// The daemon's bits mean nothing past this table: clear them from
		// the packet mark.
		remember.add(markAnySet(false, both), setMark(false, ^both, 0))
		d.chains = append(d.chains, remember)
	}
	if !f.v6 && s.CloseBit != 0 {
		d.chains = append(d.chains, closingChain(s.CloseBit))
	}
	return d
}

// ctHelperObj is the ct helper object SeqAdjObject for the kernel helper
// type helper (TCP over IPv4).
func ctHelperObj(t *nftables.Table, helper string) object {
	return object{
		obj: &nftables.NamedObj{
			Table: t, Name: SeqAdjObject, Type: nftables.ObjTypeCtHelper,
			Obj: &expr.CtHelper{Name: helper, L3Proto: unix.NFPROTO_IPV4, L4Proto: unix.IPPROTO_TCP},
		},
		text: fmt.Sprintf("\tct helper %s {\n\t\ttype %q protocol tcp\n\t\tl3proto ip\n\t}\n\n", SeqAdjObject, helper),
	}
}

// IntervalElements returns the elements of an ipv4_addr or ipv6_addr
// interval set holding ps (one family), as nft(8) sends them; guard's trusted
// NAT sets use it too.
func IntervalElements(ps []netip.Prefix) []nftables.SetElement { return intervalElements(ps) }

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

// followBits are the ct mark bits of the flows the steer chain follows:
// each rule of chain followed tests one of them.
func (f family) followBits(s Spec) uint32 {
	var b uint32
	if f.tracks() {
		b |= s.TrackBit
	}
	if f.sel {
		b |= s.SelectBit | s.SeqAdjBit
	}
	return b
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

// markFromSource is `meta mark set @nh,96,32`: the 4 bytes of the IPv4
// source address (RFC 791 §3.1) become the packet mark unconverted, so the
// mark read as a host-order integer holds them in memory order (see
// SourceFromMark). nft lists it as `meta mark set ip saddr`, which it cannot
// read back (datatype mismatch); Text prints the raw form.
func markFromSource() term {
	return term{[]expr.Any{
		&expr.Payload{DestRegister: 1, Base: expr.PayloadBaseNetworkHeader, Offset: 12, Len: 4},
		&expr.Meta{Key: expr.MetaKeyMARK, SourceRegister: true, Register: 1},
	}, "meta mark set @nh,96,32"}
}

// SourceFromMark returns the address a tag rule (post-NAT placement) put in
// a packet mark (markbits.SourceFromMark).
func SourceFromMark(mark uint32) netip.Addr { return markbits.SourceFromMark(mark) }

// queueFlags returns the NFQUEUE flags of s: bypass (no daemon listening
// means packets pass untouched) unless closed, fanout when there are
// several queues. NFT_QUEUE_FLAG_* and NFQ_FLAG_* have the same values.
func queueFlags(s Spec, closed bool) uint16 {
	var f uint16
	if !closed {
		f = nfqFlagBypass
	}
	if s.QueueCount > 1 {
		f |= nfqFlagCPUFanout
	}
	return f
}

// queueRange is the first queue and the count of a queue statement of s:
// QueueNum.., or with sel the selected flows' range (Spec.SelectQueues).
func queueRange(s Spec, sel bool) (num, count uint16) {
	if sel {
		return s.SelectQueues()
	}
	return s.QueueNum, s.QueueCount
}

// queueExprs is the queue statement of s, native or compat; sel: a selected
// flow's, to the second range and without bypass.
func queueExprs(s Spec, sel bool) []expr.Any {
	num, count := queueRange(s, sel)
	if s.Mechanism == Native {
		return []expr.Any{&expr.Queue{Num: num, Total: count, Flag: expr.QueueFlag(queueFlags(s, sel))}}
	}
	return []expr.Any{nfqueueTarget(num, count, queueFlags(s, sel))}
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
