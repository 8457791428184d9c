package handler

import (
	"net/netip"
	"time"
)

// FlowKey is a TCP or UDP flow seen from its inside end: protocol, inside
// host and port, server and port. Addresses are IPv4 (Is4, never
// IPv4-mapped) or IPv6, without zone: netip.Addr is comparable and built
// without allocation.
type FlowKey struct {
	Proto      uint8 // 6 TCP, 17 UDP
	Inside     netip.Addr
	InsidePort uint16
	Server     netip.Addr
	ServerPort uint16
}

// flow is a UDP flow whose first datagrams carry the HOST_ID: how many went
// through so far. (TCP flows are followed by the ruleset: rules.Spec.Track.)
type flow struct {
	segs  uint16
	added int64 // unix seconds, for the age sweep
}

// Flows is the bounded table of followed flows.
type Flows struct{ table[flow] }

// NewFlows holds at most max flows.
func NewFlows(max int) *Flows {
	f := &Flows{}
	f.init(max)
	return f
}

// start records a new flow at its first datagram; false when the table is
// full. An existing entry starts over.
func (f *Flows) start(k FlowKey, now int64) bool {
	return f.add(k,
		func() *flow { return &flow{segs: 1, added: now} },
		func(e *flow) *flow { e.segs, e.added = 1, now; return e })
}

// Sweep deletes flows older than maxAge: a handshake whose end natreveal never
// saw (lost events, a server that never answers).
func (f *Flows) Sweep(now time.Time, maxAge time.Duration) int {
	cut := now.Add(-maxAge).Unix()
	return f.deleteIf(func(e *flow) bool { return e.added < cut })
}
