package handler

import (
	"net/netip"
	"sync"
	"testing"

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

// The in-kernel path's events are named "ip-id-kernel/<event>" in the
// snapshot (and as metrics' event label), as before they moved to the
// method.
func TestIPIDKernelEventNames(t *testing.T) {
	st := &Stats{}
	ev := st.Events(ipid.Name)
	for i, name := range []string{"by-kernel", "learned", "learn-errors", "learn-dropped"} {
		ev[i].Add(uint64(i + 1))
		if got := st.Snapshot()["ip-id-kernel/"+name]; got != uint64(i+1) {
			t.Errorf("%s: %d in %v", name, got, st.Snapshot())
		}
		if got := st.Event(ipid.Name, name); got != uint64(i+1) {
			t.Errorf("Event(%s) = %d", name, got)
		}
	}
}
