package nfq

import (
	"sync"
	"time"
)

// FlowKey is a TCP flow seen from its inside end: inside host and port, server
// and port. IPv4 for now.
type FlowKey struct {
	Inside     [4]byte
	InsidePort uint16
	Server     [4]byte
	ServerPort uint16
}

// flow is what RFC 7974 §4.2 needs until the server shows the connection is
// established: the client's ISN (to tell when data is acknowledged) and how
// many segments carried the option so far.
type flow struct {
	isn   uint32
	segs  uint16
	added int64 // unix seconds, for the age sweep
}

const flowShards = 64

// Flows is a bounded, sharded flow table.
type Flows struct {
	max    int
	shards [flowShards]struct {
		mu sync.Mutex
		m  map[FlowKey]*flow
		n  int
	}
}

// NewFlows holds at most max flows.
func NewFlows(max int) *Flows {
	f := &Flows{max: max}
	for i := range f.shards {
		f.shards[i].m = make(map[FlowKey]*flow)
	}
	return f
}

func (f *Flows) shard(k FlowKey) int {
	h := uint32(k.InsidePort)*31 + uint32(k.ServerPort)
	h = h*31 + uint32(k.Inside[3]) + uint32(k.Inside[2])<<8
	return int(h % flowShards)
}

// start records a new flow; false when the table is full. A SYN
// retransmission simply refreshes the entry.
func (f *Flows) start(k FlowKey, isn uint32, now int64) bool {
	s := &f.shards[f.shard(k)]
	s.mu.Lock()
	defer s.mu.Unlock()
	if e, ok := s.m[k]; ok {
		e.isn, e.added = isn, now
		return true
	}
	if s.n >= (f.max+flowShards-1)/flowShards {
		return false
	}
	s.m[k] = &flow{isn: isn, added: now}
	s.n++
	return true
}

// with runs fn on the flow's state under its lock; false when unknown. fn
// returns whether the flow is done, which deletes it.
func (f *Flows) with(k FlowKey, fn func(*flow) (done bool)) bool {
	s := &f.shards[f.shard(k)]
	s.mu.Lock()
	defer s.mu.Unlock()
	e, ok := s.m[k]
	if !ok {
		return false
	}
	if fn(e) {
		delete(s.m, k)
		s.n--
	}
	return true
}

// Delete forgets a flow (conntrack destroy event).
func (f *Flows) Delete(k FlowKey) {
	s := &f.shards[f.shard(k)]
	s.mu.Lock()
	if _, ok := s.m[k]; ok {
		delete(s.m, k)
		s.n--
	}
	s.mu.Unlock()
}

// Len counts the flows held.
func (f *Flows) Len() int {
	n := 0
	for i := range f.shards {
		s := &f.shards[i]
		s.mu.Lock()
		n += s.n
		s.mu.Unlock()
	}
	return n
}

// Sweep deletes flows older than maxAge: a handshake whose end natreveal never
// saw (lost events, a server that never answers).
func (f *Flows) Sweep(now time.Time, maxAge time.Duration) int {
	cut := now.Add(-maxAge).Unix()
	n := 0
	for i := range f.shards {
		s := &f.shards[i]
		s.mu.Lock()
		for k, e := range s.m {
			if e.added < cut {
				delete(s.m, k)
				s.n--
				n++
			}
		}
		s.mu.Unlock()
	}
	return n
}
