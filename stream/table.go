package stream

import (
	"sync"

	"github.com/natreveal/natreveal/packet"
)

// Shards is how many locks a Table spreads its flows over.
const Shards = 64

// FlowKey is the flow a table entry belongs to.
type FlowKey = packet.FlowKey

// Table is a bounded map of per-flow state V, sharded by FlowKey so that
// workers on different flows rarely share a lock. The bound is per shard
// (max/Shards rounded up), so a full table costs no global counter.
type Table[V any] struct {
	// OnDelete, when set, is told of every flow deleted (With, Delete,
	// DeleteIf), under its shard's lock.
	OnDelete func(FlowKey)
	max      int
	shards   [Shards]struct {
		mu sync.Mutex
		m  map[FlowKey]*V
		n  int
	}
}

// Init makes t hold at most max flows.
func (t *Table[V]) Init(max int) {
	t.max = max
	for i := range t.shards {
		t.shards[i].m = make(map[FlowKey]*V)
	}
}

func shardOf(k FlowKey) int {
	a := k.Inside.As16() // IPv4 as ::ffff:a.b.c.d: the same low bytes
	h := uint32(k.InsidePort)*31 + uint32(k.ServerPort)
	h = h*31 + uint32(a[15]) + uint32(a[14])<<8
	return int(h % Shards)
}

// Add stores refresh(old) if k is held, else fresh(); false when k is new
// and its shard is full.
func (t *Table[V]) Add(k FlowKey, fresh func() *V, refresh func(old *V) *V) bool {
	s := &t.shards[shardOf(k)]
	s.mu.Lock()
	defer s.mu.Unlock()
	if e, ok := s.m[k]; ok {
		s.m[k] = refresh(e)
		return true
	}
	if s.n >= (t.max+Shards-1)/Shards {
		return false
	}
	s.m[k] = fresh()
	s.n++
	return true
}

// With runs fn on the state of k under its shard's lock; false when k is
// unknown. fn returns whether the flow is done, which deletes it.
func (t *Table[V]) With(k FlowKey, fn func(*V) (done bool)) bool {
	s := &t.shards[shardOf(k)]
	s.mu.Lock()
	defer s.mu.Unlock()
	e, ok := s.m[k]
	if !ok {
		return false
	}
	if fn(e) {
		delete(s.m, k)
		s.n--
		if t.OnDelete != nil {
			t.OnDelete(k)
		}
	}
	return true
}

// Delete forgets a flow (e.g. on a conntrack destroy event) and reports
// whether it was held.
func (t *Table[V]) Delete(k FlowKey) bool {
	return t.With(k, func(*V) bool { return true })
}

// Len counts the flows held.
func (t *Table[V]) Len() int {
	n := 0
	for i := range t.shards {
		s := &t.shards[i]
		s.mu.Lock()
		n += s.n
		s.mu.Unlock()
	}
	return n
}

// Keys returns the flows for which pick is true.
func (t *Table[V]) Keys(pick func(*V) bool) []FlowKey {
	var ks []FlowKey
	for i := range t.shards {
		s := &t.shards[i]
		s.mu.Lock()
		for k, e := range s.m {
			if pick(e) {
				ks = append(ks, k)
			}
		}
		s.mu.Unlock()
	}
	return ks
}

// DeleteIf deletes every flow for which old is true and counts them.
func (t *Table[V]) DeleteIf(old func(*V) bool) int {
	n := 0
	for i := range t.shards {
		s := &t.shards[i]
		s.mu.Lock()
		for k, e := range s.m {
			if old(e) {
				delete(s.m, k)
				s.n--
				n++
				if t.OnDelete != nil {
					t.OnDelete(k)
				}
			}
		}
		s.mu.Unlock()
	}
	return n
}
