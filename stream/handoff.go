package stream

// Handing a proxy-protocol flow to the kernel. Once the PROXY header is in
// and acknowledged, the flow's translation is one constant offset D: client
// sequence numbers +D, the server's acknowledgements and SACK blocks -D.
// conntrack's sequence adjustment (nf_conntrack_seqadj.c, applied in
// nf_confirm at the end of postrouting, after the queue) does exactly that,
// so the daemon sets it over ctnetlink (conntrack/seqadj.go) and clears the
// select bit in the ct mark: the steer chain stops queueing the flow.
//
// The ruleset's remember chain assigns a conntrack helper to every selected
// flow (rules.Spec.SeqAdjHelper), which gives its conntrack entry the seqadj
// extension; the SYN-ACK's handling removes the helper again, before the
// helper ever sees a byte of data (its help function only looks at
// established flows).
//
// Order matters, because a packet queued before the switch and re-injected
// after it would be translated twice:
//   - the switch happens only when no packet of the flow that was translated
//     here is still waiting for its verdict (stream.inflight is 0; every
//     verdict re-injects its packet through nf_confirm synchronously);
//   - the adjustment is set before the mark is cleared; the flow's state is
//     dropped with the switch, so packets still in the queue then (or queued
//     until the mark is cleared) pass unchanged as packets of a flow with a
//     tombstone (select-unknown, orphan.go) and the kernel translates them.
//
// When the kernel does not take the adjustment (no extension: an older
// kernel without the seqadj fix of nft_ct_helper_obj_eval), nothing has
// changed and the flow stays in user space.

import (
	"net/netip"

	"github.com/natreveal/natreveal/conntrack"
	"github.com/natreveal/natreveal/queue"
)

// SeqAdjuster sets conntrack state of selected flows (conntrack.Conn).
type SeqAdjuster interface {
	DropHelper(src, dst netip.AddrPort) error
	SetSeqAdj(src, dst netip.AddrPort, pos uint32, delta, prev int32) error
	ClearMark(src, dst netip.AddrPort, bits uint32) error
	SetMark(src, dst netip.AddrPort, bits uint32) error
}

var _ SeqAdjuster = (*conntrack.Conn)(nil)

// SetSeqAdj makes e hand proxy-protocol flows to the kernel through a, and
// the server segments of http-header flows when Config.SeqAdjBit is set
// (kernelack.go). Pre-NAT placement only: the flow's original tuple is what
// the packets show. The ruleset must assign the helper
// (rules.Spec.SeqAdjHelper).
func (e *Engine) SetSeqAdj(a SeqAdjuster) { e.seqadj = a }

// handsOff reports whether s may go to the kernel at all.
func (e *Engine) handsOff(s *stream) bool {
	_, proxy := s.p.(*proxyParser)
	return e.seqadj != nil && proxy && !s.noHandoff
}

// constant returns the flow's offset D when its translation is D for every
// client byte a segment can still bring: the parser adds no more edits, and
// the server has acknowledged the output up to the end of the last edit, so
// a client retransmission of anything before it maps to bytes the server
// already has, whatever the offset (it discards them).
func (s *stream) constant() (int64, bool) {
	pp, ok := s.p.(*proxyParser)
	if !ok || !pp.done || pp.inV1 || s.reset {
		return 0, false
	}
	return s.ackedDelta()
}

// ackedDelta returns the flow's offset D when the server has acknowledged
// the output up to the end of the last edit: every acknowledgement and SACK
// block it sends from now on, until a new edit reaches it, maps back by D.
func (s *stream) ackedDelta() (int64, bool) {
	end, d := s.foldEnd, s.base
	for i := range s.edits {
		e := &s.edits[i]
		d += s.insLen(e) - e.rem
		end = e.at + e.rem
	}
	if s.ackOut < end+d || d < -1<<30 || d > 1<<30 {
		return 0, false
	}
	return d, true
}

// dropHelper removes the flow's conntrack helper (on its SYN-ACK).
func (e *Engine) dropHelper(key FlowKey, s *stream) {
	if e.seqadj == nil || s.helperGone {
		return
	}
	s.helperGone = true
	src, dst := key.Tuple()
	if err := e.seqadj.DropHelper(src, dst); err != nil {
		e.st.Inc(queue.SelKernelFailed)
		s.noHandoff = true
	}
}

// queued notes that a packet of s handled here awaits its verdict, and
// returns what the verdict must run once sent.
func (e *Engine) queued(key FlowKey, s *stream) queue.AfterSend {
	if !e.handsOff(s) && !e.kernelAcks(s) {
		return queue.AfterSend{}
	}
	s.inflight++
	return queue.AfterSend{S: e, Key: key}
}

// Settled runs after a verdict of the flow key was sent (queue.Settler):
// when none is left and the translation is constant, the flow goes to the
// kernel (an http-header flow's server segments only, kernelack.go).
func (e *Engine) Settled(key FlowKey) {
	e.streams.With(key, func(s *stream) bool {
		s.inflight--
		if s.inflight > 0 {
			return false
		}
		if e.kernelAcks(s) {
			e.toKernelAcks(key, s)
			e.syncUpload(key, s) // upload.go
			return false
		}
		if !e.handsOff(s) {
			return false
		}
		d, ok := s.constant()
		if !ok {
			return false
		}
		src, dst := key.Tuple()
		if err := e.seqadj.SetSeqAdj(src, dst, s.isn1-1, int32(d), 0); err != nil {
			e.st.Inc(queue.SelKernelFailed)
			s.noHandoff = true
			return false
		}
		e.st.Inc(queue.SelKernel)
		// Packets queued before the mark is cleared pass (a tombstone,
		// orphan.go), buried before the state goes.
		e.bury(key, s.isn1, false)
		if err := e.seqadj.ClearMark(src, dst, e.cfg.SelectBit); err != nil {
			// The kernel translates; the flow's packets keep coming here
			// and pass unchanged: the tombstone stays until conntrack
			// destroys the flow.
			e.st.Inc(queue.SelKernelFailed)
			e.bury(key, s.isn1, true)
		}
		return true // the kernel translates from now on: forget the flow
	})
}
