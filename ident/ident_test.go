package ident

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"
)

func TestParseQuery(t *testing.T) {
	for _, tc := range []struct {
		in     string
		sp, cp uint16
		ok     bool
	}{
		{"6191, 23\r\n", 6191, 23, true}, // RFC 1413 §4 example
		{"6191,23", 6191, 23, true},
		{"6191 , 23\n", 6191, 23, true},            // LF alone
		{" \t6191\t,\t 23 \t\r\n", 6191, 23, true}, // white space around tokens (note 1)
		{"1, 65535\r\n", 1, 65535, true},
		{"00080, 00001", 80, 1, true}, // 5 digits with leading zeros
		{"65535,1", 65535, 1, true},

		// INVALID-PORT; the ports are what can be echoed.
		{"", 0, 0, false},
		{"\r\n", 0, 0, false},
		{"garbage\r\n", 0, 0, false},
		{"80 23\r\n", 0, 0, false},     // missing comma
		{"80\r\n", 80, 0, false},       // missing comma and second port
		{"0, 23\r\n", 0, 23, false},    // 0 is out of range
		{"80, 0\r\n", 80, 0, false},    // 0 is out of range
		{"65536, 23", 0, 23, false},    // above 65535
		{"80, 99999", 80, 0, false},    // above 65535
		{"080080, 23", 0, 23, false},   // more than 5 digits
		{"-80, 23", 0, 23, false},      // negative
		{"+80, 23", 0, 23, false},      // sign
		{"80.0, 23", 0, 23, false},     // real
		{"8 0, 23", 0, 23, false},      // space inside a token
		{"80, 23, 5", 80, 0, false},    // two commas
		{"80, ", 80, 0, false},         // empty second field
		{", 23", 0, 23, false},         // empty first field
		{"80, 23\r\r\n", 80, 0, false}, // stray CR
		{"80\x00, 23", 0, 23, false},
		{"0x50, 23", 0, 23, false},
		{"８０, 23", 0, 23, false}, // full-width digits
	} {
		sp, cp, err := ParseQuery([]byte(tc.in))
		if (err == nil) != tc.ok || sp != tc.sp || cp != tc.cp {
			t.Errorf("ParseQuery(%q) = %d, %d, %v; want %d, %d, ok=%v", tc.in, sp, cp, err, tc.sp, tc.cp, tc.ok)
		}
		if err != nil && !errors.Is(err, ErrInvalidPort) {
			t.Errorf("ParseQuery(%q): %v does not wrap ErrInvalidPort", tc.in, err)
		}
	}
}

func TestAppendQuery(t *testing.T) {
	if got := string(AppendQuery(nil, 6191, 23)); got != "6191, 23\r\n" {
		t.Fatalf("AppendQuery = %q", got)
	}
}

func TestAppendReply(t *testing.T) {
	for _, tc := range []struct {
		r    Reply
		want string
	}{
		{HostIDReply(6193, 23, "4660"), "6193, 23 : USERID : OTHER :4660\r\n"},
		{ErrorReply(6195, 23, NoUser), "6195, 23 : ERROR : NO-USER\r\n"}, // RFC 1413 §4 example
		{ErrorReply(0, 0, InvalidPort), "0, 0 : ERROR : INVALID-PORT\r\n"},
		{ErrorReply(1, 2, UnknownError), "1, 2 : ERROR : UNKNOWN-ERROR\r\n"},
		{ErrorReply(1, 2, HiddenUser), "1, 2 : ERROR : HIDDEN-USER\r\n"},
		{Reply{ServerPort: 1, ClientPort: 2, OpSys: "UNIX", Charset: "US-ASCII", UserID: " stjohns"}, "1, 2 : USERID : UNIX,US-ASCII : stjohns\r\n"},
		{Reply{ServerPort: 1, ClientPort: 2, UserID: "x"}, "1, 2 : USERID : OTHER :x\r\n"},
	} {
		got, err := AppendReply([]byte("prefix|"), tc.r)
		if err != nil || string(got) != "prefix|"+tc.want {
			t.Errorf("AppendReply(%+v) = %q, %v; want %q", tc.r, got, err, tc.want)
			continue
		}
		back, err := ParseReply(got[len("prefix|"):])
		want := tc.r
		if want.Error == "" && want.OpSys == "" {
			want.OpSys = OpSysOther
		}
		if err != nil || back != want {
			t.Errorf("ParseReply(%q) = %+v, %v; want %+v", got, back, err, want)
		}
	}
}

