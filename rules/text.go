package rules

import (
	"fmt"
	"math/bits"
	"net/netip"
	"strings"
)

// Text renders s as nft text: exactly what `nft list table ip <name>` (nft
// 1.0.6) prints once Apply has installed s, followed by what `nft list table
// ip6 <name>` prints when s has IPv6 prefixes, so that the two can be
// compared byte for byte. The queue statement reads `queue num N[-M]
// bypass[,fanout]` for the compat target (nft prints the target through its
// xtables translation) and `queue flags bypass[,fanout] to N[-M]` for the
// native expression (nft's own syntax since 1.0.0); nft reads both forms.
//
// An invalid s renders as a comment that names the problem.
func Text(s Spec) string {
	if err := s.validate(); err != nil {
		return "# natreveal: invalid rules spec: " + strings.ReplaceAll(err.Error(), "\n", "; ") + "\n"
	}
	var b strings.Builder
	for _, f := range s.families() {
		b.WriteString(tableText(s, f))
	}
	return b.String()
}

// tableText is the listing of one table of a valid s.
func tableText(s Spec, f family) string {
	var b strings.Builder
	steerPrio, rememberPrio := "srcnat - 1", "srcnat + 1"
	fam, addrType, proto := "ip", "ipv4_addr", "ip protocol"
	if f.v6 {
		fam, addrType, proto = "ip6", "ipv6_addr", "meta l4proto"
	}
	inside := fam + " saddr @" + insideSet
	if s.Placement == PostNAT {
		steerPrio, rememberPrio = "srcnat + 1", "srcnat + 2"
		inside = "ct original ip saddr @" + insideSet
	}
	queue := queueText(s)
	trackMatch := maskedMatch("ct mark", s.TrackBit, s.TrackBit, false)
	newUDP := proto + " udp ct state new " + maskedMatch("ct mark", s.TrackBit|s.DoneBit, 0, false)

	fmt.Fprintf(&b, "table %s %s {\n", fam, s.table())
	if f.track {
		// nft lists objects before sets, in the order they were added.
		fmt.Fprintf(&b, "\tcounter %s {\n\t\tpackets 0 bytes 0\n\t}\n\n", CounterTrackDone)
		if s.TrackMSS {
			fmt.Fprintf(&b, "\tcounter %s {\n\t\tpackets 0 bytes 0\n\t}\n\n", CounterMSSLowered)
		}
	}
	if f.sel && s.SeqAdjHelper != "" {
		// nft lists objects before sets.
		fmt.Fprintf(&b, "\tct helper %s {\n\t\ttype %q protocol tcp\n\t\tl3proto ip\n\t}\n\n", SeqAdjObject, s.SeqAdjHelper)
	}
	fmt.Fprintf(&b, "\tset %s {\n\t\ttype %s\n\t\tflags interval\n", insideSet, addrType)
	fmt.Fprintf(&b, "\t\telements = { %s }\n\t}\n", elementsText(f.inside))
	ipidMap := s.IPIDMap != nil && !f.v6
	if ipidMap {
		b.WriteString(ipidMapText(s.IPIDMap))
	}

	if s.Placement == PostNAT {
		tag := "meta mark 0x00000000 ip saddr @" + insideSet
		set := "meta mark set @nh,96,32"
		fmt.Fprintf(&b, "\n\tchain %s {\n", tagChain)
		b.WriteString("\t\ttype filter hook postrouting priority srcnat - 1; policy accept;\n")
		if f.udp {
			fmt.Fprintf(&b, "\t\t%s %s %s\n", tag, newUDP, set)
			fmt.Fprintf(&b, "\t\t%s %s ip protocol udp %s\n", tag, trackMatch, set)
		}
		if f.allTCP {
			fmt.Fprintf(&b, "\t\t%s ip protocol tcp %s\n", tag, set)
		} else {
			if f.syn {
				fmt.Fprintf(&b, "\t\t%s tcp flags syn / fin,syn,rst,ack %s\n", tag, set)
			}
			if f.track {
				bound := ""
				if s.TrackPackets > 0 {
					bound = fmt.Sprintf(" ct original packets <= %d", s.TrackPackets)
				}
				fmt.Fprintf(&b, "\t\t%s %s tcp flags ! rst%s %s\n", tag, trackMatch, bound, set)
			}
		}
		b.WriteString("\t}\n")
	}

	if f.track && s.TrackMSS {
		b.WriteString(mssChainText(f.minMSS()))
	}

	fmt.Fprintf(&b, "\n\tchain %s {\n", steerChain)
	fmt.Fprintf(&b, "\t\ttype filter hook postrouting priority %s; policy accept;\n", steerPrio)
	synFrom := inside
	if ipidMap {
		fmt.Fprintf(&b, "\t\t%s\n", ipidKernelRuleText)
		if s.IPIDMap.SkipKnown {
			synFrom += " ip saddr != @" + HostIDMap
		}
	}
	if f.syn {
		fmt.Fprintf(&b, "\t\t%s tcp flags syn / fin,syn,rst,ack %s\n", synFrom, queue)
	}
	if f.track {
		done := fmt.Sprintf("counter name %q ct mark set ct mark & %s | %s", CounterTrackDone, hex32(^s.TrackBit), hex32(s.DoneBit)) // nft shows the mask with DONE set
		if s.TrackMSS {
			fmt.Fprintf(&b, "\t\t%s ct direction reply tcp flags syn,ack / syn,ack jump %s\n", trackMatch, mssChain)
		}
		fmt.Fprintf(&b, "\t\t%s ct direction reply tcp flags != syn,ack / syn,ack %s\n", trackMatch, done)
		fmt.Fprintf(&b, "\t\t%s ct direction original tcp flags & rst == rst %s\n", trackMatch, done)
		if s.TrackPackets > 0 {
			fmt.Fprintf(&b, "\t\t%s ct direction original ct original packets > %d %s\n", trackMatch, s.TrackPackets, done)
		}
		phase := ""
		if s.Placement == PreNAT {
			phase = fmt.Sprintf("meta mark set meta mark | %s ", hex32(s.TrackBit))
		}
		fmt.Fprintf(&b, "\t\t%s ct direction original %s tcp %s%s\n", trackMatch, proto, phase, queue)
	}
	if f.sel {
		if s.SeqAdjBit != 0 {
			fmt.Fprintf(&b, "\t\t%s ct direction reply tcp flags ! fin,syn,rst accept\n", maskedMatch("ct mark", s.SeqAdjBit, s.SeqAdjBit, false))
		}
		fmt.Fprintf(&b, "\t\t%s %s tcp %s\n", maskedMatch("ct mark", s.SelectBit, s.SelectBit, false), proto, queue)
	}
	if f.allTCP {
		fmt.Fprintf(&b, "\t\t%s %s tcp %s\n", inside, proto, queue)
	}
	if f.udp {
		fmt.Fprintf(&b, "\t\t%s %s %s\n", inside, newUDP, queue)
		fmt.Fprintf(&b, "\t\t%s %s udp %s\n", trackMatch, proto, queue)
	}
	b.WriteString("\t}\n")

	if f.tracks() || f.sel {
		t, d, both := s.TrackBit, s.DoneBit, f.bits(s)
		fmt.Fprintf(&b, "\n\tchain %s {\n", rememberChain)
		fmt.Fprintf(&b, "\t\ttype filter hook postrouting priority %s; policy accept;\n", rememberPrio)
		verdictOnly := ""
		if s.Placement == PostNAT {
			verdictOnly = maskedMatch("meta mark", ^both, 0, false) + " "
		}
		if f.tracks() {
			fmt.Fprintf(&b, "\t\t%s%s ct state new ct mark set ct mark | %s\n", verdictOnly, maskedMatch("meta mark", t, t, false), hex32(t))
			fmt.Fprintf(&b, "\t\t%s%s ct mark set ct mark & %s | %s\n", verdictOnly, maskedMatch("meta mark", d, d, false), hex32(^t), hex32(d)) // nft shows the mask with DONE set: (x & ^t) | d
		}
		if f.sel {
			sb := s.SelectBit
			fmt.Fprintf(&b, "\t\t%s ct mark set ct mark | %s\n", maskedMatch("meta mark", sb, sb, false), hex32(sb))
			if s.SeqAdjHelper != "" {
				fmt.Fprintf(&b, "\t\t%s ct helper set %q\n", maskedMatch("meta mark", sb, sb, false), SeqAdjObject)
			}
		}
		fmt.Fprintf(&b, "\t\t%s meta mark set meta mark & %s\n", maskedMatch("meta mark", both, 0, true), hex32(^both))
		b.WriteString("\t}\n")
	}
	b.WriteString("}\n")
	return b.String()
}

