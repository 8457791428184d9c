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
		b.WriteString(describeTable(s, f).text())
	}
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

// queueText renders the queue statement as nft lists it for s.Mechanism;
// sel: a selected flow's (queueExprs).
func queueText(s Spec, sel bool) string {
	num, count := queueRange(s, sel)
	nums := fmt.Sprint(num)
	if count > 1 {
		nums += fmt.Sprintf("-%d", int(num)+int(count)-1)
	}
	var fl []string
	f := queueFlags(s, sel)
	if f&nfqFlagBypass != 0 {
		fl = append(fl, "bypass")
	}
	if f&nfqFlagCPUFanout != 0 {
		fl = append(fl, "fanout")
	}
	flags := strings.Join(fl, ",")
	if s.Mechanism == Native {
		// nft src/statement.c queue_stmt_print
		if flags == "" {
			return "queue to " + nums
		}
		return "queue flags " + flags + " to " + nums
	}
	// iptables extensions/libxt_NFQUEUE.c NFQUEUE_xlate_v3
	if flags == "" {
		return "queue num " + nums
	}
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