func TestAppendReplyInvalid(t *testing.T) {
	for _, r := range []Reply{
		HostIDReply(1, 2, ""),
		HostIDReply(1, 2, "a\r\nb"),
		HostIDReply(1, 2, "a\x00"),
		HostIDReply(1, 2, strings.Repeat("x", MaxUserIDLen+1)),
		ErrorReply(1, 2, "BAD TYPE"),
		ErrorReply(1, 2, "X:Y"),
		ErrorReply(1, 2, ErrorType(strings.Repeat("X", MaxTokenLen+1))),
		{ServerPort: 1, ClientPort: 2, OpSys: "UN,IX", UserID: "x"},
		{ServerPort: 1, ClientPort: 2, Charset: "a b", UserID: "x"},
	} {
		got, err := AppendReply([]byte("p"), r)
		if err == nil || !errors.Is(err, ErrBadReply) || string(got) != "p" {
			t.Errorf("AppendReply(%+v) = %q, %v; want ErrBadReply and dst unchanged", r, got, err)
		}
	}
	if _, err := AppendReply(nil, HostIDReply(1, 2, strings.Repeat("x", MaxUserIDLen))); err != nil {
		t.Errorf("512-octet user-id: %v", err)
	}
}

func TestParseReply(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want Reply
		ok   bool
	}{
		{"6193, 23 : USERID : UNIX : stjohns\r\n", Reply{ServerPort: 6193, ClientPort: 23, OpSys: "UNIX", UserID: " stjohns"}, true},
		{"6195, 23 : ERROR : NO-USER\r\n", ErrorReply(6195, 23, NoUser), true},
		{" 6195 ,23:error:X-MINE \n", ErrorReply(6195, 23, "X-MINE"), true},
		{"1,2:USERID:OTHER , UTF-8:a:b c\r\n", Reply{ServerPort: 1, ClientPort: 2, OpSys: "OTHER", Charset: "UTF-8", UserID: "a:b c"}, true},
		{"0, 0 : ERROR : INVALID-PORT\r\n", ErrorReply(0, 0, InvalidPort), true},
		{"1, 2 : USERID : OTHER :\r\n", Reply{}, false},
		{"1, 2 : USERID : OTHER\r\n", Reply{}, false},
		{"1, 2 : MAYBE : x\r\n", Reply{}, false},
		{"1, 2\r\n", Reply{}, false},
		{"65536, 2 : ERROR : NO-USER\r\n", Reply{}, false},
		{"1, 2 : ERROR : \r\n", Reply{}, false},
		{"1, 2 : USERID : : x\r\n", Reply{}, false},
		{"1, 2 : USERID : OTHER :a\x00b\r\n", Reply{}, false},
	} {
		got, err := ParseReply([]byte(tc.in))
		if (err == nil) != tc.ok || (tc.ok && got != tc.want) {
			t.Errorf("ParseReply(%q) = %+v, %v; want %+v ok=%v", tc.in, got, err, tc.want, tc.ok)
		}
		if err != nil && !errors.Is(err, ErrBadReply) {
			t.Errorf("ParseReply(%q): %v does not wrap ErrBadReply", tc.in, err)
		}
	}
}

func TestFormat(t *testing.T) {
	if got := FormatDecimal(0x1234); got != "4660" {
		t.Errorf("FormatDecimal = %q", got)
	}
	if got := FormatHex(0x1234); got != "0x1234" {
		t.Errorf("FormatHex = %q", got)
	}
	if got := FormatDecimal(0xffffffff); got != "4294967295" {
		t.Errorf("FormatDecimal = %q", got)
	}
}

