package stream

// Selected flows without state. A flow's translation state lives in this
// daemon only (the edit list of an http-header flow, a proxy-protocol flow
// before its handoff), but the select bit that makes the ruleset queue its
// packets lives in the ct mark: it survives a daemon restart (SIGKILL, a
// crash) and reaches an HA backup with conntrackd. Passing such a flow's
// client segments unchanged would hand the server bytes at sequence numbers
// the edits moved (a corrupt stream) or requests without natreveal's fields
// and with the client's forged ones; passing its server segments would
// hand the client acknowledgements of bytes it never sent (a hung flow).
// So an orphan flow is reset and counted (select-reset); until a daemon
// listens, the ruleset queues such a flow's packets without bypass, so
// that the kernel drops them rather than passing them untranslated
// (rules.Spec.Select):
//
//   - its client segments that carry data or a FIN are cut to a bare ACK
//     whose sequence number is far outside the server's window: the server
//     discards it and answers with a duplicate ACK (RFC 9293 §3.10.7.4, "If
//     an incoming segment is not acceptable, an acknowledgment should be
//     sent in reply"); nothing of the client's data reaches it;
//   - a server segment is rewritten into a RST with its own sequence number,
//     which is the client's RCV.NXT (the server's numbering is never
//     edited), so the client accepts it (RFC 5961 §3.2);
//   - the server's next segment passes unchanged: the client has no
//     connection any more and answers it with a RST whose sequence number is
//     that segment's acknowledgement (RFC 9293 §3.10.7.1), which is in the
//     server's numbering, including any offset the kernel's sequence
//     adjustment holds (the kernel applies it to that RST like to any
//     client segment): the server's end is reset too. An idle server end is
//     reset when it next sends (its keep-alive timeout's FIN).
//
// Flows whose state ended here on purpose keep a tombstone for a while, so
// their late packets pass as before (select-unknown): both FINs
// acknowledged or a RST (retransmitted FIN/ACKs until conntrack's TIME_WAIT
// ends), and proxy-protocol flows handed to the kernel (packets queued
// before the select bit was cleared). A conntrack destroy event removes the
// tombstone with the flow; Sweep removes it past TombstoneTTL.
//
// Only client segments whose packet mark has the select bit (the steer
// chain sets it on the original direction of selected flows,
// rules.Spec.Select) are a selected flow's: others are queued for other
// methods. The server's segments are queued only for selected flows.

import (
	"encoding/binary"
	"time"

	"github.com/natreveal/natreveal/packet"
	"github.com/natreveal/natreveal/queue"
)

// TombstoneTTL is how long the late packets of a flow whose state ended
// here pass unchanged: conntrack's TIME_WAIT timeout (nf_conntrack_tcp_
// timeout_time_wait, 120 s).
const TombstoneTTL = 120 * time.Second

// tomb is what is left of a selected flow without translation state.
type tomb struct {
	at      time.Time // when it was buried
	isn1    uint32    // the buried flow's client ISN + 1 (lateSYN)
	orphan  bool      // no state was ever here (restart, failover): being reset
	forever bool      // handed to the kernel, select bit not cleared: pass until destroyed
	rsts    int       // server segments turned into RSTs (orphan)
	client  bool      // a client segment other than a RST came since the last RST (orphan)
}

// tombs is the bounded table of tombstones.
type tombs struct{ Table[tomb] }

func newTombs(max int) *tombs {
	t := &tombs{}
	t.Init(max)
	return t
}

// bury leaves a tombstone for a flow whose state ended here. A full shard
// keeps none: the flow's late packets are then reset, which ends nothing
// that had not ended.
func (e *Engine) bury(k FlowKey, isn1 uint32, forever bool) {
	t := tomb{at: e.now(), isn1: isn1, forever: forever}
	e.tombs.Add(k, func() *tomb { return &t }, func(*tomb) *tomb { return &t })
}

