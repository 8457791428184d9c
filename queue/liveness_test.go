package queue

import (
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// A loop waiting for packets is alive however long it waits; one that holds
// a batch past the interval is named.
func TestStuck(t *testing.T) {
	var lv Liveness
	if got := lv.Stuck(time.Second); got != "" {
		t.Fatalf("not serving: %q", got)
	}
	l := &lane{q: &fakeSocket{}, busy: make([]atomic.Int64, 3)}
	lv.live.Store(&liveness{epoch: time.Now().Add(-time.Minute), lanes: []*lane{l}})
	if got := lv.Stuck(time.Second); got != "" {
		t.Errorf("idle lane: %q", got)
	}
	lv.markBusy(&l.busy[2])
	if got := lv.Stuck(time.Second); got != "" {
		t.Errorf("just busy: %q", got)
	}
	l.busy[2].Store(int64(time.Second) | 1) // took its group 59 s ago
	if got := lv.Stuck(30 * time.Second); !strings.Contains(got, "queue 7 worker 2 busy") {
		t.Errorf("stuck worker: %q", got)
	}
	l.busy[2].Store(0)
	if got := lv.Stuck(30 * time.Second); got != "" {
		t.Errorf("came round: %q", got)
	}
	var none *Liveness
	none.markBusy(&l.busy[0])
	if got := none.Stuck(time.Second); got != "" || l.busy[0].Load() != 0 {
		t.Errorf("nil Liveness: %q", got)
	}
}