// The fake NAT: the connection from public port 40000 to the querier's port
// 443 belongs to HOST_ID 0x1234; port 40001 is not translated; port 40002
// makes the lookup fail.
const (
	pubPortKnown   = 40000
	pubPortUnknown = 40001
	pubPortFailing = 40002
	querierPort    = 443
)

type fakeNAT struct {
	mu      sync.Mutex
	calls   []string
	block   chan struct{} // if set, lookups wait on it
	entered chan struct{} // if set, lookups signal it before waiting
}

func (f *fakeNAT) lookup(local, remote netip.AddrPort) (uint32, bool, error) {
	if f.entered != nil {
		f.entered <- struct{}{}
	}
	if f.block != nil {
		<-f.block
	}
	f.mu.Lock()
	f.calls = append(f.calls, local.String()+" "+remote.String())
	f.mu.Unlock()
	if local.Addr() != netip.MustParseAddr("127.0.0.1") || remote.Addr() != netip.MustParseAddr("127.0.0.1") {
		return 0, false, fmt.Errorf("unexpected addresses %v %v", local, remote)
	}
	switch {
	case local.Port() == pubPortKnown && remote.Port() == querierPort:
		return 0x1234, true, nil
	case local.Port() == pubPortFailing:
		return 0, false, errors.New("ctnetlink: boom")
	}
	return 0, false, nil
}

// startServer runs s on a loopback listener until the test ends. cancel ends
// its context, checks that Serve returns nil and leaves no goroutine behind,
// and reports when Serve returned.
func startServer(t *testing.T, s *Server) (addr string, cancel func() time.Time) {
	t.Helper()
	base := runtime.NumGoroutine()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancelCtx := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() { errc <- s.Serve(ctx, ln) }()
	var (
		once     sync.Once
		returned time.Time
	)
	cancel = func() time.Time {
		once.Do(func() {
			cancelCtx()
			select {
			case err := <-errc:
				returned = time.Now()
				if err != nil {
					t.Errorf("Serve = %v", err)
				}
			case <-time.After(10 * time.Second):
				t.Fatal("Serve did not return after cancel")
			}
			checkGoroutines(t, base)
		})
		return returned
	}
	t.Cleanup(func() { cancel() })
	return ln.Addr().String(), cancel
}

func checkGoroutines(t *testing.T, base int) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		n := runtime.NumGoroutine()
		if n <= base {
			return
		}
		if time.Now().After(deadline) {
			buf := make([]byte, 1<<16)
			t.Fatalf("%d goroutines, baseline %d:\n%s", n, base, buf[:runtime.Stack(buf, true)])
		}
		time.Sleep(10 * time.Millisecond)
	}
}

type client struct {
	t *testing.T
	c net.Conn
	r *bufio.Reader
}

func dial(t *testing.T, addr string) *client {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	// Generous: only a failing test waits for it, and closed() must see the
	// server's close, not this deadline, on a loaded machine.
	c.SetDeadline(time.Now().Add(30 * time.Second))
	return &client{t, c, bufio.NewReader(c)}
}

func (c *client) ask(query string) string {
	c.t.Helper()
	if _, err := io.WriteString(c.c, query); err != nil {
		c.t.Fatalf("write %q: %v", query, err)
	}
	line, err := c.r.ReadString('\n')
	if err != nil {
		c.t.Fatalf("reply to %q: %q, %v", query, line, err)
	}
	return line
}

// closed reports whether the server closed the connection: EOF (or a reset)
// before any more data.
func (c *client) closed() bool {
	c.t.Helper()
	b, err := c.r.ReadByte()
	if err == nil {
		c.t.Errorf("unexpected data %q", b)
		return false
	}
	var ne net.Error
	return !(errors.As(err, &ne) && ne.Timeout())
}