// hex32 prints a mark as nft does.
func hex32(v uint32) string { return fmt.Sprintf("0x%08x", v) }

// maskedMatch renders `key & mask == val` (or !=) as nft lists it: when mask
// is a prefix mask (ones from the top bit down, like 0x80000000 or
// 0xc0000000) nft prints it in prefix notation, `key val/len` and
// `key != val/len`.
func maskedMatch(key string, mask, val uint32, neq bool) string {
	if n := bits.LeadingZeros32(^mask); n > 0 && mask == ^uint32(0)<<(32-n) {
		op := ""
		if neq {
			op = "!= "
		}
		return fmt.Sprintf("%s %s%s/%d", key, op, hex32(val), n)
	}
	op := "=="
	if neq {
		op = "!="
	}
	return fmt.Sprintf("%s & %s %s %s", key, hex32(mask), op, hex32(val))
}

// queueText renders the queue statement as nft lists it for s.Mechanism.
func queueText(s Spec) string {
	nums := fmt.Sprint(s.QueueNum)
	if s.QueueCount > 1 {
		nums += fmt.Sprintf("-%d", int(s.QueueNum)+int(s.QueueCount)-1)
	}
	flags := "bypass"
	if queueFlags(s)&nfqFlagCPUFanout != 0 {
		flags += ",fanout"
	}
	if s.Mechanism == Native {
		// nft src/statement.c queue_stmt_print
		return "queue flags " + flags + " to " + nums
	}
	// iptables extensions/libxt_NFQUEUE.c NFQUEUE_xlate_v3
	return "queue num " + nums + " " + flags
}

