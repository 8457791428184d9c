// Package stream rewrites the payload of selected flows (http-header,
// proxy-protocol): sequence translation, the HTTP/1.x parser, the PROXY
// header, and the handoff of a flow's translation to conntrack.
package stream

// Payload insertion with sequence translation (http-header, proxy-protocol).
//
// A selected flow's client->server byte stream is rewritten: bytes are
// inserted (the HOST_ID header, the PROXY header) and removed (headers the
// client forged). The kernel does not adjust sequence numbers for queued
// packets whose length changed (nf_queue only fixes their checksums), so
// every later packet of the flow passes through the engine: client
// segments get their sequence number (and payload) rewritten, server
// segments their acknowledgement number and SACK blocks (RFC 2018; D-SACK,
// RFC 2883, maps the same way) mapped back.
//
// The rewrite is a pure function of a list of edits keyed by client stream
// offset (offset 0 is the byte after the SYN, ISN+1): an edit at offset p
// removes rem client bytes starting at p and inserts its bytes before them.
// Edits are only ever appended at or beyond the parser's position, never
// changed below it, so a retransmitted or re-segmented copy of any byte range
// gets exactly the bytes and sequence numbers the first copy got.
//
// Out-of-order client data beyond the parser position is forwarded when the
// parser knows that range holds no edits (message bodies, passthrough); else
// it is dropped (counted) and the client retransmits it once the hole is
// filled. A segment that ends inside a header name that might have to be
// removed is cut before that line: the client retransmits the rest, coalesced
// with what follows (Linux collapses retransmissions), and the decision is
// taken when the name is complete.

import (
	"bytes"
	"encoding/binary"
	"net/netip"
	"sync"
	"sync/atomic"

	"github.com/natreveal/natreveal/packet"
	"github.com/natreveal/natreveal/queue"
)

// edit removes rem client bytes at offset at and inserts the stream's header
// (ins) before them. eager: the inserted bytes are carried by an empty
// segment at `at` too (the PROXY header on the handshake-completing ACK).
type edit struct {
	at    int64
	rem   int64
	ins   bool
	eager bool
	data  []byte // inserted instead of the header: client bytes held back and given back (addData)
}

// foldMargin: edits ending this far below what the server acknowledged can
// no longer be needed for a retransmission and are folded into base.
const (
	foldMargin = 1 << 20
	maxEdits   = 64 // past this many, acknowledged edits are folded at once
)

// parser is the per-flow protocol state that decides the edits.
type parser interface {
	// feed consumes data, the client bytes at s.pos onwards, appending
	// edits at or beyond s.pos. It returns how many bytes it consumed
	// (fewer than len(data) when it must see more before deciding: the
	// segment is cut there) and whether the connection must be reset.
	feed(s *stream, data []byte) (n int, reset bool)
	// skippable is how many bytes from s.pos need no inspection (-1: all).
	skippable() int64
	// skip advances the parser over n skippable bytes.
	skip(n int64)
}

// stream is the translation state of one selected flow.
type stream struct {
	isn1    uint32 // client ISN + 1: stream offset 0, for both numberings
	hdr     []byte // the bytes an insertion adds
	edits   []edit // sorted by at, non-overlapping
	base    int64  // delta of the folded edits
	foldEnd int64  // client offset below which edits were folded
	pos     int64  // next client offset the parser needs
	p       parser

	ackOut    int64 // highest server acknowledgement (output offset); -1 none
	finC      int64 // client FIN offset, -1 none
	finS      uint32
	haveFinS  bool
	finCAcked bool
	finSAcked bool
	reset     bool  // the flow was refused and is being reset (a forged PROXY header, an ambiguous request)
	probed    bool  // after the refusal, the last client segment left as a bare ACK (the next goes as a RST)
	maxIns    int   // bytes of the largest insertion (MSS room)
	started   int64 // unix seconds of its SYN (Engine.Sweep)

	// Handoff to conntrack's sequence adjustment (handoff.go).
	inflight   int  // packets handled here whose verdicts are not sent yet
	noHandoff  bool // a handoff step failed: translate here to the end
	helperGone bool // the conntrack helper was removed (on the SYN-ACK)

	// The kernel's sequence adjustment as a constant offset under the
	// translation (kernelack.go): it adds kernD to the client's sequence
	// numbers and subtracts it from the server's acknowledgements after
	// they leave the queue, so what is written here is pre-compensated.
	kernD   int64
	kernAck bool // the ct mark has SeqAdjBit: the server's segments are not queued
	stable  int  // server segments handled since every edit was acknowledged

	// The request body whose segments skip the queue (upload.go).
	up       upload
	noUpload bool // an element could not be added: bodies stay queued
}