func TestServerAnswers(t *testing.T) {
	nat := &fakeNAT{}
	s := &Server{Lookup: nat.lookup}
	addr, cancel := startServer(t, s)
	c := dial(t, addr)

	for _, tc := range []struct{ q, want string }{
		{"40000, 443\r\n", "40000, 443 : USERID : OTHER :4660\r\n"},
		{" 40000 ,443 \n", "40000, 443 : USERID : OTHER :4660\r\n"},
		{"40001, 443\r\n", "40001, 443 : ERROR : NO-USER\r\n"},
		{"40000, 444\r\n", "40000, 444 : ERROR : NO-USER\r\n"},
		{"40002, 443\r\n", "40002, 443 : ERROR : UNKNOWN-ERROR\r\n"},
		{"garbage\r\n", "0, 0 : ERROR : INVALID-PORT\r\n"},
		{"0, 443\r\n", "0, 443 : ERROR : INVALID-PORT\r\n"},
		{"65536, 443\r\n", "0, 443 : ERROR : INVALID-PORT\r\n"},
		{"40000 443\r\n", "0, 0 : ERROR : INVALID-PORT\r\n"},
		{"\r\n", "0, 0 : ERROR : INVALID-PORT\r\n"},
		{"40000, 443\r\n", "40000, 443 : USERID : OTHER :4660\r\n"}, // still served after errors
	} {
		if got := c.ask(tc.q); got != tc.want {
			t.Errorf("%q -> %q, want %q", tc.q, got, tc.want)
		}
	}

	// The querier's own port goes to Lookup as port-on-client.
	nat.mu.Lock()
	first := nat.calls[0]
	nat.mu.Unlock()
	if want := "127.0.0.1:40000 127.0.0.1:443"; first != want {
		t.Errorf("lookup(%s), want lookup(%s)", first, want)
	}

	c.c.Close()
	cancel()
	st := &s.Stats
	for name, got := range map[string]uint64{
		"conns": st.Conns.Load(), "queries": st.Queries.Load(), "answered": st.Answered.Load(),
		"no-user": st.NoUser.Load(), "invalid": st.Invalid.Load(), "errors": st.Errors.Load(),
		"refused": st.RefusedBusy.Load(),
	} {
		want := map[string]uint64{"conns": 1, "queries": 11, "answered": 3, "no-user": 2, "invalid": 5, "errors": 1}[name]
		if got != want {
			t.Errorf("%s = %d, want %d (%s)", name, got, want, st)
		}
	}
}

func TestServerFormatAndHide(t *testing.T) {
	nat := &fakeNAT{}
	s := &Server{Lookup: nat.lookup, Format: FormatHex, HideNoUser: true}
	addr, _ := startServer(t, s)
	c := dial(t, addr)
	if got, want := c.ask("40000,443\r\n"), "40000, 443 : USERID : OTHER :0x1234\r\n"; got != want {
		t.Errorf("got %q, want %q", got, want)
	}
	if got, want := c.ask("40001,443\r\n"), "40001, 443 : ERROR : UNKNOWN-ERROR\r\n"; got != want {
		t.Errorf("got %q, want %q", got, want)
	}
	// A formatter yielding an invalid user-id is an UNKNOWN-ERROR, never a
	// broken reply line.
	s2 := &Server{Lookup: nat.lookup, Format: func(uint32) string { return "a\r\nb" }}
	addr2, _ := startServer(t, s2)
	if got, want := dial(t, addr2).ask("40000,443\r\n"), "40000, 443 : ERROR : UNKNOWN-ERROR\r\n"; got != want {
		t.Errorf("got %q, want %q", got, want)
	}
}

func TestServerFinalLineWithoutEOL(t *testing.T) {
	s := &Server{Lookup: (&fakeNAT{}).lookup}
	addr, _ := startServer(t, s)
	c := dial(t, addr)
	io.WriteString(c.c, "40000, 443")
	c.c.(*net.TCPConn).CloseWrite()
	line, _ := c.r.ReadString('\n')
	if want := "40000, 443 : USERID : OTHER :4660\r\n"; line != want {
		t.Errorf("got %q, want %q", line, want)
	}
	if !c.closed() {
		t.Error("connection left open")
	}
}

func TestServerMaxQueries(t *testing.T) {
	s := &Server{Lookup: (&fakeNAT{}).lookup, MaxQueries: 3}
	addr, _ := startServer(t, s)
	c := dial(t, addr)
	for range 3 {
		c.ask("40000, 443\r\n")
	}
	if !c.closed() {
		t.Error("connection open after MaxQueries")
	}
}

