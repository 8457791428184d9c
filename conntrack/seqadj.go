package conntrack

// Handing a selected flow to conntrack's sequence adjustment
// (net/netfilter/nf_conntrack_seqadj.c): once a flow's translation is one
// constant offset, the kernel shifts the client's sequence numbers and the
// server's acknowledgements and SACK blocks itself, in nf_confirm
// (net/netfilter/nf_conntrack_proto.c), for flows with IPS_SEQ_ADJUST set.
//
// ctnetlink sets the adjustment on an existing flow (ctnetlink_change_seq_adj,
// CTA_SEQ_ADJ_ORIG in an IPCTNL_MSG_CT_NEW without NLM_F_CREATE), but only
// when the flow has the seqadj extension, and answers success without one.
// A flow gets the extension when a conntrack helper is assigned to it
// (nf_nat_setup_info, and nft_ct_helper_obj_eval for flows NAT already
// bound: the ruleset's `ct helper set`); the helper itself is removed at once
// (CTA_HELP with an empty name), so it never looks at the flow's data.

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"

	"github.com/mdlayher/netlink"
	ct "github.com/ti-mo/conntrack"
)

// ctnetlink attributes (include/uapi/linux/netfilter/nfnetlink_conntrack.h).
const (
	ctaHelp      = 5
	ctaMark      = 8
	ctaSeqAdjOrg = 15 // CTA_SEQ_ADJ_ORIG
	ctaMarkMask  = 21
	ctaHelpName  = 1 // CTA_HELP_NAME

	ctaSeqAdjCorrectionPos = 1 // CTA_SEQADJ_CORRECTION_POS
	ctaSeqAdjOffsetBefore  = 2
	ctaSeqAdjOffsetAfter   = 3

	ipsSeqAdjust = 1 << 6 // IPS_SEQ_ADJUST (IPS_SEQ_ADJUST_BIT 6)
)

// ErrNoSeqAdj: the flow has no seqadj extension, so the kernel ignored the
// adjustment (no helper was assigned to it before it was confirmed).
var ErrNoSeqAdj = errors.New("conntrack: flow has no sequence adjustment extension")

// origTuple is the original tuple of the TCP flow from src to dst (IPv4).
func origTuple(src, dst netip.AddrPort) ct.Tuple {
	return ct.Tuple{
		IP:    ct.IPTuple{SourceAddress: src.Addr(), DestinationAddress: dst.Addr()},
		Proto: ct.ProtoTuple{Protocol: 6, SourcePort: src.Port(), DestinationPort: dst.Port()},
	}
}

// dropHelperAttrs: the flow's original tuple and CTA_HELP {CTA_HELP_NAME ""}.
func dropHelperAttrs(src, dst netip.AddrPort) ([]byte, error) {
	ae := netlink.NewAttributeEncoder()
	encodeTuple(ae, ctaTupleOrig, origTuple(src, dst))
	ae.Nested(ctaHelp, func(ae *netlink.AttributeEncoder) error {
		ae.String(ctaHelpName, "")
		return nil
	})
	return ae.Encode()
}

// seqAdjAttrs: the original tuple and CTA_SEQ_ADJ_ORIG with offset delta
// before and after pos (a constant offset: the correction position does not
// matter, so sequence numbers wrapping past 2^31 of it change nothing).
func seqAdjAttrs(src, dst netip.AddrPort, pos uint32, delta int32) ([]byte, error) {
	ae := netlink.NewAttributeEncoder()
	encodeTuple(ae, ctaTupleOrig, origTuple(src, dst))
	ae.Nested(ctaSeqAdjOrg, func(ae *netlink.AttributeEncoder) error {
		ae.Bytes(ctaSeqAdjCorrectionPos, binary.BigEndian.AppendUint32(nil, pos))
		ae.Bytes(ctaSeqAdjOffsetBefore, binary.BigEndian.AppendUint32(nil, uint32(delta)))
		ae.Bytes(ctaSeqAdjOffsetAfter, binary.BigEndian.AppendUint32(nil, uint32(delta)))
		return nil
	})
	return ae.Encode()
}

// markAttrs: the original tuple, CTA_MARK value and CTA_MARK_MASK bits
// (ctnetlink_change_mark: mark = mark & ^MASK ^ MARK): value 0 clears the
// bits, value bits sets them.
func markAttrs(src, dst netip.AddrPort, value, bits uint32) ([]byte, error) {
	ae := netlink.NewAttributeEncoder()
	encodeTuple(ae, ctaTupleOrig, origTuple(src, dst))
	ae.Bytes(ctaMark, binary.BigEndian.AppendUint32(nil, value))
	ae.Bytes(ctaMarkMask, binary.BigEndian.AppendUint32(nil, bits))
	return ae.Encode()
}

// update sends an IPCTNL_MSG_CT_NEW update of an existing flow.
func (c *Conn) update(what string, attrs []byte, err error) error {
	if err != nil {
		return fmt.Errorf("conntrack: %s: encode: %w", what, err)
	}
	if _, err := c.request(ipctnlMsgCtNew, attrs); err != nil {
		return fmt.Errorf("conntrack: %s: %w", what, err)
	}
	return nil
}

// DropHelper removes the conntrack helper of the TCP flow from src to dst
// (its original tuple, IPv4); the seqadj extension the helper brought stays.
func (c *Conn) DropHelper(src, dst netip.AddrPort) error {
	a, err := dropHelperAttrs(src, dst)
	return c.update("drop helper", a, err)
}

// SetSeqAdj makes the kernel add delta to the sequence numbers of the flow's
// client->server segments and subtract it from the server's
// acknowledgements and SACK blocks, from now on. It reads the flow back:
// ErrNoSeqAdj when the kernel did not take the adjustment. When the check
// itself fails, the adjustment is set back to prev, the offset it had
// (best effort).
func (c *Conn) SetSeqAdj(src, dst netip.AddrPort, pos uint32, delta, prev int32) error {
	a, err := seqAdjAttrs(src, dst, pos, delta)
	if err := c.update("set seqadj", a, err); err != nil {
		return err
	}
	f, err := c.Get(ct.Flow{TupleOrig: origTuple(src, dst)})
	if err != nil {
		if a, err := seqAdjAttrs(src, dst, pos, prev); err == nil {
			c.request(ipctnlMsgCtNew, a)
		}
		return fmt.Errorf("conntrack: set seqadj: read back: %w", err)
	}
	if uint32(f.Status)&ipsSeqAdjust == 0 || f.SeqAdjOrig.OffsetAfter != uint32(delta) || f.SeqAdjOrig.OffsetBefore != uint32(delta) {
		return ErrNoSeqAdj
	}
	return nil
}

// ClearMark clears bits in the flow's ct mark.
func (c *Conn) ClearMark(src, dst netip.AddrPort, bits uint32) error {
	a, err := markAttrs(src, dst, 0, bits)
	return c.update("clear mark", a, err)
}

// SetMark sets bits in the flow's ct mark.
func (c *Conn) SetMark(src, dst netip.AddrPort, bits uint32) error {
	a, err := markAttrs(src, dst, bits, bits)
	return c.update("set mark", a, err)
}
