package conntrack

import (
	"net/netip"
	"testing"
	"time"

	ct "github.com/ti-mo/conntrack"
	"golang.org/x/sys/unix"
)

// fakeCT holds flows by reply tuple, as the kernel's table does.
type fakeCT struct {
	flows map[ct.Tuple]ct.Flow
	calls int
}

func (f *fakeCT) Get(q ct.Flow) (ct.Flow, error) {
	f.calls++
	q.TupleReply.Zone = 0
	if fl, ok := f.flows[q.TupleReply]; ok {
		return fl, nil
	}
	return ct.Flow{}, unix.ENOENT
}

func TestResolver(t *testing.T) {
	inside := netip.MustParseAddr("100.64.0.2")
	pub := netip.MustParseAddr("192.0.2.1")
	srv := netip.MustParseAddr("198.51.100.1")
	fl := ct.NewFlow(unix.IPPROTO_TCP, 0, inside, srv, 40000, 80, 0, 0)
	fl.TupleReply.IP.DestinationAddress = pub // masquerade
	fl.TupleReply.Proto.DestinationPort = 61000
	f := &fakeCT{flows: map[ct.Tuple]ct.Flow{fl.TupleReply: fl}}
	r := NewResolver(f, 2, time.Minute)
	now := time.Unix(1000, 0)
	r.now = func() time.Time { return now }

	k := Key{Proto: unix.IPPROTO_TCP, Src: netip.AddrPortFrom(pub, 61000), Dst: netip.AddrPortFrom(srv, 80)}
	for i := 0; i < 3; i++ {
		got, err := r.InsideSource(k)
		if err != nil || got != netip.AddrPortFrom(inside, 40000) {
			t.Fatalf("InsideSource = %v, %v; want 100.64.0.2:40000", got, err)
		}
	}
	if f.calls != 1 {
		t.Fatalf("%d ctnetlink queries, want 1 (cached)", f.calls)
	}
	now = now.Add(2 * time.Minute)
	r.InsideSource(k)
	if f.calls != 2 {
		t.Fatalf("expired entry not re-queried: %d calls", f.calls)
	}
	r.Forget(k)
	if r.Len() != 0 {
		t.Fatal("Forget left the entry cached")
	}
	k.Src = netip.AddrPortFrom(pub, 1)
	if _, err := r.InsideSource(k); err != ErrNotFound {
		t.Fatalf("unknown tuple: err %v, want ErrNotFound", err)
	}
}

func TestResolverBounded(t *testing.T) {
	f := &fakeCT{flows: map[ct.Tuple]ct.Flow{}}
	srv := netip.MustParseAddr("198.51.100.1")
	var keys []Key
	for i := 0; i < 10; i++ {
		in := netip.AddrFrom4([4]byte{100, 64, 0, byte(i + 1)})
		fl := ct.NewFlow(unix.IPPROTO_TCP, 0, in, srv, 40000, 80, 0, 0)
		f.flows[fl.TupleReply] = fl
		keys = append(keys, Key{Proto: unix.IPPROTO_TCP, Src: netip.AddrPortFrom(in, 40000), Dst: netip.AddrPortFrom(srv, 80)})
	}
	r := NewResolver(f, 4, time.Minute)
	for _, k := range keys {
		if _, err := r.InsideSource(k); err != nil {
			t.Fatal(err)
		}
	}
	if r.Len() > 4 {
		t.Fatalf("cache holds %d entries, cap 4", r.Len())
	}
}