func TestServerPipelined(t *testing.T) {
	s := &Server{Lookup: (&fakeNAT{}).lookup}
	addr, _ := startServer(t, s)
	c := dial(t, addr)
	io.WriteString(c.c, "40000, 443\r\n40001, 443\r\nx\r\n")
	want := []string{
		"40000, 443 : USERID : OTHER :4660\r\n",
		"40001, 443 : ERROR : NO-USER\r\n",
		"0, 0 : ERROR : INVALID-PORT\r\n",
	}
	for _, w := range want {
		if got, err := c.r.ReadString('\n'); got != w || err != nil {
			t.Errorf("got %q, %v; want %q", got, err, w)
		}
	}
}

func TestServerLongLine(t *testing.T) {
	s := &Server{Lookup: (&fakeNAT{}).lookup}
	addr, _ := startServer(t, s)

	// Exactly MaxLineLen octets with the EOL: still a query.
	c := dial(t, addr)
	q := strings.Repeat(" ", MaxLineLen-len("40000, 443\r\n")) + "40000, 443\r\n"
	if got := c.ask(q); got != "40000, 443 : USERID : OTHER :4660\r\n" {
		t.Errorf("got %q", got)
	}

	// One more octet without EOL: INVALID-PORT, then closed.
	c = dial(t, addr)
	if got := c.ask(strings.Repeat("1", MaxLineLen+1)); got != "0, 0 : ERROR : INVALID-PORT\r\n" {
		t.Errorf("got %q", got)
	}
	if !c.closed() {
		t.Error("connection open after an over-long line")
	}
	if n := s.Stats.Invalid.Load(); n != 1 {
		t.Errorf("invalid = %d", n)
	}
}

func TestServerTimeout(t *testing.T) {
	const timeout = time.Second
	s := &Server{Lookup: (&fakeNAT{}).lookup, Timeout: timeout}
	addr, _ := startServer(t, s)

	// A slow client: part of a query, then nothing. The server sets its
	// deadline after accepting, so about start + timeout at the earliest
	// (the lower bound has slack for the runtime's deadline arithmetic).
	start := time.Now()
	c := dial(t, addr)
	io.WriteString(c.c, "40000,")
	if !c.closed() {
		t.Fatal("slow client not disconnected")
	}
	if d := time.Since(start); d < timeout/2 || d > 5*time.Second {
		t.Errorf("closed after %v, want about %v (at most 5s)", d, timeout)
	}

	// The timeout restarts per query: three gaps of 0.4 of it, longer
	// than it together, keep the connection; then idleness ends it.
	c = dial(t, addr)
	for range 3 {
		time.Sleep(timeout * 2 / 5)
		c.ask("40000, 443\r\n")
	}
	if !c.closed() {
		t.Fatal("idle client not disconnected")
	}
	if n := s.Stats.Timeouts.Load(); n != 2 {
		t.Errorf("timeouts = %d, want 2", n)
	}
}

func TestServerMaxConns(t *testing.T) {
	s := &Server{Lookup: (&fakeNAT{}).lookup, MaxConns: 2}
	addr, _ := startServer(t, s)

	a, b := dial(t, addr), dial(t, addr)
	a.ask("40000, 443\r\n") // both are being served once they answered
	b.ask("40000, 443\r\n")

	c := dial(t, addr)
	if !c.closed() {
		t.Fatal("third connection served")
	}
	if n := s.Stats.RefusedBusy.Load(); n != 1 {
		t.Errorf("refused = %d, want 1", n)
	}

	// A slot frees when a client leaves.
	a.c.Close()
	deadline := time.Now().Add(2 * time.Second)
	for s.active.Load() > 1 {
		if time.Now().After(deadline) {
			t.Fatal("slot not released")
		}
		time.Sleep(5 * time.Millisecond)
	}
	if got := dial(t, addr).ask("40001, 443\r\n"); got != "40001, 443 : ERROR : NO-USER\r\n" {
		t.Errorf("got %q", got)
	}
}

