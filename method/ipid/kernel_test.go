package ipid

import (
	"context"
	"net/netip"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/natreveal/natreveal/markbits"
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
