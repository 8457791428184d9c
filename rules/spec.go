// Package rules turns a Spec into natreveal's nftables ruleset: a table of
// its own (family ip, and family ip6 of the same name for IPv6 inside
// prefixes) holding a set of inside prefixes, a "steer" chain that
// sends selected TCP packets to NFQUEUE and, when flows are tracked, a
// "remember" chain that copies the daemon's verdict mark into the conntrack
// mark.
//
// The ruleset is built as google/nftables objects (Build), installed in one
// netlink batch that atomically replaces an older copy (Apply), deleted again
// (Remove), and rendered as the text `nft list table ip <name>` (and `ip6`)
// prints for it (Text). Probe finds out how this kernel can queue packets: with the native
// nft queue expression (nft_queue) or with the xtables NFQUEUE target through
// nft_compat.
package rules

import (
	"errors"
	"fmt"
	"math/bits"
	"net/netip"
	"regexp"
	"slices"
	"time"
)

// DefaultTable is the table name used when Spec.Table is empty.
const DefaultTable = "natreveal"

// probeTable is the throwaway table Probe loads (and deletes in the same
// batch). Spec.Table may not use it.
const probeTable = "natreveal_probe"

// Mechanism is how packets reach the queue.
type Mechanism int

const (
	// Native is the nft queue expression (CONFIG_NFT_QUEUE, nft_queue.ko).
	Native Mechanism = iota + 1
	// Compat is the xtables NFQUEUE target (revision 3) run by nft_compat.
	Compat
)

func (m Mechanism) String() string {
	switch m {
	case Native:
		return "native nft queue"
	case Compat:
		return "xtables NFQUEUE target (nft_compat)"
	}
	return fmt.Sprintf("Mechanism(%d)", int(m))
}

// Placement is where, relative to the kernel's source NAT, packets are queued.
type Placement int

const (
	// PreNAT queues before masquerading (postrouting, priority srcnat - 1):
	// the packet still carries the inside source address.
	PreNAT Placement = iota + 1
	// PostNAT queues after masquerading (postrouting, priority srcnat + 1):
	// inside hosts are recognised by the conntrack original source address.
	PostNAT
)

func (p Placement) String() string {
	switch p {
	case PreNAT:
		return "pre-nat"
	case PostNAT:
		return "post-nat"
	}
	return fmt.Sprintf("Placement(%d)", int(p))
}