func TestServerCancelClosesAll(t *testing.T) {
	nat := &fakeNAT{block: make(chan struct{}), entered: make(chan struct{}, 1)}
	// Idle connections never time out here: only shutdown closes them.
	s := &Server{Lookup: nat.lookup, Timeout: time.Minute}
	addr, cancel := startServer(t, s)

	// Some idle connections, and one whose lookup is in flight.
	var cs []*client
	for range 5 {
		c := dial(t, addr)
		cs = append(cs, c)
	}
	busy := cs[0]
	io.WriteString(busy.c, "40000, 443\r\n")
	<-nat.entered
	for s.active.Load() < 5 {
		time.Sleep(5 * time.Millisecond)
	}

	// The blocked lookup holds its handler until it returns, as a slow
	// ctnetlink query would; Serve waits for it. The lookup is released only
	// once shutdown has begun (watch, an extra idle connection, was closed
	// by the server), and a little later so that a Serve that did not wait
	// would have returned by then. The release time is taken just before
	// close(nat.block): a correct Serve returns after it whatever the
	// scheduling.
	watch := dial(t, addr)
	for s.active.Load() < 6 {
		time.Sleep(5 * time.Millisecond)
	}
	type release struct {
		at  time.Time
		err error
	}
	releasec := make(chan release, 1)
	go func() {
		_, err := watch.r.ReadByte() // EOF once the server closed it
		time.Sleep(50 * time.Millisecond)
		at := time.Now()
		close(nat.block)
		releasec <- release{at, err}
	}()
	returned := cancel() // fails the test if Serve does not return or goroutines leak
	r := <-releasec
	if ne := net.Error(nil); r.err == nil || errors.As(r.err, &ne) && ne.Timeout() {
		t.Errorf("watch connection: %v before the lookup was released, want it closed by shutdown", r.err)
	}
	if returned.Before(r.at) {
		t.Errorf("Serve returned %v before the in-flight lookup was released", r.at.Sub(returned))
	} else if d := returned.Sub(r.at); d > 5*time.Second {
		t.Errorf("Serve returned %v after the in-flight lookup was released", d)
	}
	for i, c := range cs[1:] {
		if !c.closed() {
			t.Errorf("connection %d left open", i+1)
		}
	}
	if _, err := net.Dial("tcp", addr); err == nil {
		t.Error("listener still accepting")
	}
}

func TestServeErrors(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	if err := (&Server{}).Serve(context.Background(), ln); err == nil {
		t.Error("Serve without Lookup succeeded")
	}

	// Someone else closes the listener: Serve reports it.
	ln.Close()
	err = (&Server{Lookup: (&fakeNAT{}).lookup}).Serve(context.Background(), ln)
	if !errors.Is(err, net.ErrClosed) {
		t.Errorf("Serve on a closed listener = %v", err)
	}

	// A context that is already done: Serve returns nil at once.
	ln2, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := (&Server{Lookup: (&fakeNAT{}).lookup}).Serve(ctx, ln2); err != nil {
		t.Errorf("Serve with a done context = %v", err)
	}
}

// A connection whose addresses are not IP (net.Pipe) gets UNKNOWN-ERROR:
// without the addresses no connection can be identified (RFC 1413 §3).
func TestHandleUnknownAddrs(t *testing.T) {
	srv, cl := net.Pipe()
	s := &Server{Lookup: func(netip.AddrPort, netip.AddrPort) (uint32, bool, error) {
		t.Error("Lookup called")
		return 0, false, nil
	}}
	done := make(chan struct{})
	go func() { s.handle(srv); srv.Close(); close(done) }()
	cl.SetDeadline(time.Now().Add(5 * time.Second))
	r := bufio.NewReader(cl)
	io.WriteString(cl, "40000, 443\r\n")
	if got, _ := r.ReadString('\n'); got != "40000, 443 : ERROR : UNKNOWN-ERROR\r\n" {
		t.Errorf("got %q", got)
	}
	cl.Close()
	<-done
}
