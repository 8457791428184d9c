package rules

// What a stop leaves (Close). A selected flow held in user space (an
// http-header flow's edits, a proxy-protocol flow before its handoff)
// cannot go on without the daemon: passed untranslated, its client's bytes
// would reach the server at sequence numbers the edits moved, or carry the
// client's own forged fields. So a stop replaces the ruleset with the
// closing table, which answers every TCP packet of a flow whose ct mark has
// the select bit with a reset (nft reject at forward: the kernel's
// nf_send_reset, whose sequence number is the packet's acknowledgement, so
// its sender accepts it, RFC 9293 §3.10.7.1; the reset is NATed like its
// flow). Each end is reset at its next packet; nothing of the flow passes.
// Flows handed to the kernel had the bit cleared and go on. The next run
// replaces the table (Apply; a run without payload methods keeps the chain
// while such flows are tracked, Spec.CloseBit); `natreveal rules remove`
// deletes it.

import (
	"fmt"
	"sort"

	"github.com/google/nftables"
	"github.com/google/nftables/expr"
	"golang.org/x/sys/unix"
)

// ClosingChain names the closing table's one chain.
const ClosingChain = "closing"

// ClosingTables names the IPv4 tables that hold nothing but the closing
// chain: what a stop left (Close), whatever table name it ran with.
func ClosingTables(c *nftables.Conn) ([]string, error) {
	chains, err := c.ListChainsOfTableFamily(nftables.TableFamilyIPv4)
	if err != nil {
		return nil, fmt.Errorf("rules: listing chains: %w", err)
	}
	n, closing := map[string]int{}, map[string]bool{}
	for _, ch := range chains {
		n[ch.Table.Name]++
		closing[ch.Table.Name] = closing[ch.Table.Name] || ch.Name == ClosingChain
	}
	var out []string
	for name, k := range n {
		if k == 1 && closing[name] {
			out = append(out, name)
		}
	}
	sort.Strings(out)
	return out, nil
}

// closingChain resets the TCP packets of flows whose ct mark has bit.
//
// A SYN is not a packet of such a flow but a new connection on its tuple:
// the resets come from the NAT, so conntrack never saw the flow end, and a
// client that reuses its source port finds the old entry still
// ESTABLISHED (a SYN there changes nothing, nf_conntrack_proto_tcp.c). The
// SYN clears the bit from the entry instead, so that the new connection,
// replies included, passes.
func closingChain(bit uint32) chainDesc {
	c := chainDesc{name: ClosingChain, base: true, forward: true}
	c.add(markBitSet(true, bit), tcpSYN(), setMark(true, ^bit, 0))
	// nft lists the reset with its dependency, the protocol match, as one.
	reset := ipProtocol(unix.IPPROTO_TCP)
	reset.exprs = append(reset.exprs, &expr.Reject{Type: unix.NFT_REJECT_TCP_RST})
	reset.text = "reject with tcp reset"
	c.add(markBitSet(true, bit), reset)
	return c
}

// closeBit is the bit of the flows a stop of s leaves to the closing table:
// those s selects, or those an earlier run selected (CloseBit); 0: none.
func (s Spec) closeBit() uint32 {
	if s.Select {
		return s.SelectBit
	}
	return s.CloseBit
}

// closingTable describes the closing table of s (closeBit not 0).
func closingTable(s Spec) *tableDesc {
	return &tableDesc{table: &nftables.Table{Family: nftables.TableFamilyIPv4, Name: s.table()},
		chains: []chainDesc{closingChain(s.closeBit())}}
}

// Close replaces natreveal's tables (ip and ip6) of s in one batch: with the
// closing table when s selects flows, or keeps resetting an earlier run's
// (CloseBit), else with nothing (Remove). Like Apply, Close flushes c.
func Close(c *nftables.Conn, s Spec) error {
	if s.closeBit() == 0 {
		return Remove(c, s.table())
	}
	for _, t := range tables(s.table()) {
		c.AddTable(t)
		c.DelTable(t)
	}
	d := closingTable(s)
	c.AddTable(d.table)
	for i := range d.chains {
		ch := c.AddChain(d.chains[i].chain(d.table))
		for _, r := range d.chains[i].rules {
			c.AddRule(&nftables.Rule{Table: d.table, Chain: ch, Exprs: r.exprs()})
		}
	}
	if err := c.Flush(); err != nil {
		return fmt.Errorf("rules: close table %s: %w", s.table(), err)
	}
	return nil
}

// ClosingText is the closing table of s as nft lists it ("" when there is
// none: Close removes the tables).
func ClosingText(s Spec) string {
	if s.closeBit() == 0 {
		return ""
	}
	return closingTable(s).text()
}
