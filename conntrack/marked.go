package conntrack

import (
	"fmt"
	"net/netip"

	ct "github.com/ti-mo/conntrack"
	"github.com/ti-mo/netfilter"
)

// Tuple is a flow's original direction: its source and destination before
// NAT.
type Tuple struct{ Src, Dst netip.AddrPort }

// MarkedTCP returns the original tuples of the IPv4 TCP flows of the current
// network namespace whose ct mark has every bit of bits: one ctnetlink dump
// the kernel filters (CTA_MARK, CTA_MARK_MASK; Linux 4.20+).
func MarkedTCP(bits uint32) (map[Tuple]struct{}, error) {
	c, err := ct.Dial(nil)
	if err != nil {
		return nil, fmt.Errorf("conntrack: dump: %w", err)
	}
	defer c.Close()
	flows, err := c.DumpFilter(ct.NewFilter().Family(netfilter.ProtoIPv4).Mark(bits).MarkMask(bits), nil)
	if err != nil {
		return nil, fmt.Errorf("conntrack: dump flows with mark %#x: %w", bits, err)
	}
	set := make(map[Tuple]struct{}, len(flows))
	for _, f := range flows {
		o := f.TupleOrig
		if o.Proto.Protocol != 6 {
			continue
		}
		set[Tuple{netip.AddrPortFrom(o.IP.SourceAddress, o.Proto.SourcePort),
			netip.AddrPortFrom(o.IP.DestinationAddress, o.Proto.DestinationPort)}] = struct{}{}
	}
	return set, nil
}
