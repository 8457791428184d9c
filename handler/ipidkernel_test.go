package handler

import (
	"context"
	"net/netip"
	"sync"
	"testing"
	"time"

	"github.com/natreveal/natreveal/markbits"
	"github.com/natreveal/natreveal/method/ipid"
	"github.com/natreveal/natreveal/packet"
)

type learned struct {
	mu  sync.Mutex
	got []markbits.HostIDElement
}

func (l *learned) Learn(a netip.Addr, id uint16) {
	l.mu.Lock()
	l.got = append(l.got, markbits.HostIDElement{Inside: a, ID: id})
	l.mu.Unlock()
}

// With the in-kernel path, a SYN whose IP-ID the kernel already wrote is
// left alone; one it did not write (host unknown) is written and learned.
func TestHandlerIPIDKernel(t *testing.T) {
	l := &learned{}
	h, st := newHandler(testConfig{IPID: true, IPIDScope: "syn", IPIDLearn: l})
	buf, n := build(t, seg{src: client, dst: server, sport: 40003, dport: 80, syn: true, seq: 1})
	if v := h.Handle(buf, n, Meta{}); v.Len != n {
		t.Fatalf("unknown host's SYN not rewritten: %+v", v)
	}
	if id, atomic, _ := ipid.IPID(buf[:n]); id != 7 || !atomic {
		t.Fatalf("IP-ID %#x", id)
	}
	check(t, buf[:n])
	if len(l.got) != 1 || l.got[0] != (markbits.HostIDElement{Inside: client, ID: 7}) {
		t.Fatalf("learned %v", l.got)
	}
	// The kernel wrote it: nothing to do, nothing learned.
	if v := h.Handle(buf, n, Meta{}); v.Len != 0 {
		t.Errorf("kernel-written SYN rewritten again: %+v", v)
	}
	if len(l.got) != 1 || st.Snapshot()["ip-id-kernel/by-kernel"] != 1 || st.Result("ip-id", packet.Written) != 1 {
		t.Errorf("learned %v, counters %v", l.got, st.Snapshot())
	}
}

// The learner sends a host once per retry interval, in batches, and adds
// one by one when a batch fails (a full map).
func TestIPIDLearner(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	st := &Stats{}
	var mu sync.Mutex
	var calls [][]markbits.HostIDElement
	l := NewIPIDLearner(ctx, func(els []markbits.HostIDElement) error {
		mu.Lock()
		defer mu.Unlock()
		calls = append(calls, append([]markbits.HostIDElement(nil), els...))
		if len(els) > 1 || els[0].ID == 9 {
			return context.DeadlineExceeded // the batch fails, and host 9 alone
		}
		return nil
	}, st)
	// A retry interval no pause of a loaded machine reaches: the duplicate
	// below is deduplicated, and the second send of a only follows Reset.
	l.retry = time.Hour
	a, b := netip.MustParseAddr("100.64.0.8"), netip.MustParseAddr("100.64.0.9")
	l.Learn(a, 8)
	l.Learn(b, 9)
	l.Learn(a, 8) // deduplicated
	deadline := time.Now().Add(30 * time.Second)
	for st.Snapshot()["ip-id-kernel/learned"]+st.Snapshot()["ip-id-kernel/learn-errors"] < 2 && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	s := st.Snapshot()
	if s["ip-id-kernel/learned"] != 1 || s["ip-id-kernel/learn-errors"] != 1 {
		t.Errorf("counters %v, calls %v", s, calls)
	}
	l.Reset()
	l.Learn(a, 8) // sent again after a reset
	deadline = time.Now().Add(30 * time.Second)
	for st.Snapshot()["ip-id-kernel/learned"] < 2 && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	if s := st.Snapshot(); s["ip-id-kernel/learned"] != 2 {
		t.Errorf("after Reset: counters %v", s)
	}
}
