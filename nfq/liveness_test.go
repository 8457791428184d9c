package nfq

import (
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// A loop waiting for packets is alive however long it waits; one that holds
// a batch past the interval is named.
func TestStuck(t *testing.T) {
	var st Stats
	if got := st.Stuck(time.Second); got != "" {
		t.Fatalf("not serving: %q", got)
	}
	l := &lane{q: &nlQueue{num: 3}, busy: make([]atomic.Int64, 3)}
	st.live.Store(&liveness{epoch: time.Now().Add(-time.Minute), lanes: []*lane{l}})
	if got := st.Stuck(time.Second); got != "" {
		t.Errorf("idle lane: %q", got)
	}
	st.markBusy(&l.busy[2])
	if got := st.Stuck(time.Second); got != "" {
		t.Errorf("just busy: %q", got)
	}
	l.busy[2].Store(int64(time.Second) | 1) // took its group 59 s ago
	if got := st.Stuck(30 * time.Second); !strings.Contains(got, "queue 3 worker 2 busy") {
		t.Errorf("stuck worker: %q", got)
	}
	l.busy[2].Store(0)
	if got := st.Stuck(30 * time.Second); got != "" {
		t.Errorf("came round: %q", got)
	}
}
