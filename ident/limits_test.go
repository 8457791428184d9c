package ident

import (
	"bufio"
	"errors"
	"net"
	"net/netip"
	"testing"
	"time"
)

// dialFrom is dial from a chosen loopback address (Linux routes all of
// 127.0.0.0/8 to lo).
func dialFrom(t *testing.T, from, addr string) *client {
	t.Helper()
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(from)}, Timeout: 5 * time.Second}
	c, err := d.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	c.SetDeadline(time.Now().Add(30 * time.Second))
	return &client{t, c, bufio.NewReader(c)}
}

// anyLookup answers every query with HOST_ID 7.
func anyLookup(netip.AddrPort, netip.AddrPort) (uint32, bool, error) { return 7, true, nil }

// One source holds at most MaxPerSource connections; others keep theirs.
func TestServerMaxPerSource(t *testing.T) {
	s := &Server{Lookup: anyLookup, MaxPerSource: 2, Timeout: time.Minute}
	addr, _ := startServer(t, s)

	a, b := dialFrom(t, "127.0.0.1", addr), dialFrom(t, "127.0.0.1", addr)
	a.ask("40000, 443\r\n")
	b.ask("40000, 443\r\n")
	if c := dialFrom(t, "127.0.0.1", addr); !c.closed() {
		t.Fatal("third connection of one source served")
	}
	if n := s.Stats.RefusedSource.Load(); n != 1 {
		t.Errorf("refused_source = %d, want 1", n)
	}
	if got := dialFrom(t, "127.0.0.2", addr).ask("40000, 443\r\n"); got != "40000, 443 : USERID : OTHER :7\r\n" {
		t.Errorf("another source: %q", got)
	}

	// The slot frees when the source closes one.
	a.c.Close()
	deadline := time.Now().Add(5 * time.Second)
	for {
		s.mu.Lock()
		n := s.sources[netip.MustParsePrefix("127.0.0.1/32")]
		s.mu.Unlock()
		if n < 2 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("source slot not released")
		}
		time.Sleep(5 * time.Millisecond)
	}
	if got := dialFrom(t, "127.0.0.1", addr).ask("40001, 443\r\n"); got != "40001, 443 : USERID : OTHER :7\r\n" {
		t.Errorf("after a slot freed: %q", got)
	}
}

// Issue 17 item 10: 64 idle connections from one address (then MaxConns)
// locked every other querier out. With the defaults, one source holds
// DefaultMaxPerSource of them and the others are answered.
func TestServerIdleFloodFromOneSource(t *testing.T) {
	s := &Server{Lookup: anyLookup}
	addr, _ := startServer(t, s)
	var idle []*client
	for range DefaultMaxConns {
		idle = append(idle, dialFrom(t, "127.0.0.3", addr))
	}
	// The flood is accepted (and refused past the limit) before the queries.
	deadline := time.Now().Add(10 * time.Second)
	for s.Stats.Conns.Load()+s.Stats.RefusedSource.Load() < DefaultMaxConns {
		if time.Now().After(deadline) {
			t.Fatalf("accepted %d, refused %d", s.Stats.Conns.Load(), s.Stats.RefusedSource.Load())
		}
		time.Sleep(5 * time.Millisecond)
	}
	if n := s.Stats.Conns.Load(); n != DefaultMaxPerSource {
		t.Errorf("served %d idle connections of one source, want %d", n, DefaultMaxPerSource)
	}
	for i := range 10 {
		from := "127.0.0.4"
		if i%2 == 1 {
			from = "127.0.0.5"
		}
		if got := dialFrom(t, from, addr).ask("40000, 443\r\n"); got != "40000, 443 : USERID : OTHER :7\r\n" {
			t.Errorf("query %d from %s: %q", i, from, got)
		}
	}
	_ = idle
}

