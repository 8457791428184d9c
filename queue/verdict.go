package queue

import "github.com/natreveal/natreveal/packet"

// Meta is what the kernel tells about a queued packet besides its bytes.
type Meta struct {
	Mark  uint32
	InIf  uint32
	OutIf uint32
	// GSO: a GSO super-packet (NFQA_SKB_GSO, queue.go): longer than the MTU,
	// the kernel cuts it into segments of the size the sender chose.
	GSO bool
	// csumNotReady: the TCP/UDP checksum holds only the pseudo-header sum
	// (NFQA_SKB_CSUMNOTREADY); the queue completes it for a rewritten packet.
	csumNotReady bool
}

// Verdict is the answer for one packet: accept, except Drop for the one case
// a handler refuses; Len > 0 means buf[:Len] replaces the packet; SetMark
// sets the packet mark. After, when set, runs once the verdict has been sent
// (the kernel has re-injected the packet by then).
type Verdict struct {
	Len     int
	SetMark bool
	Mark    uint32
	Drop    bool
	After   AfterSend
}

// Settler is told that a verdict it asked for, for the flow k, has been
// sent.
type Settler interface{ Settled(k packet.FlowKey) }

// AfterSend is what runs once a verdict has been sent: a Settler (for a
// selected flow, the stream engine) and the flow it settles, held by value
// so that no packet allocates a closure and no flow state keeps its own
// key. The zero value runs nothing.
type AfterSend struct {
	S   Settler
	Key packet.FlowKey
}

// Set reports whether there is something to run.
func (a AfterSend) Set() bool { return a.S != nil }

// Run runs it (nothing when not Set).
func (a AfterSend) Run() {
	if a.S != nil {
		a.S.Settled(a.Key)
	}
}

// PacketHandler decides about one packet. Handle must not keep buf; it may
// rewrite buf in place (up to cap(buf): Headroom bytes past the packet are
// there to grow it) and return the new length in Verdict.Len.
type PacketHandler interface {
	Handle(buf []byte, n int, m Meta) Verdict
}