// Spec describes the ruleset.
type Spec struct {
	Table      string         // default "natreveal"
	Inside     []netip.Prefix // IPv4 and IPv6 prefixes of the inside hosts (required)
	QueueNum   uint16
	QueueCount uint16 // >=1; fan-out over QueueNum..QueueNum+QueueCount-1 (and SelectQueues)
	Mechanism  Mechanism
	Placement  Placement
	SYN        bool // queue TCP SYNs (syn set, ack/rst/fin clear) from inside hosts
	// Track follows TCP flows whose ct mark has TrackBit (the SYN's verdict
	// set it) in the kernel, per RFC 7974 §4.2: their client->server
	// segments are queued until the server shows the connection established
	// (its first segment other than a SYN-ACK), the client resets, or
	// TrackPackets is reached; then the steer chain sets DoneBit in the ct
	// mark. The server's segments are never queued: with TrackMSS the
	// SYN-ACK's MSS is lowered in the kernel (chain mss). Pre-NAT, the
	// queued segments carry TrackBit in their packet mark, so the daemon
	// tells them from segments that AllTCP or Select queue.
	Track bool
	// TrackMSS lowers the MSS option of tracked flows' SYN-ACKs by
	// MSSDelta, not below the family's minimum (RFC 9293 §3.7.1: 536 for
	// IPv4; RFC 8200 §5: 1220 for IPv6), so that client segments have room
	// for the HOST_ID option.
	TrackMSS bool
	// TrackPackets, when not 0, ends tracking once the flow's original
	// direction has seen more packets (the SYN included): `ct original
	// packets`, which counts only with net.netfilter.nf_conntrack_acct=1.
	TrackPackets uint64
	AllTCP       bool // queue every TCP packet from inside hosts (original direction)
	// UDP queues the first packet of each new UDP flow from inside hosts
	// (ct state new, no TrackBit or DoneBit in the ct mark yet) and, while
	// the ct mark has TrackBit, the flow's later packets (both directions).
	UDP bool
	// SYN6, Track6 and UDP6 are SYN, Track and UDP for the IPv6 prefixes of
	// Inside (table ip6 <name>; matches use `ip6 saddr` and `meta l4proto`).
	// The IPv6 table has no AllTCP and no post-NAT placement: its 128-bit
	// source does not fit the 32-bit mark the tag chain uses.
	SYN6, Track6, UDP6 bool
	// TrackBit and DoneBit are single-bit masks, distinct and nonzero when
	// Track is set. The daemon sets TrackBit in a verdict's packet mark to
	// track the rest of a flow, DoneBit to stop tracking it; the remember
	// chain copies that into the ct mark and clears both from the packet mark.
	TrackBit, DoneBit uint32
	// Select queues every TCP packet (both directions) of IPv4 flows whose
	// ct mark has SelectBit: flows the daemon selected on their SYN for
	// payload insertion (http-header, proxy-protocol). The remember chain
	// copies SelectBit from a verdict's mark into the ct mark.
	Select    bool
	SelectBit uint32
	// CloseBit, without Select, is the select bit of flows an earlier run
	// selected that are still open: the closing chain resets their packets
	// (close.go), since this ruleset follows none of them. 0: none.
	CloseBit uint32
	// SeqAdjHelper, with Select, is a conntrack helper type (a kernel one
	// such as "ftp") that the remember chain assigns to selected flows
	// through the ct helper object SeqAdjObject: only so that their
	// conntrack entries get the seqadj extension, which the daemon's
	// handoff to the kernel's sequence adjustment needs (stream/handoff.go).
	// The daemon removes the helper again on the flow's SYN-ACK, before it
	// has looked at any data.
	SeqAdjHelper string
	// SeqAdjBit, with SeqAdjHelper, lets the daemon stop queueing a
	// selected flow's server segments while the kernel's sequence
	// adjustment maps their acknowledgements (stream/kernelack.go): the steer
	// chain accepts reply-direction segments without FIN, SYN or RST of
	// flows whose ct mark has it, and the client's segments without payload
	// either (pureack.go). The daemon sets and clears it over
	// ctnetlink. 0: every segment of a selected flow is queued.
	SeqAdjBit uint32
	// UploadSize, with SeqAdjBit, adds the uploads set (uploads.go) of at
	// most that many elements: the pureack chain also accepts the client
	// segments of a request body the daemon put there (stream/upload.go).
	// Its elements time out after UploadTimeout. 0: no uploads set.
	UploadSize    uint32
	UploadTimeout time.Duration
	// IPIDMap, when set, adds the in-kernel ip-id fast path to the ip table
	// (ipidmap.go).
	IPIDMap *IPIDMap
}