// lateSYN reports whether a SYN with client ISN + 1 isn1 is a late copy of
// the SYN of a flow whose state ended here (handed to the kernel, or
// ended): SYNs have queues of their own (rules.Spec.SelectQueues), and a
// copy the client retransmitted can come out of its lane after the flow's
// handoff. Selecting the flow again would set the select bit the handoff
// cleared and start a translation from the flow's first byte under the
// kernel's: its data would be dropped for good. Such a SYN passes as it is.
// A SYN with another ISN is a new connection on the tuple.
func (e *Engine) lateSYN(k FlowKey, isn1 uint32) bool {
	late := false
	e.tombs.With(k, func(t *tomb) bool {
		late = !t.orphan && t.isn1 == isn1
		return false
	})
	return late
}

// orphanSeg is what happens to a segment of a flow without state.
type orphanSeg uint8

const (
	orphanPass  orphanSeg = iota // a flow that ended here, a RST, a pure ACK: unchanged
	orphanProbe                  // client data or FIN: cut to an out-of-window ACK
	orphanRST                    // server segment: rewritten into a RST to the client
)

// orphan decides about a segment of a selected flow without state; client
// is its direction, flags its TCP flags, data whether it carries payload.
// first reports a flow found orphan now (counted once).
func (e *Engine) orphan(k FlowKey, client bool, flags uint8, data bool) (what orphanSeg, first bool) {
	now := e.now()
	held := e.tombs.With(k, func(t *tomb) bool {
		if !t.orphan {
			if t.forever || now.Sub(t.at) < TombstoneTTL {
				what = orphanPass
				return false
			}
			*t = tomb{at: now, orphan: true} // an old tombstone: the flow went on elsewhere
			first = true
		}
		switch {
		case flags&packet.FlagRST != 0:
			what = orphanPass
		case client && (data || flags&packet.FlagFIN != 0):
			t.client, what = true, orphanProbe
		case client:
			t.client, what = true, orphanPass
		case t.rsts == 0 || t.client:
			t.rsts, t.client, what = t.rsts+1, false, orphanRST
		default:
			what = orphanPass // the client is gone: its stack answers with a RST
		}
		return false
	})
	if held {
		return what, first
	}
	switch {
	case flags&packet.FlagRST != 0:
		return orphanPass, false
	case client && !data && flags&packet.FlagFIN == 0:
		// A pure ACK acknowledges server bytes, whose numbering no edit
		// touches: it passes; the server's next segment resets the flow.
		what = orphanPass
	case client:
		what = orphanProbe
	default:
		what = orphanRST
	}
	t := tomb{at: now, orphan: true, client: client}
	if what == orphanRST {
		t.rsts = 1
	}
	e.tombs.Add(k, func() *tomb { return &t }, func(*tomb) *tomb { return &t })
	return what, true
}

// toProbe cuts the client segment in pkt to a bare ACK (options kept: a
// timestamp passes PAWS, RFC 7323 §5) whose sequence number is half the
// sequence space away from its own, outside any window (RFC 9293 §3.4). It
// returns the new length.
func toProbe(pkt []byte, ip packet.IPv4, t packet.TCP) int {
	nl := t.Off + t.HdrLen
	pkt = pkt[:nl]
	binary.BigEndian.PutUint16(pkt[2:], uint16(nl))
	packet.SetIPv4HeaderChecksum(pkt, ip.HdrLen)
	seg := pkt[t.Off:]
	binary.BigEndian.PutUint32(seg[4:], t.Seq^1<<31)
	seg[13] = packet.FlagACK
	packet.SetTCPChecksum4(pkt, t.Off)
	return nl
}