func newStream(isn uint32, hdr []byte, p parser) *stream {
	return &stream{isn1: isn + 1, hdr: hdr, p: p, ackOut: -1, finC: -1}
}

func (s *stream) insLen(e *edit) int64 { return int64(len(s.insBytes(e))) }

// insBytes is what e inserts.
func (s *stream) insBytes(e *edit) []byte {
	switch {
	case e.data != nil:
		return e.data
	case e.ins:
		return s.hdr
	}
	return nil
}

// addData gives back, at at (>= pos), client bytes the parser removed while
// it could not decide about them (a field name, a PROXY signature prefix):
// they were acknowledged to the client, so the client never waits on them.
func (s *stream) addData(at int64, b []byte) {
	s.edits = append(s.edits, edit{at: at, data: append([]byte(nil), b...)})
}

// addInsert records an insertion at at (at >= pos).
func (s *stream) addInsert(at int64, eager bool) {
	if n := len(s.edits); n > 0 && s.edits[n-1].at == at && s.edits[n-1].rem == 0 && !s.edits[n-1].ins && s.edits[n-1].data == nil {
		s.edits[n-1].ins, s.edits[n-1].eager = true, eager
		return
	}
	s.edits = append(s.edits, edit{at: at, ins: true, eager: eager})
}

// removeTo makes client bytes [at, end) vanish, merging with the last edit
// when it ends at at.
func (s *stream) removeTo(at, end int64) {
	if n := len(s.edits); n > 0 && s.edits[n-1].data == nil {
		if l := &s.edits[n-1]; l.at+l.rem == at || (l.at <= at && at < l.at+l.rem) {
			if end > l.at+l.rem {
				l.rem = end - l.at
			}
			return
		}
	}
	s.edits = append(s.edits, edit{at: at, rem: end - at})
}

// outStart is the output offset of the boundary before client byte x; an
// insertion at x is not included.
func (s *stream) outStart(x int64) int64 {
	d := s.base
	for i := range s.edits {
		e := &s.edits[i]
		if e.at >= x {
			break
		}
		if x <= e.at+e.rem {
			d += s.insLen(e) - (x - e.at)
		} else {
			d += s.insLen(e) - e.rem
		}
	}
	return x + d
}

// invFloor is the largest client offset whose boundary maps at or before
// output offset o: what an acknowledgement or a SACK right edge means.
// Removed bytes count as received once the server has everything before
// them: the server never sees them, so the client must not wait for them
// (a long removed field would stall the client's window for good).
func (s *stream) invFloor(o int64) int64 {
	d := s.base
	for i := range s.edits {
		e := &s.edits[i]
		l := s.insLen(e)
		if o < e.at+d || (o == e.at+d && (l > 0 || e.rem == 0)) {
			return o - d
		}
		if e.rem > 0 {
			if o < e.at+d+l {
				return e.at
			}
			d += l - e.rem
		} else {
			if o < e.at+d+l+1 {
				return e.at
			}
			d += l
		}
	}
	return o - d
}

// invCeil is the smallest client offset at or after output offset o, as far
// as invFloor can tell (a SACK left edge: claim no byte not received).
func (s *stream) invCeil(o int64) int64 {
	x := s.invFloor(o)
	if s.outStart(x) < o {
		x++
	}
	return x
}

// render appends the output bytes of client bytes [S, S+len(P)) to dst.
func (s *stream) render(dst []byte, S int64, P []byte) []byte {
	E := S + int64(len(P))
	cur := S
	for i := range s.edits {
		e := &s.edits[i]
		if e.at >= E {
			break
		}
		if e.at < S && e.at+e.rem <= S {
			continue
		}
		if e.at >= S {
			dst = append(dst, P[cur-S:e.at-S]...)
			dst = append(dst, s.insBytes(e)...)
			cur = e.at
		}
		if end := min(e.at+e.rem, E); end > cur {
			cur = end
		}
	}
	return append(dst, P[cur-S:]...)
}

