package stream

import "github.com/natreveal/natreveal/queue"

// The server's segments of an http-header flow, mapped in the kernel. A
// keep-alive flow gets a new edit with every request, so, unlike a
// proxy-protocol flow (handoff.go), it cannot be handed over whole: its
// client segments stay queued. But between requests, once the server has
// acknowledged every edit, each acknowledgement and SACK block it sends maps
// back by one offset D (stream.ackedDelta), and a download is all server
// segments.
//
// So conntrack's sequence adjustment holds a constant offset kernD under
// the translation: the kernel adds kernD to the client's sequence numbers
// and subtracts it from the server's acknowledgements, in nf_confirm, after
// the queue. What the daemon writes is pre-compensated (stream.outSeq,
// stream.ackSeq), so the result is the same whatever kernD is. While D
// equals kernD, SeqAdjBit in the ct mark makes the steer chain accept the
// server's segments without queueing them (rules.Spec.SeqAdjBit); FIN, SYN
// and RST are still queued, so the daemon sees the flow end.
//
// Order:
//   - the bit is set only after a verdict, with no verdict of the flow in
//     flight, when every edit is acknowledged, after KernelAckAfter server
//     segments in that state (short responses never pay the ctnetlink
//     calls), or after one when the client is in a request body long
//     enough for the uploads set (upload.go); kernD is moved to D first when they differ, and only then,
//     since a segment handled before the move and re-injected after it
//     would be compensated for the wrong offset;
//   - a client segment handled while the bit is set and D no longer equals
//     kernD for every byte the server may acknowledge (a new edit: the next
//     request's header) clears the bit over ctnetlink before its verdict:
//     the server cannot acknowledge the edit before it has the segment, and
//     the segments it sends from then on are queued and mapped here. When
//     the bit cannot be cleared, the segment is dropped (the client sends
//     it again).
//
// Client segments past the last edit then leave the queue unchanged (their
// output offset minus kernD is their own), so uploads cost a verdict
// without a packet too.
//
// While the bit is set, the client's segments without payload (and without
// SYN, FIN or RST) are not queued either (the ruleset's pureack chain):
// a download then queues nothing. Their sequence number is the client's
// next byte, past every edit the server acknowledged, so the kernel's kernD
// is their whole translation; their acknowledgement numbers and SACK blocks
// count the server's bytes, which no edit moves (nf_ct_sack_adjust maps
// SACK blocks by the other direction's offset, 0 here). What the daemon no
// longer sees is the client acknowledging the server's FIN, which ends the
// flow's state here (stream.clientAck): a server FIN clears the bit before
// its verdict, so the client cannot have seen it while its acknowledgements
// pass the kernel. A client pure ACK that passes just before the bit is
// cleared for a new edit carries an old offset; it reaches the server
// before the edit's segment (which waits for the clearing) or is below the
// server's window then and dropped there: an acknowledgement, not data.

// KernelAckAfter is how many server segments, every edit acknowledged,
// make a flow's server segments go to the kernel.
const KernelAckAfter = 16

// kernelAcks reports whether s's server segments may go to the kernel.
func (e *Engine) kernelAcks(s *stream) bool {
	_, http := s.p.(*httpParser)
	return http && e.seqadj != nil && e.cfg.SeqAdjBit != 0 && !s.noHandoff
}

// serverSeen counts a server segment handled here towards KernelAckAfter.
func (e *Engine) serverSeen(s *stream) {
	if !e.kernelAcks(s) || s.kernAck {
		return
	}
	if _, ok := s.ackedDelta(); ok {
		s.stable++
	} else {
		s.stable = 0
	}
}

// toKernelAcks runs with no verdict of the flow in flight: it moves kernD
// to the flow's offset and sets SeqAdjBit once the flow qualifies.
func (e *Engine) toKernelAcks(key FlowKey, s *stream) {
	need := KernelAckAfter
	if e.uploads != nil && s.longBody() {
		need = 1 // an upload is worth the calls at once (upload.go)
	}
	if s.kernAck || s.haveFinS || s.stable < need {
		return
	}
	d, ok := s.ackedDelta()
	if !ok {
		s.stable = 0
		return
	}
	src, dst := key.Tuple()
	if d != s.kernD {
		if err := e.seqadj.SetSeqAdj(src, dst, s.isn1-1, int32(d), int32(s.kernD)); err != nil {
			// Not taken (no extension) or set back: nothing changed.
			e.st.Inc(queue.SelKernelFailed)
			s.noHandoff = true
			return
		}
		s.kernD = d
	}
	if err := e.seqadj.SetMark(src, dst, e.cfg.SeqAdjBit); err != nil {
		// The server's segments stay queued, mapped here for kernD.
		e.st.Inc(queue.SelKernelFailed)
		s.stable = 0
		return
	}
	s.kernAck = true
	e.st.Inc(queue.SelKernelAcks)
}

// clientEdits runs on every client segment of s before its verdict: when
// the server's segments go to the kernel but an edit it has not
// acknowledged exists, they come back to the queue first. false: the bit
// could not be cleared, drop the segment.
func (e *Engine) clientEdits(key FlowKey, s *stream) bool {
	d, ok := s.ackedDelta()
	if !ok {
		s.stable = 0 // counted from the acknowledgement of the new edit
	}
	if !s.kernAck || (ok && d == s.kernD) {
		return true
	}
	return e.takeAcksBack(key, s)
}

// serverFin runs on every server segment of s before its verdict: a FIN
// brings the client's acknowledgements back to the queue (the flow's end is
// seen here). false: the bit could not be cleared, drop the FIN (the server
// sends it again).
func (e *Engine) serverFin(key FlowKey, s *stream, fin bool) bool {
	if !fin || !s.kernAck {
		return true
	}
	return e.takeAcksBack(key, s)
}

// takeAcksBack clears s's sequence-adjust bit so that its acknowledgements
// come back to the queue. false: the bit could not be cleared.
func (e *Engine) takeAcksBack(key FlowKey, s *stream) bool {
	src, dst := key.Tuple()
	if err := e.seqadj.ClearMark(src, dst, e.cfg.SeqAdjBit); err != nil {
		e.st.Inc(queue.SelKernelFailed)
		return false
	}
	s.kernAck, s.stable = false, 0
	e.st.Inc(queue.SelUserAcks)
	return true
}
