package ipid

// The in-kernel path (rules/ipidmap.go): the kernel writes the IP-ID of
// atomic SYNs from hosts in its map; the step writes it only for the SYNs
// the kernel did not (hosts not learned yet), and hands those hosts to a
// HostLearner that adds them to the map.

import (
	"context"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/natreveal/natreveal/markbits"
	"github.com/natreveal/natreveal/method"
	"github.com/natreveal/natreveal/packet"
)

// The in-kernel path's events (Method.Events), by their index in the
// counters.
const (
	ByKernel     = iota // SYNs whose IP-ID the kernel had written
	Learned             // hosts learned into the map
	LearnErrors         // hosts the map refused
	LearnDropped        // hosts dropped: the learner's queue was full
)

// HostLearner takes a host the in-kernel ip-id map should learn. Learn is
// called on the packet path and must not block.
type HostLearner interface {
	Learn(inside netip.Addr, id uint16)
}

// Kernel is the in-kernel path as the packet step sees it.
type Kernel struct {
	Learner HostLearner
	// Events are the method's event counters (Method.Events), one per
	// name: the packet path's stats hold them.
	Events []atomic.Uint64
}

// wrote handles the IP-ID of a SYN from inside. true: the kernel already
// wrote it (the field holds the HOST_ID of an atomic datagram, RFC 6864
// §4), nothing left to do. Otherwise the host is learned (atomic SYNs
// only: the kernel rule writes no others) and the step writes the IP-ID of
// this SYN itself.
func (k *Kernel) wrote(ip packet.IPv4, p method.Packet) bool {
	if !ip.DF || ip.IsFragment() {
		return false
	}
	id := uint16(p.ID)
	if ip.ID == id {
		k.Events[ByKernel].Add(1)
		return true
	}
	k.Learner.Learn(p.Inside, id)
	return false
}

// Learner adds learned hosts to the in-kernel ip-id map from a goroutine
// of its own, in batches. A host is sent at most once per retry interval:
// SYNs queued meanwhile (the add in flight) do not send it again, and a
// host the map lost (timed out, map full, table replaced by a reload) is
// sent again by its next queued SYN after that.
type Learner struct {
	add    func([]markbits.HostIDElement) error
	events []atomic.Uint64
	ch     chan markbits.HostIDElement
	retry  time.Duration
	max    int

	mu   sync.Mutex
	sent map[netip.Addr]time.Time
}

// NewLearner starts a learner that calls add (rules.AddHostIDs on a
// connection of its own) until ctx ends; it counts into events, the
// method's event counters (Method.Events).
func NewLearner(ctx context.Context, add func([]markbits.HostIDElement) error, events []atomic.Uint64) *Learner {
	l := &Learner{
		add: add, events: events, ch: make(chan markbits.HostIDElement, 4096),
		retry: time.Second, max: 65536, sent: map[netip.Addr]time.Time{},
	}
	go l.run(ctx)
	return l
}

// Learn implements HostLearner.
func (l *Learner) Learn(inside netip.Addr, id uint16) {
	now := time.Now()
	l.mu.Lock()
	if t, ok := l.sent[inside]; ok && now.Sub(t) < l.retry {
		l.mu.Unlock()
		return
	}
	if len(l.sent) >= l.max {
		clear(l.sent) // bounded; at worst a host is sent twice
	}
	l.sent[inside] = now
	l.mu.Unlock()
	select {
	case l.ch <- markbits.HostIDElement{Inside: inside, ID: id}:
	default:
		l.events[LearnDropped].Add(1)
		l.mu.Lock()
		delete(l.sent, inside)
		l.mu.Unlock()
	}
}

// Reset forgets which hosts were sent: after a reload replaced the table
// (and its map), hosts are sent again from their next queued SYN.
func (l *Learner) Reset() {
	l.mu.Lock()
	clear(l.sent)
	l.mu.Unlock()
}

// maxBatch bounds the elements of one netlink batch.
const maxBatch = 256

func (l *Learner) run(ctx context.Context) {
	batch := make([]markbits.HostIDElement, 0, maxBatch)
	for {
		select {
		case <-ctx.Done():
			return
		case e := <-l.ch:
			batch = append(batch[:0], e)
		}
	fill:
		for len(batch) < maxBatch {
			select {
			case e := <-l.ch:
				batch = append(batch, e)
			default:
				break fill
			}
		}
		if l.add(batch) == nil {
			l.events[Learned].Add(uint64(len(batch)))
			continue
		}
		// One bad element (map full) fails the whole batch: add them one by
		// one to get in what fits.
		for _, e := range batch {
			if l.add([]markbits.HostIDElement{e}) == nil {
				l.events[Learned].Add(1)
			} else {
				l.events[LearnErrors].Add(1)
			}
		}
	}
}