// byteBefore is the output byte before the boundary that client offset x,
// inside a removal, maps to: the last inserted byte, or the client's LF
// that ends the line before a removed field line (RFC 9112 §2.1).
func (s *stream) byteBefore(x int64) byte {
	for i := len(s.edits) - 1; i >= 0; i-- {
		e := &s.edits[i]
		if e.at > x {
			continue
		}
		if b := s.insBytes(e); len(b) > 0 && x <= e.at+e.rem {
			return b[len(b)-1]
		}
		if e.rem > 0 && x <= e.at+e.rem {
			x = e.at
			continue
		}
		break
	}
	return '\n'
}

// eagerAt returns the eager edit at x, if any.
func (s *stream) eagerAt(x int64) *edit {
	for i := range s.edits {
		if e := &s.edits[i]; e.at == x && e.eager && e.ins {
			return e
		} else if e.at > x {
			break
		}
	}
	return nil
}

// off turns a sequence number into a stream offset near ref.
func (s *stream) off(seq uint32, ref int64) int64 {
	return ref + int64(int32(seq-(s.isn1+uint32(ref))))
}

// seqOf turns a stream offset into a sequence number.
func (s *stream) seqOf(o int64) uint32 { return s.isn1 + uint32(o) }

// outSeq is the sequence number a client segment at output offset o leaves
// the queue with: the kernel adds kernD later.
func (s *stream) outSeq(o int64) uint32 { return s.seqOf(o - s.kernD) }

// ackSeq is the acknowledgement number for client offset c a server
// segment leaves the queue with: the kernel subtracts kernD later.
func (s *stream) ackSeq(c int64) uint32 { return s.seqOf(c + s.kernD) }

// fold merges edits the server acknowledged long ago into base.
func (s *stream) fold(ackC int64) {
	n := 0
	for n < len(s.edits) {
		e := &s.edits[n]
		end := e.at + e.rem
		if end > ackC || (end > ackC-foldMargin && len(s.edits)-n <= maxEdits) {
			break
		}
		s.base += s.insLen(e) - e.rem
		s.foldEnd = end
		n++
	}
	if n > 0 {
		s.edits = append(s.edits[:0], s.edits[n:]...)
	}
}

// segResult is what the translator did with a segment.
type segResult uint8

const (
	segPass    segResult = iota // unchanged
	segWritten                  // rewritten in place, same or new length
	segDrop                     // drop: out of order past the parser, or held entirely
	segReset                    // rewritten into a RST (forged PROXY header)
	segProbe                    // refused flow: rewritten into a bare ACK that draws the closed server's RST to the client
)

