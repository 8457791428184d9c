package handler

import (
	"time"

	"github.com/natreveal/natreveal/packet"
	"github.com/natreveal/natreveal/stream"
)

// FlowKey is a TCP or UDP flow seen from its inside end (packet.FlowKey).
type FlowKey = packet.FlowKey

// flow is a UDP flow whose first datagrams carry the HOST_ID: how many went
// through so far. (TCP flows are followed by the ruleset: rules.Spec.Track.)
type flow struct {
	segs  uint16
	added int64 // unix seconds, for the age sweep
}

// Flows is the bounded table of followed flows.
type Flows struct{ stream.Table[flow] }

// NewFlows holds at most max flows.
func NewFlows(max int) *Flows {
	f := &Flows{}
	f.Init(max)
	return f
}

// start records a new flow at its first datagram; false when the table is
// full. An existing entry starts over.
func (f *Flows) start(k FlowKey, now int64) bool {
	return f.Add(k,
		func() *flow { return &flow{segs: 1, added: now} },
		func(e *flow) *flow { e.segs, e.added = 1, now; return e })
}

// Sweep deletes flows older than maxAge: a handshake whose end natreveal never
// saw (lost events, a server that never answers).
func (f *Flows) Sweep(now time.Time, maxAge time.Duration) int {
	cut := now.Add(-maxAge).Unix()
	return f.DeleteIf(func(e *flow) bool { return e.added < cut })
}
