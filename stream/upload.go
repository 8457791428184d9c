package stream

// Request bodies at kernel speed. While the kernel's sequence adjustment
// holds an http-header flow's offset (kernelack.go: SeqAdjBit set, kernD
// equal to the offset of every client byte past the last edit), a client
// segment of a Content-Length body needs nothing from the daemon: its
// bytes hold no edit and the kernel adds kernD to its sequence number. Only
// the parser must see where the next request starts. So the daemon puts
// the body's range of client sequence numbers into the ruleset's uploads
// set (rules/uploads.go), and the pureack chain accepts the body's
// segments without queueing them.
//
// Why skipping them is safe:
//   - the element is added only while kernAck holds (the ct mark has
//     SeqAdjBit, so the set is consulted at all) and the client bytes from
//     the parser's position on translate by kernD (outStart(pos) - pos ==
//     kernD), with no edit in the rest of the body (untouched);
//   - it covers segments starting in [pos, end - uploadTail], end the
//     body's end: a segment carries at most 64 KiB (a GSO or GRO packet's
//     IPv4 Total Length), so every segment it lets through ends inside
//     the body; the segment that brings the next request's first byte is
//     queued, and the parser skips the gap to it (skippable: body bytes
//     need no inspection, as for out-of-order data);
//   - sequence numbers in postrouting are the client's own (seqadj applies
//     in nf_confirm, after the queue), so the element is keyed by s.seqOf;
//   - a new edit can only come from the next request, after end; a server
//     FIN clears SeqAdjBit (the elements are then not consulted); segments
//     with FIN, SYN or RST never reach the set (the pureack jump), so the
//     daemon sees the flow end;
//   - a range never spans more than uploadSpan (far less than 2^31), so no
//     sequence number of a later byte of the flow aliases into it within a
//     window; across 2^32 it takes two elements.
//
// The element goes (after a verdict, with none of the flow in flight) when
// the daemon has seen a segment past it, when the parser left the body, when
// the kernel no longer holds the offset, or when the flow ends or is reset;
// the set's timeout bounds what a lost removal leaves. A segment seen here
// uploadRenew past the element's start without passing it means the element
// is gone (timed out, the table replaced by a reload): it is put back.
// Chunked bodies and bodies with an edit pending stay queued.

import (
	"errors"
	"io/fs"

	"github.com/natreveal/natreveal/markbits"
	"github.com/natreveal/natreveal/queue"
)

// UploadSet adds and removes elements of the ruleset's uploads set
// (rules.Uploads).
type UploadSet interface {
	AddUploads(els []markbits.Upload) error
	DelUploads(els []markbits.Upload) error
}

const (
	// uploadTail: an element ends this far before the body's end, the
	// largest segment (GSO/GRO, RFC 791 Total Length 65535).
	uploadTail = 1 << 16
	// uploadMin: shorter ranges are not worth two netlink calls.
	uploadMin = 1 << 18
	// uploadSpan bounds one element's range (a longer body gets the next
	// one when the daemon sees a segment past it).
	uploadSpan = 1 << 30
	// uploadRenew: a segment this far into an element reached the daemon:
	// the element is gone.
	uploadRenew = 16 << 20
)

// upload is the element of a flow's body in the uploads set.
type upload struct {
	on     bool
	lo, hi int64 // client offsets: segments starting in [lo, hi] skip the queue
}

// SetUploads makes e put request bodies of http-header flows into u
// (rules.Uploads); nil: they stay queued. Needs SetSeqAdj and
// Config.SeqAdjBit.
func (e *Engine) SetUploads(u UploadSet) { e.uploads = u }

// longBody reports whether the parser is in a Content-Length body long
// enough for an element: the kernel should take the offset at once.
func (s *stream) longBody() bool {
	p, ok := s.p.(*httpParser)
	return ok && p.st == hsBody && p.n >= uploadMin+uploadTail
}

// uploadElems are the set elements of s's client offsets [lo, hi].
func (s *stream) uploadElems(key FlowKey, lo, hi int64) []markbits.Upload {
	src, dst := key.Tuple()
	a, b := s.seqOf(lo), s.seqOf(hi)
	if a <= b {
		return []markbits.Upload{{Src: src, Dst: dst, First: a, Last: b}}
	}
	return []markbits.Upload{ // across 2^32
		{Src: src, Dst: dst, First: a, Last: 0xffffffff},
		{Src: src, Dst: dst, First: 0, Last: b},
	}
}

// bodyRange returns the client offsets [lo, hi] whose segments may skip
// the queue now, or false.
func (e *Engine) bodyRange(s *stream) (lo, hi int64, ok bool) {
	p, http := s.p.(*httpParser)
	if !http || p.st != hsBody || !s.kernAck || s.reset || s.noUpload {
		return 0, 0, false
	}
	lo, end := s.pos, s.pos+p.n
	hi = min(end-uploadTail, lo+uploadSpan)
	if hi-lo < uploadMin || s.outStart(lo)-lo != s.kernD || !s.untouched(lo, end) {
		return 0, 0, false
	}
	return lo, hi, true
}

// syncUpload runs after a verdict of s, with none in flight: it removes
// the element that is done and adds the one the body allows.
func (e *Engine) syncUpload(key FlowKey, s *stream) {
	if e.uploads == nil {
		return
	}
	if s.up.on {
		p, _ := s.p.(*httpParser)
		lost := s.pos >= s.up.lo+uploadRenew && s.pos <= s.up.hi
		if !lost && s.pos <= s.up.hi && s.kernAck && p != nil && p.st == hsBody {
			return // in use
		}
		e.dropUpload(key, s)
	}
	lo, hi, ok := e.bodyRange(s)
	if !ok {
		return
	}
	if err := e.uploads.AddUploads(s.uploadElems(key, lo, hi)); err != nil {
		// No set (a ruleset without it) or no room: the body stays queued.
		e.st.Inc(queue.SelUploadFailed)
		s.noUpload = true
		return
	}
	s.up = upload{on: true, lo: lo, hi: hi}
	e.st.Inc(queue.SelUploads)
}

// dropUpload removes s's element, if any: its body is done, or the flow.
func (e *Engine) dropUpload(key FlowKey, s *stream) {
	if !s.up.on || e.uploads == nil {
		return
	}
	err := e.uploads.DelUploads(s.uploadElems(key, s.up.lo, s.up.hi))
	s.up = upload{}
	if err != nil && !errors.Is(err, fs.ErrNotExist) { // ENOENT: timed out, the table replaced
		// The timeout removes it.
		e.st.Inc(queue.SelUploadFailed)
	}
}
