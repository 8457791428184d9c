package handler

// The in-kernel ip-id path (rules/ipidmap.go): the kernel writes the IP-ID
// of atomic SYNs from hosts in its map; the handler writes it only for the
// SYNs the kernel did not (hosts not learned yet), and hands those hosts
// to a HostLearner that adds them to the map.

import (
	"context"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/natreveal/natreveal/markbits"
	"github.com/natreveal/natreveal/packet"
)

// HostLearner takes a host the in-kernel ip-id map should learn. Learn is
// called on the packet path and must not block.
type HostLearner interface {
	Learn(inside netip.Addr, id uint16)
}

// kernStats counts the in-kernel ip-id path.
type kernStats struct {
	byKernel, learned, learnErrors, learnDropped atomic.Uint64
}

// IPIDKernel returns the in-kernel ip-id path's counters: SYNs whose IP-ID
// the kernel wrote, hosts learned into the map, failed and dropped learns.
func (s *Stats) IPIDKernel() (byKernel, learned, learnErrors, learnDropped uint64) {
	k := &s.kern
	return k.byKernel.Load(), k.learned.Load(), k.learnErrors.Load(), k.learnDropped.Load()
}

func (k *kernStats) snapshot(m map[string]uint64) {
	for name, c := range map[string]*atomic.Uint64{
		"ip-id-kernel/by-kernel": &k.byKernel, "ip-id-kernel/learned": &k.learned,
		"ip-id-kernel/learn-errors": &k.learnErrors, "ip-id-kernel/learn-dropped": &k.learnDropped,
	} {
		if v := c.Load(); v != 0 {
			m[name] = v
		}
	}
}

// kernelIPID handles the IP-ID of a SYN from inside when the in-kernel
// path is on. done: the kernel already wrote it (the field holds the
// HOST_ID of an atomic datagram), nothing left to do. Otherwise the host
// is learned (atomic SYNs only: the kernel rule writes no others) and the
// handler writes the IP-ID of this SYN itself.
func (h *Handler) kernelIPID(ip packet.IPv4, inside netip.Addr, id uint16) (done bool) {
	l := h.cfg.IPIDLearn
	if l == nil || !ip.DF || ip.IsFragment() {
		return false
	}
	if ip.ID == id {
		h.stats.kern.byKernel.Add(1)
		return true
	}
	l.Learn(inside, id)
	return false
}

// IPIDLearner adds learned hosts to the in-kernel ip-id map from a
// goroutine of its own, in batches. A host is sent at most once per retry
// interval: SYNs queued meanwhile (the add in flight) do not send it
// again, and a host the map lost (timed out, map full, table replaced by a
// reload) is sent again by its next queued SYN after that.
type IPIDLearner struct {
	add   func([]markbits.HostIDElement) error
	stats *Stats
	ch    chan markbits.HostIDElement
	retry time.Duration
	max   int

	mu   sync.Mutex
	sent map[netip.Addr]time.Time
}

// NewIPIDLearner starts a learner that calls add (rules.AddHostIDs on a
// connection of its own) until ctx ends.
func NewIPIDLearner(ctx context.Context, add func([]markbits.HostIDElement) error, stats *Stats) *IPIDLearner {
	l := &IPIDLearner{
		add: add, stats: stats, ch: make(chan markbits.HostIDElement, 4096),
		retry: time.Second, max: 65536, sent: map[netip.Addr]time.Time{},
	}
	go l.run(ctx)
	return l
}

// Learn implements HostLearner.
func (l *IPIDLearner) Learn(inside netip.Addr, id uint16) {
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
		l.stats.kern.learnDropped.Add(1)
		l.mu.Lock()
		delete(l.sent, inside)
		l.mu.Unlock()
	}
}

// Reset forgets which hosts were sent: after a reload replaced the table
// (and its map), hosts are sent again from their next queued SYN.
func (l *IPIDLearner) Reset() {
	l.mu.Lock()
	clear(l.sent)
	l.mu.Unlock()
}

// maxBatch bounds the elements of one netlink batch.
const maxBatch = 256

func (l *IPIDLearner) run(ctx context.Context) {
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
			l.stats.kern.learned.Add(uint64(len(batch)))
			continue
		}
		// One bad element (map full) fails the whole batch: add them one by
		// one to get in what fits.
		for _, e := range batch {
			if l.add([]markbits.HostIDElement{e}) == nil {
				l.stats.kern.learned.Add(1)
			} else {
				l.stats.kern.learnErrors.Add(1)
			}
		}
	}
}