// tableNameRE keeps table names to plain nft identifiers, so that Text can
// print them unquoted and nft can read them back.
var tableNameRE = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_-]*$`)

// helperNameRE: conntrack helper names as the kernel's are (NF_CT_HELPER_NAME_LEN 16).
var helperNameRE = regexp.MustCompile(`^[a-z0-9][a-z0-9-]{0,14}$`)

// maxTableName is NFT_TABLE_MAXNAMELEN (256) minus the terminating NUL.
const maxTableName = 255

// table returns the table name with the default applied.
func (s Spec) table() string {
	if s.Table == "" {
		return DefaultTable
	}
	return s.Table
}

// Validate reports every problem of s (joined), or nil.
func (s Spec) Validate() error {
	if err := s.validate(); err != nil {
		return fmt.Errorf("rules: invalid spec: %w", err)
	}
	return nil
}

// problems gathers what validate finds.
type problems []error

// add appends one problem. Not inlined: validate calls it some thirty
// times, and the copies cost the router build (TestRouterBinarySize).
//
//go:noinline
func (p *problems) add(format string, a ...any) { *p = append(*p, fmt.Errorf(format, a...)) }

// CheckTableName reports why name cannot name natreveal's nftables
// tables, or nil: Validate's rule, exported so that a configuration is
// refused when it is loaded.
func CheckTableName(name string) error {
	switch {
	case len(name) > maxTableName:
		return fmt.Errorf("table name is %d bytes long, at most %d allowed", len(name), maxTableName)
	case !tableNameRE.MatchString(name):
		return fmt.Errorf("table name %q: use letters, digits, '_' and '-', starting with a letter or '_'", name)
	case name == probeTable:
		return fmt.Errorf("table name %q is reserved (natreveal's kernel probe loads it)", name)
	}
	return nil
}

// Overlaps returns the pairs of neighbours, in address order, among the
// valid prefixes ps that overlap (a prefix listed twice overlaps itself):
// Validate refuses any, and it finds one whenever two prefixes overlap.
func Overlaps(ps []netip.Prefix) [][2]netip.Prefix {
	var out [][2]netip.Prefix
	sorted := sortedPrefixes(ps)
	for i := 1; i < len(sorted); i++ {
		if sorted[i-1].Overlaps(sorted[i]) {
			out = append(out, [2]netip.Prefix{sorted[i-1], sorted[i]})
		}
	}
	return out
}

func (s Spec) validate() error {
	var errs problems
	add := errs.add

	if err := CheckTableName(s.table()); err != nil {
		errs = append(errs, err)
	}

	if len(s.Inside) == 0 {
		add("no inside prefixes")
	}
	valid := true
	for _, p := range s.Inside {
		switch {
		case !p.IsValid():
			add("inside prefix %v is not valid", p)
		case p.Addr().Is4In6() || p.Addr().Zone() != "":
			add("inside prefix %v: write IPv4 prefixes as IPv4, IPv6 ones without a zone", p)
		case p.Masked() != p:
			add("inside prefix %v has host bits set (did you mean %v?)", p, p.Masked())
		default:
			continue
		}
		valid = false
	}
	if valid {
		for _, o := range Overlaps(s.Inside) {
			add("inside prefixes %v and %v overlap", o[0], o[1])
		}
	}

	if s.QueueCount == 0 {
		add("queue count is 0, need at least 1")
	} else if last := int(s.QueueNum) + int(s.QueueCount) - 1; last > 0xffff {
		add("queues %d..%d go beyond 65535", s.QueueNum, last)
	} else if last += int(s.QueueCount); s.Select && last > 0xffff {
		add("queues %d..%d (the second range, for selected flows) go beyond 65535", s.QueueNum, last)
	}

	if s.Mechanism != Native && s.Mechanism != Compat {
		add("unknown queue mechanism %v", s.Mechanism)
	}
	if s.Placement != PreNAT && s.Placement != PostNAT {
		add("unknown placement %v", s.Placement)
	}

	for _, f := range s.families() {
		switch {
		case !f.v6 && !s.SYN && !s.Track && !s.AllTCP && !s.UDP:
			add("nothing to queue: set SYN, Track, AllTCP or UDP")
		case !f.v6 && s.Select && !s.SYN:
			add("select needs SYN: the SYN's verdict selects a flow")
		case f.v6 && !s.SYN6 && !s.Track6 && !s.UDP6:
			add("nothing to queue for the IPv6 prefixes: set SYN6, Track6 or UDP6")
		case f.v6 && s.Placement == PostNAT:
			add("post-nat placement carries the inside source in the 32-bit mark: no IPv6 prefixes (%v)", f.inside[0])
		}
	}
	if s.tracks() {
		if bits.OnesCount32(s.TrackBit) != 1 {
			add("track bit %#08x is not a single bit", s.TrackBit)
		}
		if bits.OnesCount32(s.DoneBit) != 1 {
			add("done bit %#08x is not a single bit", s.DoneBit)
		}
		if s.TrackBit != 0 && s.TrackBit == s.DoneBit {
			add("track bit and done bit are both %#08x", s.TrackBit)
		}
	}
	switch {
	case s.CloseBit != 0 && s.Select:
		add("close bit %#08x with select: a ruleset that selects resets nothing", s.CloseBit)
	case s.CloseBit != 0 && bits.OnesCount32(s.CloseBit) != 1:
		add("close bit %#08x is not a single bit", s.CloseBit)
	case s.CloseBit != 0 && s.tracks() && (s.CloseBit == s.TrackBit || s.CloseBit == s.DoneBit):
		add("close bit %#08x is also the track or done bit", s.CloseBit)
	case s.CloseBit != 0 && !s.HasIPv4():
		add("close bit %#08x needs an IPv4 inside prefix (the closing chain is in table ip)", s.CloseBit)
	}
	if s.Select {
		switch {
		case bits.OnesCount32(s.SelectBit) != 1:
			add("select bit %#08x is not a single bit", s.SelectBit)
		case s.tracks() && (s.SelectBit == s.TrackBit || s.SelectBit == s.DoneBit):
			add("select bit %#08x is also the track or done bit", s.SelectBit)
		case s.Placement == PostNAT:
			add("select (payload insertion) needs pre-nat placement")
		}
	}

	if s.SeqAdjHelper != "" {
		switch {
		case !s.Select:
			add("seqadj helper %q needs select", s.SeqAdjHelper)
		case !helperNameRE.MatchString(s.SeqAdjHelper):
			add("seqadj helper %q: use lowercase letters, digits and '-'", s.SeqAdjHelper)
		}
	}
	if s.SeqAdjBit != 0 {
		switch {
		case s.SeqAdjHelper == "":
			add("seqadj bit %#08x needs a seqadj helper", s.SeqAdjBit)
		case bits.OnesCount32(s.SeqAdjBit) != 1:
			add("seqadj bit %#08x is not a single bit", s.SeqAdjBit)
		case s.SeqAdjBit == s.SelectBit || (s.tracks() && (s.SeqAdjBit == s.TrackBit || s.SeqAdjBit == s.DoneBit)):
			add("seqadj bit %#08x is also the select, track or done bit", s.SeqAdjBit)
		}
	}

	errs = append(errs, s.validateUploads()...)
	if s.IPIDMap != nil {
		errs = append(errs, s.IPIDMap.validate(s)...)
	}

	return errors.Join(errs...)
}

// SelectQueues is the range of queues for selected flows' packets, count 0
// without Select: the QueueCount queues right after the first range, with
// the same CPU fanout. The daemon binds them without NFQA_CFG_F_FAIL_OPEN
// and serves them fail closed (queue.Config.Closed), since an untranslated
// segment of a selected flow corrupts its stream; the kernel's fail-open is
// a property of a queue, not of a rule.
func (s Spec) SelectQueues() (num, count uint16) {
	if !s.Select {
		return 0, 0
	}
	return s.QueueNum + s.QueueCount, s.QueueCount
}

// HasIPv4 reports whether Inside holds an IPv4 prefix (table ip).
func (s Spec) HasIPv4() bool {
	return slices.ContainsFunc(s.Inside, func(p netip.Prefix) bool { return p.Addr().Is4() })
}

// tracks reports whether the ruleset follows flows through the ct mark
// (TCP after the SYN, or UDP flows), so it needs TrackBit, DoneBit and the
// remember chain.
func (s Spec) tracks() bool {
	for _, f := range s.families() {
		if f.tracks() {
			return true
		}
	}
	return false
}

// sortedPrefixes returns a sorted copy of ps (by address, then by length).
func sortedPrefixes(ps []netip.Prefix) []netip.Prefix {
	out := slices.Clone(ps)
	slices.SortFunc(out, func(a, b netip.Prefix) int {
		if c := a.Addr().Compare(b.Addr()); c != 0 {
			return c
		}
		return a.Bits() - b.Bits()
	})
	return out
}
