package stream

import (
	"testing"
	"time"

	"github.com/natreveal/natreveal/packet"
	"github.com/natreveal/natreveal/queue"
)

// Lost destroy events must not hold state for good (a full table turns new
// selected flows away): the sweep frees tombstones past their TTL, and old
// flows and handed-off tombstones whose tuple conntrack no longer holds.
func TestSweepFreesWhatConntrackForgot(t *testing.T) {
	var st queue.Counters
	e := New(Config{HTTPHeader: true, HTTPSel: []Selector{{Port: 80}}, HTTPFields: HTTPFields{XFF: true},
		IDBits: 16, SelectBit: 0x10, MaxSelected: 64}, &st)
	now := time.Unix(1_000_000, 0)
	e.now = func() time.Time { return now }
	key := func(port uint16) FlowKey {
		return FlowKey{Proto: 6, Inside: selClient, InsidePort: port, Server: selServer, ServerPort: 80}
	}
	syn := func(port uint16) {
		b, _, _ := seg(-1, 0, packet.FlagSYN, nil)
		pv, _ := packet.Parse(b, len(b))
		if v := e.Original(key(port), 7, true, &pv, b, queue.Meta{}, 1500, queue.Verdict{}); v.Drop {
			t.Fatalf("SYN %d dropped", port)
		}
	}
	syn(1) // conntrack keeps it
	syn(2) // its destroy event was lost
	e.bury(key(3), 1, false)
	e.bury(key(4), 1, true) // handed to the kernel, mark not cleared: conntrack keeps it
	e.bury(key(5), 1, true) // ... and its destroy event was lost
	held := func(k FlowKey) bool { return k.InsidePort == 1 || k.InsidePort == 4 }

	now = now.Add(time.Minute)
	syn(6) // young: not asked about
	if n := e.Sweep(2*time.Minute, held); n != 0 {
		t.Fatalf("swept %d within the age and the TTL", n)
	}
	now = now.Add(110 * time.Second) // flows 1, 2: 170 s; tombstones past TombstoneTTL
	if n := e.Sweep(2*time.Minute, held); n != 3 {
		t.Errorf("swept %d, want 3: flow 2, tombstone 3, tombstone 5", n)
	}
	for port, want := range map[uint16]bool{1: true, 2: false, 6: true} {
		if got := e.streams.With(key(port), func(*stream) bool { return false }); got != want {
			t.Errorf("flow %d held %v, want %v", port, got, want)
		}
	}
	for port, want := range map[uint16]bool{3: false, 4: true, 5: false} {
		if got := e.tombs.With(key(port), func(*tomb) bool { return false }); got != want {
			t.Errorf("tombstone %d held %v, want %v", port, got, want)
		}
	}
	if st.Load(queue.SelSwept) != 2 {
		t.Errorf("select-swept %d, want 2 (flow 2, tombstone 5)", st.Load(queue.SelSwept))
	}
	if e.Len() != 2 {
		t.Errorf("%d flows held, want 2: the swept one's place given back", e.Len())
	}
	// Without a dump, only expired tombstones go.
	e.bury(key(7), 1, false)
	now = now.Add(TombstoneTTL)
	if n := e.Sweep(2*time.Minute, nil); n != 1 || e.Len() != 2 {
		t.Errorf("without a dump: swept %d (want the one expired tombstone), %d flows held", n, e.Len())
	}
}