// client translates a client->server segment in buf[:n] (an IPv4 packet,
// parsed as ip/t), with room up to cap(buf). limit is the largest packet
// the path takes. It returns the result and the new length.
func (s *stream) client(buf []byte, n int, ip packet.IPv4, t packet.TCP, limit int, st *queue.Counters) (segResult, int) {
	pkt := buf[:n]
	seg := pkt[t.Off:ip.TotalLen]
	S := s.off(t.Seq, s.pos)
	P := seg[t.HdrLen:]
	L := int64(len(P))
	if t.Flags&packet.FlagRST != 0 {
		// A RST must carry a sequence number the server accepts.
		setSeq(seg, s.outSeq(s.outStart(S)))
		return segWritten, n
	}
	if s.reset {
		// Refused: the server was reset, the client was not: it sends its
		// bytes again, never to reach the server. Its segments go
		// alternately as a bare ACK and as a RST. The server, with no
		// connection left, answers the ACK with <SEQ=SEG.ACK><CTL=RST>
		// (RFC 9293 §3.10.7.1); SEG.ACK is in the server's numbering,
		// which no edit touches, so that RST is at the client's RCV.NXT
		// and resets it (RFC 5961 §3.2). The RST sends the refusal again
		// in case the first was lost or taken as out of window (RFC 5961
		// §3.2: a challenge ACK, no reset). A segment without ACK could
		// draw no such answer: it goes as a RST.
		q := s.outSeq(s.refusedAt(min(S, s.pos)))
		if s.probed = !s.probed && t.Flags&packet.FlagACK != 0; s.probed {
			return segProbe, s.bare(buf, ip, t, q, packet.FlagACK)
		}
		return segReset, s.bare(buf, ip, t, q, packet.FlagRST|packet.FlagACK)
	}
	if t.Flags&packet.FlagFIN != 0 {
		s.finC = S + L
	}
	if L == 0 {
		// A pure ACK (or FIN): it follows every byte before S.
		o := s.outStart(S)
		if e := s.eagerAt(S); e != nil {
			if s.ackOut < o+int64(len(s.hdr)) && t.Flags&packet.FlagFIN == 0 {
				// Carry the eager insertion (again, until acknowledged).
				return segWritten, s.write(buf, n, ip, t, o, s.hdr, st)
			}
			o += int64(len(s.hdr))
		}
		return s.renumber(seg, t, o), n
	}
	if S > s.pos {
		if k := s.p.skippable(); k >= 0 && S > s.pos+k {
			st.Inc(queue.SelOutOfOrder)
			return segDrop, 0
		}
		s.p.skip(S - s.pos)
		s.pos = S
	}
	E := S + L
	if S < s.foldEnd {
		// Data the server acknowledged long ago: only its number matters.
		return s.renumber(seg, t, s.outStart(S)), n
	}
	cut := E
	if E > s.pos {
		used, reset := s.p.feed(s, P[s.pos-S:])
		if reset {
			// The parser counted why (proxy-forged-reset, http-refused).
			s.reset = true
			return segReset, s.bare(buf, ip, t, s.outSeq(s.refusedAt(S)), packet.FlagRST|packet.FlagACK)
		}
		s.pos += int64(used)
		if s.pos < E {
			cut = s.pos
			st.Inc(queue.SelHeld)
		}
	}
	if cut <= S {
		return segDrop, 0
	}
	o := s.outStart(S)
	if cut == E && s.untouched(S, E) {
		// No edit in the segment: only its sequence number moves (the
		// common case: every segment past the last insertion). In place,
		// checksum adjusted.
		return s.renumber(seg, t, o), n
	}
	// Room on the path: cut before an insertion point that would not fit.
	// A GSO packet (limit 0xffff, the kernel segments it) and a path of
	// unknown MTU are bounded by the IPv4 Total Length only.
	if limit <= 0 || limit > 0xffff {
		limit = 0xffff
	}
	room := int64(limit - ip.HdrLen - t.HdrLen)
	if s.outStart(cut)-o > room {
		for i := len(s.edits) - 1; i >= 0; i-- {
			e := &s.edits[i]
			if e.at > S && e.at < cut && s.outStart(e.at)-o <= room {
				cut = e.at
				st.Inc(queue.SelCutMTU)
				break
			}
		}
		// Still too long (an insertion at S itself into a packet near
		// 64 KiB): cut the payload; the client sends the rest again.
		for cut > S && s.outStart(cut)-o > room {
			cut -= max(1, s.outStart(cut)-o-room)
			st.Inc(queue.SelCutMTU)
		}
		if cut <= S {
			return segDrop, 0
		}
	}
	fin := t.Flags&packet.FlagFIN != 0
	if cut < E && fin {
		seg[13] &^= packet.FlagFIN
		s.finC = -1
	}
	tail := buf[n:cap(buf)]
	out := s.render(tail[:0], S, P[:cut-S])
	if len(out) == 0 && o > 0 {
		// Every byte removed: an empty segment would draw no
		// acknowledgement, and the client would send these bytes again
		// forever. Send the output byte before them again instead: the
		// server answers a duplicate at once (RFC 9293 §3.10.7.4), and its
		// acknowledgement maps past the removed bytes (invFloor).
		return segWritten, s.write(buf, n, ip, t, o-1, []byte{s.byteBefore(S)}, st)
	}
	if len(out) > len(tail) {
		// No room past the packet to render it (a packet near the job
		// buffer's size): the client sends it again, maybe smaller.
		// Passing it unchanged would let untranslated bytes through.
		st.Inc(queue.Oversize)
		return segDrop, 0
	}
	if cut == E && s.outSeq(o) == t.Seq && bytes.Equal(out, P) {
		return segPass, n // nothing changes
	}
	return segWritten, s.write(buf, n, ip, t, o, out, st)
}

// refusedAt is the output offset a refused flow's RSTs carry for client
// offset x: the server's RCV.NXT, the only sequence number a RST resets at
// (RFC 5961 §3.2). An eager insertion at x (the PROXY header on the
// handshake ACK) lies before it once the server acknowledged it. Until
// then the server may not have it (a RST past RCV.NXT would draw only a
// challenge ACK), so the RST goes at its start; a server that has it
// discards that RST as below its window, answers the bare ACK that follows
// with its acknowledgement (RFC 9293 §3.10.7.4), and the next RST goes past
// the header.
func (s *stream) refusedAt(x int64) int64 {
	o := s.outStart(x)
	if s.eagerAt(x) != nil && s.ackOut >= o+int64(len(s.hdr)) {
		o += int64(len(s.hdr))
	}
	return o
}

