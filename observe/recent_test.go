package observe

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"path/filepath"
	"testing"
	"time"

	"github.com/natreveal/natreveal/reveal"
)

func rec(t0 time.Time, src string, id string, m reveal.Method) reveal.Record {
	return reveal.Record{Time: t0, Src: netip.MustParseAddrPort(src), Proto: "tcp", DstPort: 22, Method: m, HostID: id}
}

func TestRecent(t *testing.T) {
	t0 := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	r := NewRecent(2, time.Minute)
	ap := netip.MustParseAddrPort
	r.Add(rec(t0, "192.0.2.1:40000", "0x0002", reveal.TCPOption))
	r.Add(rec(t0, "192.0.2.1:40000", "0x0002", reveal.IPID)) // same packet, second method: first kept
	r.Add(reveal.Record{Time: t0, Src: ap("192.0.2.1:0"), Proto: "hip", Method: reveal.HIP, HostID: "2001:db8::1"})
	r.Add(rec(t0, "192.0.2.1:40001", "", "")) // no HOST_ID
	if s, ok := r.Lookup(ap("192.0.2.1:40000"), t0); !ok || s.HostID != "0x0002" || s.Method != reveal.TCPOption {
		t.Fatalf("lookup: %+v %v, want 0x0002 tcp-option", s, ok)
	}
	if r.Len() != 1 {
		t.Fatalf("len %d, want 1 (no port, no HOST_ID: ignored)", r.Len())
	}
	// An IPv4-mapped query finds the IPv4 entry.
	if _, ok := r.Lookup(ap("[::ffff:192.0.2.1]:40000"), t0); !ok {
		t.Error("mapped lookup failed")
	}
	// A newer connection from the same source replaces the entry.
	r.Add(rec(t0.Add(time.Second), "192.0.2.1:40000", "0x0003", reveal.TCPOption))
	if s, _ := r.Lookup(ap("192.0.2.1:40000"), t0); s.HostID != "0x0003" {
		t.Errorf("after reuse: %s, want 0x0003", s.HostID)
	}
	// Bounded in entries: the least recently added goes.
	r.Add(rec(t0.Add(2*time.Second), "192.0.2.1:40002", "0x0004", reveal.TCPOption))
	r.Add(rec(t0.Add(3*time.Second), "192.0.2.1:40003", "0x0005", reveal.TCPOption))
	if _, ok := r.Lookup(ap("192.0.2.1:40000"), t0.Add(3*time.Second)); ok || r.Len() != 2 {
		t.Errorf("over max: oldest kept (len %d)", r.Len())
	}
	// Bounded in age.
	if _, ok := r.Lookup(ap("192.0.2.1:40003"), t0.Add(3*time.Second+time.Minute)); !ok {
		t.Error("entry exactly ttl old dropped")
	}
	if _, ok := r.Lookup(ap("192.0.2.1:40003"), t0.Add(4*time.Second+time.Minute)); ok || r.Len() != 0 {
		t.Errorf("expired entry still there (len %d)", r.Len())
	}
}

func TestControl(t *testing.T) {
	path := filepath.Join(t.TempDir(), "observe.sock")
	ln, err := net.Listen("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	r := NewRecent(0, 0)
	now := time.Now().UTC()
	r.Add(rec(now, "192.0.2.1:40000", "0x0002", reveal.TCPOption))
	go ServeControl(ln, r)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	s, err := Ask(ctx, path, netip.MustParseAddrPort("192.0.2.1:40000"))
	if err != nil || s.HostID != "0x0002" || s.Method != reveal.TCPOption || s.DstPort != 22 || !s.Time.Equal(now) {
		t.Errorf("ask: %+v, %v", s, err)
	}
	if _, err := Ask(ctx, path, netip.MustParseAddrPort("192.0.2.1:40001")); !errors.Is(err, ErrUnknown) {
		t.Errorf("unknown source: %v, want ErrUnknown", err)
	}
	if _, err := Ask(ctx, filepath.Join(t.TempDir(), "none.sock"), netip.MustParseAddrPort("192.0.2.1:1")); err == nil || errors.Is(err, ErrUnknown) {
		t.Errorf("no socket: %v, want a connection error", err)
	}
}
