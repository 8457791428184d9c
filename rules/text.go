package rules

import (
	"fmt"
	"math/bits"
	"net/netip"
	"strings"
)

// Text renders s as nft text: exactly what `nft list table ip <name>` (nft
// 1.0.6) prints once Apply has installed s, so that the two can be compared
// byte for byte. The queue statement reads `queue num N[-M] bypass[,fanout]`
// for the compat target (nft prints the target through its xtables
// translation) and `queue flags bypass[,fanout] to N[-M]` for the native
// expression (nft's own syntax since 1.0.0); nft reads both forms.
//
// An invalid s renders as a comment that names the problem.
func Text(s Spec) string {
	if err := s.validate(); err != nil {
		return "# natreveal: invalid rules spec: " + strings.ReplaceAll(err.Error(), "\n", "; ") + "\n"
	}
	var b strings.Builder
	steerPrio, rememberPrio := "srcnat - 1", "srcnat + 1"
	inside := "ip saddr @" + insideSet
	if s.Placement == PostNAT {
		steerPrio, rememberPrio = "srcnat + 1", "srcnat + 2"
		inside = "ct original ip saddr @" + insideSet
	}
	queue := queueText(s)

	fmt.Fprintf(&b, "table ip %s {\n", s.table())
	fmt.Fprintf(&b, "\tset %s {\n\t\ttype ipv4_addr\n\t\tflags interval\n", insideSet)
	fmt.Fprintf(&b, "\t\telements = { %s }\n\t}\n", elementsText(s.Inside))

	fmt.Fprintf(&b, "\n\tchain %s {\n", steerChain)
	fmt.Fprintf(&b, "\t\ttype filter hook postrouting priority %s; policy accept;\n", steerPrio)
	if s.SYN {
		fmt.Fprintf(&b, "\t\t%s tcp flags syn / fin,syn,rst,ack %s\n", inside, queue)
	}
	if s.Track {
		fmt.Fprintf(&b, "\t\t%s ip protocol tcp %s\n", maskedMatch("ct mark", s.TrackBit, s.TrackBit, false), queue)
	}
	if s.AllTCP {
		fmt.Fprintf(&b, "\t\t%s ip protocol tcp %s\n", inside, queue)
	}
	b.WriteString("\t}\n")

	if s.Track {
		t, d, both := s.TrackBit, s.DoneBit, s.TrackBit|s.DoneBit
		fmt.Fprintf(&b, "\n\tchain %s {\n", rememberChain)
		fmt.Fprintf(&b, "\t\ttype filter hook postrouting priority %s; policy accept;\n", rememberPrio)
		fmt.Fprintf(&b, "\t\t%s ct mark set ct mark | %s\n", maskedMatch("meta mark", t, t, false), hex32(t))
		fmt.Fprintf(&b, "\t\t%s ct mark set ct mark & %s\n", maskedMatch("meta mark", d, d, false), hex32(^t))
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
// a /32 as a bare address, two per line (src/expression.c calculate_delim
// for TYPE_IPADDR), continuation lines indented by three tabs and five
// spaces.
func elementsText(ps []netip.Prefix) string {
	var b strings.Builder
	for i, p := range sortedPrefixes(ps) {
		switch {
		case i == 0:
		case i%2 == 0:
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