// untouched reports whether no edit changes client bytes [S, E): none
// inserts at or removes from them (render would return them as they are).
func (s *stream) untouched(S, E int64) bool {
	for i := range s.edits {
		e := &s.edits[i]
		if e.at >= E {
			return true
		}
		if e.at >= S || e.at+e.rem > S {
			return false
		}
	}
	return true
}

// renumber gives a segment the sequence number of output offset o, in
// place (checksum adjusted); segPass when it has it already.
func (s *stream) renumber(seg []byte, t packet.TCP, o int64) segResult {
	q := s.outSeq(o)
	if q == t.Seq {
		return segPass
	}
	setSeq(seg, q)
	return segWritten
}

// write replaces the segment's payload with pay (which may live in buf past
// n), sets its sequence number to output offset o and fixes the IPv4 total
// length and both checksums. It returns the new length.
func (s *stream) write(buf []byte, n int, ip packet.IPv4, t packet.TCP, o int64, pay []byte, st *queue.Counters) int {
	hl := t.Off + t.HdrLen
	nl := hl + len(pay)
	if nl > cap(buf) || nl > 0xffff {
		return n
	}
	buf = buf[:max(nl, n)]
	copy(buf[hl:], pay) // copy handles the overlap of a payload rendered past n
	pkt := buf[:nl]
	binary.BigEndian.PutUint16(pkt[2:], uint16(nl))
	packet.SetIPv4HeaderChecksum(pkt, ip.HdrLen)
	seg := pkt[t.Off:]
	binary.BigEndian.PutUint32(seg[4:], s.outSeq(o))
	packet.SetTCPChecksum4(pkt, t.Off)
	return nl
}

// bare turns the segment into one without payload at seq with only the
// flags given (a RST+ACK, a bare ACK); its acknowledgement, window and
// options stay.
func (s *stream) bare(buf []byte, ip packet.IPv4, t packet.TCP, seq uint32, flags uint8) int {
	nl := t.Off + t.HdrLen
	pkt := buf[:nl]
	binary.BigEndian.PutUint16(pkt[2:], uint16(nl))
	packet.SetIPv4HeaderChecksum(pkt, ip.HdrLen)
	seg := pkt[t.Off:]
	binary.BigEndian.PutUint32(seg[4:], seq)
	seg[13] = flags
	packet.SetTCPChecksum4(pkt, t.Off)
	return nl
}

// server translates a server->client segment in place: acknowledgement and
// SACK blocks back into client numbering. done: both FINs are acknowledged
// or a RST passed, so the state can go.
func (s *stream) server(pkt []byte, ip packet.IPv4, t packet.TCP) (changed, done bool) {
	seg := pkt[t.Off:ip.TotalLen]
	if t.Flags&packet.FlagFIN != 0 {
		s.finS, s.haveFinS = t.Seq+uint32(t.PayloadLen), true
	}
	if t.Flags&packet.FlagACK != 0 {
		ref := s.outStart(s.pos)
		ao := s.off(t.Ack, ref)
		if ao > s.ackOut {
			s.ackOut = ao
		}
		ac := s.invFloor(ao)
		if s.finC >= 0 && ac > s.finC {
			s.finCAcked = true
		}
		if na := s.ackSeq(ac); na != t.Ack {
			packet.SetField32(seg, 8, na)
			changed = true
		}
		if sackBlocks(seg, t.HdrLen, func(l, r uint32) (uint32, uint32) {
			lo, ro := s.off(l, ref), s.off(r, ref)
			lc, rc := s.invCeil(lo), s.invFloor(ro)
			if rc < lc {
				rc = lc
			}
			return s.ackSeq(lc), s.ackSeq(rc)
		}) {
			changed = true
		}
		s.fold(ac)
	}
	done = t.Flags&packet.FlagRST != 0 || (s.finCAcked && s.finSAcked)
	return changed, done
}

// clientAck notes the client's acknowledgement of the server's FIN.
func (s *stream) clientAck(t packet.TCP) bool {
	if s.haveFinS && t.Flags&packet.FlagACK != 0 && int32(t.Ack-(s.finS+1)) >= 0 {
		s.finSAcked = true
	}
	return s.finCAcked && s.finSAcked
}