// elementsText renders the elements of the inside set as nft does: sorted,
// a /32 (/128) as a bare address, two IPv4 ones per line and one IPv6 one
// (src/expression.c calculate_delim for TYPE_IPADDR, TYPE_IP6ADDR),
// continuation lines indented by three tabs and five spaces.
func elementsText(ps []netip.Prefix) string {
	var b strings.Builder
	perLine := 2
	if len(ps) > 0 && !ps[0].Addr().Is4() {
		perLine = 1
	}
	for i, p := range sortedPrefixes(ps) {
		switch {
		case i == 0:
		case i%perLine == 0:
			b.WriteString(",\n\t\t\t     ")
		default:
			b.WriteString(", ")
		}
		if p.IsSingleIP() {
			b.WriteString(p.Addr().String())
		} else {
			b.WriteString(p.String())
		}
	}
	return b.String()
}

// mssChainText is the mss chain (mss.go). nft lists the masks in decimal
// and the xor operand as `0x.. [invalid type]`, which it cannot read back;
// Text prints the operand alone.
func mssChainText(min uint16) string {
	var b strings.Builder
	fmt.Fprintf(&b, "\n\tchain %s {\n", mssChain)
	fmt.Fprintf(&b, "\t\ttcp option maxseg size <= %d return\n", min)
	count := fmt.Sprintf("counter name %q", CounterMSSLowered)
	fmt.Fprintf(&b, "\t\ttcp option maxseg size <= %d %s tcp option maxseg size set %d return\n", min+MSSDelta, count, min)
	for _, st := range mssSteps() {
		fmt.Fprintf(&b, "\t\ttcp option maxseg size & %d == %d %s tcp option maxseg size set tcp option maxseg size ^ %#x return\n", st.mask, st.bit, count, st.mask)
	}
	b.WriteString("\t}\n")
	return b.String()
}
