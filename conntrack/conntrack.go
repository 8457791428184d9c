// Package conntrack gives the inside source of a flow back when natreveal sees
// its packets after the kernel's source NAT, and reports destroyed flows so
// per-flow state is freed. The ctnetlink edge is the small Getter interface;
// *github.com/ti-mo/conntrack.Conn satisfies it.
package conntrack

import (
	"errors"
	"fmt"
	"net/netip"
	"sync"
	"time"

	ct "github.com/ti-mo/conntrack"
)

// Getter queries one conntrack entry.
type Getter interface {
	Get(f ct.Flow) (ct.Flow, error)
}

// Key identifies a translated flow as it leaves the NAT: protocol, public
// source and destination.
type Key struct {
	Proto uint8
	Src   netip.AddrPort // after source NAT
	Dst   netip.AddrPort
}

type entry struct {
	inside  netip.AddrPort
	expires time.Time
}

// Resolver maps post-NAT tuples to inside sources through ctnetlink, with a
// bounded cache in front.
type Resolver struct {
	get Getter
	ttl time.Duration
	max int
	now func() time.Time

	mu    sync.Mutex
	cache map[Key]entry
}

// NewResolver caches at most max answers for ttl each.
func NewResolver(g Getter, max int, ttl time.Duration) *Resolver {
	return &Resolver{get: g, ttl: ttl, max: max, now: time.Now, cache: make(map[Key]entry)}
}

// ErrNotFound: conntrack has no entry for the tuple (yet: an entry becomes
// visible to ctnetlink only once the kernel confirms it, after the first
// packet has left).
var ErrNotFound = errors.New("conntrack: no such flow")

// InsideSource returns the original source of the flow that left as k.
func (r *Resolver) InsideSource(k Key) (netip.AddrPort, error) {
	now := r.now()
	r.mu.Lock()
	if e, ok := r.cache[k]; ok && now.Before(e.expires) {
		r.mu.Unlock()
		return e.inside, nil
	}
	r.mu.Unlock()

	// The flow left as k, so the server's answers come back on the reply
	// tuple k.Dst -> k.Src; ctnetlink looks entries up by either tuple.
	var q ct.Flow
	q.TupleReply.IP.SourceAddress = k.Dst.Addr()
	q.TupleReply.IP.DestinationAddress = k.Src.Addr()
	q.TupleReply.Proto.Protocol = k.Proto
	q.TupleReply.Proto.SourcePort = k.Dst.Port()
	q.TupleReply.Proto.DestinationPort = k.Src.Port()
	f, err := r.get.Get(q)
	if err != nil {
		if isNotFound(err) {
			return netip.AddrPort{}, ErrNotFound
		}
		return netip.AddrPort{}, fmt.Errorf("conntrack: get %v: %w", k, err)
	}
	in := netip.AddrPortFrom(f.TupleOrig.IP.SourceAddress, f.TupleOrig.Proto.SourcePort)

	r.mu.Lock()
	if len(r.cache) >= r.max {
		r.evictExpiredLocked(now)
		if len(r.cache) >= r.max {
			for old := range r.cache { // full of live entries: drop one at random
				delete(r.cache, old)
				break
			}
		}
	}
	r.cache[k] = entry{inside: in, expires: now.Add(r.ttl)}
	r.mu.Unlock()
	return in, nil
}

// Forget drops the cached answer for a flow, e.g. on its destroy event.
func (r *Resolver) Forget(k Key) {
	r.mu.Lock()
	delete(r.cache, k)
	r.mu.Unlock()
}

// Len is the number of cached answers.
func (r *Resolver) Len() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.cache)
}

func (r *Resolver) evictExpiredLocked(now time.Time) {
	for k, e := range r.cache {
		if !now.Before(e.expires) {
			delete(r.cache, k)
		}
	}
}