// sackBlocks walks the SACK option (RFC 2018 §3: kind 5, 8*n+2 bytes) of the
// TCP header seg[:hdrLen] and rewrites each block with f, checksum updated
// incrementally. It reports whether anything changed.
func sackBlocks(seg []byte, hdrLen int, f func(l, r uint32) (uint32, uint32)) bool {
	changed := false
	opts := seg[20:hdrLen]
	for i := 0; i < len(opts); {
		switch opts[i] {
		case 0:
			return changed
		case 1:
			i++
			continue
		}
		if i+1 >= len(opts) || opts[i+1] < 2 || i+int(opts[i+1]) > len(opts) {
			return changed
		}
		l := int(opts[i+1])
		if opts[i] == 5 && (l-2)%8 == 0 {
			for b := i + 2; b+8 <= i+l; b += 8 {
				ol := binary.BigEndian.Uint32(opts[b:])
				or := binary.BigEndian.Uint32(opts[b+4:])
				nl, nr := f(ol, or)
				if nl != ol || nr != or {
					packet.SetField32(seg, 20+b, nl)
					packet.SetField32(seg, 20+b+4, nr)
					changed = true
				}
			}
		}
		i += l
	}
	return changed
}

// setSeq sets the sequence number, checksum adjusted (RFC 1624).
func setSeq(seg []byte, seq uint32) { packet.SetField32(seg, 4, seq) }

// Streams is the bounded table of selected flows' translation state. The
// bound is global (not per shard: a host filling every shard with idle
// connections would lock everyone else out) and per inside host.
type Streams struct {
	Table[stream]
	max, perHost int
	total        atomic.Int64
	hosts        [Shards]struct {
		mu sync.Mutex
		m  map[netip.Addr]int
	}
}

// NewStreams holds at most max selected flows, at most perHost of them from
// one inside host (0: max/8, at least 1).
func NewStreams(limit, perHost int) *Streams {
	if perHost <= 0 {
		perHost = limit / 8
	}
	s := &Streams{max: limit, perHost: min(limit, max(1, perHost))}
	s.Init(limit * Shards) // each shard may hold all: the bound is s.max
	for i := range s.hosts {
		s.hosts[i].m = make(map[netip.Addr]int)
	}
	s.OnDelete = s.release
	return s
}

// startResult is what start did.
type startResult uint8

const (
	started  startResult = iota
	fullAll              // the table holds max flows
	fullHost             // the inside host holds perHost flows
)

func hostShard(a netip.Addr) int {
	b := a.As16()
	return int(b[15]^b[14]^b[13]^b[11]) % Shards
}

// start adds a stream. A retransmitted SYN (the same ISN) keeps the state
// its first copy started: SYNs have queues of their own
// (rules.Spec.SelectQueues), so a late copy can come after the flow moved
// on in another lane, and starting over then mistranslated the rest of the
// flow (a proxy-protocol transfer stalled under loss). A SYN with another
// ISN starts the tuple over (a reused port).
func (t *Streams) start(k FlowKey, s *stream) startResult {
	if t.With(k, func(old *stream) bool {
		if old.isn1 != s.isn1 {
			*old = *s
		}
		return false
	}) {
		return started
	}
	if t.total.Add(1) > int64(t.max) {
		t.total.Add(-1)
		return fullAll
	}
	h := &t.hosts[hostShard(k.Inside)]
	h.mu.Lock()
	if h.m[k.Inside] >= t.perHost {
		h.mu.Unlock()
		t.total.Add(-1)
		return fullHost
	}
	h.m[k.Inside]++
	h.mu.Unlock()
	added := false
	t.Add(k, func() *stream { added = true; return s }, func(*stream) *stream { return s })
	if !added {
		t.release(k) // a retransmission raced this one in
	}
	return started
}

// release gives back a deleted flow's places.
func (t *Streams) release(k FlowKey) {
	t.total.Add(-1)
	h := &t.hosts[hostShard(k.Inside)]
	h.mu.Lock()
	if h.m[k.Inside]--; h.m[k.Inside] <= 0 {
		delete(h.m, k.Inside)
	}
	h.mu.Unlock()
}

// selector matches a destination: a prefix (any address when invalid) and
// a port (any when 0).
type Selector struct {
	Prefix netip.Prefix
	Port   uint16
	OnAck  bool // proxy-protocol: carry the header on the handshake ACK
}

func (sel Selector) match(a netip.Addr, port uint16) bool {
	return (!sel.Prefix.IsValid() || sel.Prefix.Contains(a)) && (sel.Port == 0 || sel.Port == port)
}