// toReset rewrites the server segment in pkt into a bare RST with its own
// sequence number (RFC 9293 §3.10.7.3: no ACK needed), options dropped. It
// returns the new length.
func toReset(pkt []byte, ip packet.IPv4, t packet.TCP) int {
	nl := t.Off + 20
	pkt = pkt[:nl]
	binary.BigEndian.PutUint16(pkt[2:], uint16(nl))
	packet.SetIPv4HeaderChecksum(pkt, ip.HdrLen)
	seg := pkt[t.Off:]
	binary.BigEndian.PutUint32(seg[8:], 0)
	seg[12] = 5 << 4
	seg[13] = packet.FlagRST
	binary.BigEndian.PutUint16(seg[18:], 0) // urgent pointer
	packet.SetTCPChecksum4(pkt, t.Off)
	return nl
}

// orphanClient handles a client segment of no held flow (Original): v is
// the verdict so far, pkt the packet as it stands.
func (e *Engine) orphanClient(key FlowKey, ip packet.IPv4, tcp packet.TCP, pkt []byte, m queue.Meta, v queue.Verdict) queue.Verdict {
	if e.cfg.SelectBit == 0 || m.Mark&e.cfg.SelectBit == 0 {
		e.st.Inc(queue.SelUnknown) // not a selected flow: queued for another method
		return v
	}
	// The bit goes no further: the remember chain would copy it back into a
	// ct mark the handoff cleared.
	v = clearMark(v, m, e.cfg.SelectBit)
	what, first := e.orphan(key, true, tcp.Flags, tcp.PayloadLen > 0)
	if first {
		e.st.Inc(queue.SelReset)
	}
	if what != orphanProbe {
		e.st.Inc(queue.SelUnknown)
		return v
	}
	v.Len = toProbe(pkt, ip, tcp)
	return v
}

// orphanServer handles a server segment of no held flow (Reply).
func (e *Engine) orphanServer(key FlowKey, ip packet.IPv4, tcp packet.TCP, pkt []byte) queue.Verdict {
	what, first := e.orphan(key, false, tcp.Flags, tcp.PayloadLen > 0)
	if first {
		e.st.Inc(queue.SelReset)
	}
	if what != orphanRST {
		e.st.Inc(queue.SelUnknown)
		return queue.Verdict{}
	}
	return queue.Verdict{Len: toReset(pkt, ip, tcp)}
}

// clearMark takes bit out of the packet's mark, keeping the bits others set.
func clearMark(v queue.Verdict, m queue.Meta, bit uint32) queue.Verdict {
	if !v.SetMark {
		v.Mark = m.Mark
	}
	v.SetMark, v.Mark = true, v.Mark&^bit
	return v
}

// Sweep frees what lost destroy events would otherwise hold for good (the
// watcher's socket drops events it cannot buffer, conntrack/destroy.go): a
// full table turns new selected flows away. Tombstones past TombstoneTTL
// go (orphan treats them as gone already); flows, and tombstones of flows
// handed to the kernel, older than age go when held (conntrack; nil: not
// asked) says their tuple is gone, counted (select-swept). It returns how
// many it freed.
func (e *Engine) Sweep(age time.Duration, held func(FlowKey) bool) int {
	now := e.now()
	n := e.tombs.DeleteIf(func(t *tomb) bool { return !t.forever && now.Sub(t.at) >= TombstoneTTL })
	if held == nil {
		return n
	}
	cut := now.Add(-age)
	for _, k := range e.streams.Keys(func(s *stream) bool { return s.started < cut.Unix() }) {
		if held(k) {
			continue
		}
		e.streams.With(k, func(s *stream) bool {
			if s.started >= cut.Unix() { // a new flow of the tuple since
				return false
			}
			e.dropUpload(k, s)
			e.st.Inc(queue.SelSwept)
			n++
			return true
		})
	}
	for _, k := range e.tombs.Keys(func(t *tomb) bool { return t.forever && t.at.Before(cut) }) {
		if held(k) {
			continue
		}
		e.tombs.With(k, func(t *tomb) bool {
			if !t.forever || !t.at.Before(cut) {
				return false
			}
			e.st.Inc(queue.SelSwept)
			n++
			return true
		})
	}
	return n
}