// IPv6 sources count by /64: one host usually holds a whole /64.
func TestSourceKey(t *testing.T) {
	for _, tc := range []struct{ addr, want string }{
		{"192.0.2.7:1234", "192.0.2.7/32"},
		{"[::ffff:192.0.2.7]:1234", "192.0.2.7/32"},
		{"[2001:db8:1:2:3:4:5:6]:1234", "2001:db8:1:2::/64"},
		{"[fe80::1%eth0]:1234", "fe80::/64"},
	} {
		a, err := net.ResolveTCPAddr("tcp", tc.addr)
		if err != nil {
			t.Fatal(err)
		}
		got, ok := sourceKey(fakeConn{remote: a})
		if !ok || got.String() != tc.want {
			t.Errorf("sourceKey(%s) = %v, %v; want %s", tc.addr, got, ok, tc.want)
		}
	}
}

type fakeConn struct {
	net.Conn
	remote net.Addr
}

func (c fakeConn) RemoteAddr() net.Addr { return c.remote }

// NATLookup answers only for connections whose original source is an inside
// host: the NAT's own connections (original source: its public address)
// and everything else are NO-USER (issue 17 item 10).
func TestNATLookup(t *testing.T) {
	pub := netip.MustParseAddrPort("192.0.2.1:40000")
	srv := netip.MustParseAddrPort("198.51.100.1:8080")
	conns := map[uint16]netip.AddrPort{
		40000: netip.MustParseAddrPort("100.64.0.2:51000"),           // an inside host
		40001: pub,                                                   // the NAT's own
		40002: netip.MustParseAddrPort("203.0.113.9:51000"),          // forwarded from elsewhere
		40003: netip.MustParseAddrPort("[::ffff:100.64.0.3]:51000"),  // inside, mapped form
		40004: netip.MustParseAddrPort("[2001:db8:1::2]:51000"),      // inside IPv6
		40005: netip.MustParseAddrPort("[2001:db8:1::2%eth0]:51000"), // with a zone
	}
	boom := errors.New("ctnetlink: boom")
	resolve := func(local, remote netip.AddrPort) (netip.AddrPort, bool, error) {
		if local.Port() == 40009 {
			return netip.AddrPort{}, false, boom
		}
		in, ok := conns[local.Port()]
		return in, ok, nil
	}
	inside := []netip.Prefix{netip.MustParsePrefix("100.64.0.0/24"), netip.MustParsePrefix("2001:db8:1::/64")}
	var asked []netip.Addr
	hostID := func(a netip.Addr) (uint32, bool) {
		asked = append(asked, a)
		return uint32(a.As16()[15]), true
	}
	lookup := NATLookup(resolve, inside, hostID)
	for _, tc := range []struct {
		port uint16
		id   uint32
		ok   bool
	}{
		{40000, 2, true},
		{40001, 0, false},
		{40002, 0, false},
		{40003, 3, true},
		{40004, 2, true},
		{40005, 2, true},
		{40008, 0, false}, // no such connection
	} {
		id, ok, err := lookup(netip.AddrPortFrom(pub.Addr(), tc.port), srv)
		if err != nil || id != tc.id || ok != tc.ok {
			t.Errorf("port %d: %d, %v, %v; want %d, %v", tc.port, id, ok, err, tc.id, tc.ok)
		}
	}
	if _, _, err := lookup(netip.AddrPortFrom(pub.Addr(), 40009), srv); !errors.Is(err, boom) {
		t.Errorf("failing resolve: err = %v", err)
	}
	for _, a := range asked {
		if !a.Is4() && !a.Is6() || a.Is4In6() || a.Zone() != "" || a == pub.Addr() {
			t.Errorf("HOST_ID asked for %v", a)
		}
	}
	// Through a Server: the NAT's own connection is NO-USER on the wire.
	s := &Server{Lookup: lookup}
	if r := s.answer([]byte("40001, 8080\r\n"), pub.Addr(), srv.Addr(), true); r.Error != NoUser {
		t.Errorf("the NAT's own connection: %+v, want NO-USER", r)
	}
}
