package ipid

import (
	"context"
	"net/netip"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/natreveal/natreveal/internal/packettest"
	"github.com/natreveal/natreveal/markbits"
	"github.com/natreveal/natreveal/method"
	"github.com/natreveal/natreveal/packet"
)

// The learner sends a host once per retry interval, in batches, and adds
// one by one when a batch fails (a full map).
func TestIPIDLearner(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	ev := make([]atomic.Uint64, len(Method.Events.Names))
	counts := func() (c []uint64) {
		for i := range ev {
			c = append(c, ev[i].Load())
		}
		return c
	}
	var mu sync.Mutex
	var calls [][]markbits.HostIDElement
	l := NewLearner(ctx, func(els []markbits.HostIDElement) error {
		mu.Lock()
		defer mu.Unlock()
		calls = append(calls, append([]markbits.HostIDElement(nil), els...))
		if len(els) > 1 || els[0].ID == 9 {
			return context.DeadlineExceeded // the batch fails, and host 9 alone
		}
		return nil
	}, ev)
	// A retry interval no pause of a loaded machine reaches: the duplicate
	// below is deduplicated, and the second send of a only follows Reset.
	l.retry = time.Hour
	a, b := netip.MustParseAddr("100.64.0.8"), netip.MustParseAddr("100.64.0.9")
	l.Learn(a, 8)
	l.Learn(b, 9)
	l.Learn(a, 8) // deduplicated
	deadline := time.Now().Add(30 * time.Second)
	for ev[Learned].Load()+ev[LearnErrors].Load() < 2 && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	if ev[Learned].Load() != 1 || ev[LearnErrors].Load() != 1 {
		t.Errorf("counters %v, calls %v", counts(), calls)
	}
	l.Reset()
	l.Learn(a, 8) // sent again after a reset
	deadline = time.Now().Add(30 * time.Second)
	for ev[Learned].Load() < 2 && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	if ev[Learned].Load() != 2 {
		t.Errorf("after Reset: counters %v", counts())
	}
}

type learnedHosts []markbits.HostIDElement

func (l *learnedHosts) Learn(a netip.Addr, id uint16) {
	*l = append(*l, markbits.HostIDElement{Inside: a, ID: id})
}

// The step with the in-kernel path: a SYN whose IP-ID the kernel wrote is
// skipped and counted by-kernel; another is written and its host learned;
// a fragment is neither learned nor skipped.
func TestStepKernel(t *testing.T) {
	var l learnedHosts
	k := &Kernel{Learner: &l, Events: make([]atomic.Uint64, len(Method.Events.Names))}
	s := Step{Scope: ScopeSYN, Kernel: k}
	host := netip.MustParseAddr("100.64.0.7")
	p := method.Packet{ID: 0x1234, Inside: host, SYN: true, Tracked: true}

	pkt := packettest.Build(t, packettest.IPHdr(), packettest.SYNHdr(packettest.LinuxSYN()...), nil) // IP-ID 0x1234
	if r, n := s.Rewrite(packettest.PV(pkt, len(pkt)), pkt, p); r != method.Skip || n != 0 {
		t.Errorf("kernel-written SYN: %v %d, want skip", r, n)
	}
	if k.Events[ByKernel].Load() != 1 || len(l) != 0 {
		t.Errorf("by-kernel %d, learned %v", k.Events[ByKernel].Load(), l)
	}

	p.ID = 0x0007
	if r, n := s.Rewrite(packettest.PV(pkt, len(pkt)), pkt, p); r != packet.Written || n != len(pkt) {
		t.Errorf("unknown host's SYN: %v %d, want written", r, n)
	}
	if len(l) != 1 || l[0] != (markbits.HostIDElement{Inside: host, ID: 7}) || k.Events[ByKernel].Load() != 1 {
		t.Errorf("learned %v, by-kernel %d", l, k.Events[ByKernel].Load())
	}

	ip := packettest.IPHdr()
	ip.Flags = 0 // not atomic: the kernel rule writes no such SYN
	pkt = packettest.Build(t, ip, packettest.SYNHdr(), nil)
	if r, _ := s.Rewrite(packettest.PV(pkt, len(pkt)), pkt, p); r == method.Skip || len(l) != 1 {
		t.Errorf("non-atomic SYN: %v, learned %v", r, l)
	}
}
