package ident

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"sync"
	"sync/atomic"
	"time"
)

// Lookup finds the HOST_ID of the inside host that owns the translated TCP
// connection local <-> remote, where local is the NAT's public address and
// port (port-on-server) and remote the querier's address and port
// (port-on-client). RFC 1413 §3: the addresses are those of the ident
// connection itself, so a querier only learns about its own connections with
// the NAT. ok is false when there is no such connection or no HOST_ID for it
// (NO-USER); err is for failures (UNKNOWN-ERROR). Lookup is called from many
// goroutines at once.
type Lookup func(local, remote netip.AddrPort) (hostID uint32, ok bool, err error)

// Defaults for the zero fields of Server.
const (
	DefaultMaxConns     = 256
	DefaultMaxPerSource = 32
	DefaultTimeout      = 10 * time.Second
	DefaultMaxQueries   = 16
)

// Server answers ident queries with HOST_IDs. Set Lookup; the other fields
// have defaults. Do not change the fields while serving; do not copy a Server.
type Server struct {
	Lookup Lookup

	// MaxConns bounds the connections served at once, across all Serve
	// calls; more are closed without an answer (allowed by RFC 1413 §5: the
	// server may drop the query connection, which the client takes as
	// UNKNOWN-ERROR) and counted in Stats.RefusedBusy. Default
	// DefaultMaxConns.
	MaxConns int
	// Timeout is how long a connection may stay without a complete query,
	// and bounds each reply's write. RFC 1413 §2 recommends a configurable
	// 60-180 s idle timeout; natreveal's default DefaultTimeout is shorter
	// because a NAT's sockets are a shared resource and queriers ask right
	// after their connection arrives.
	Timeout time.Duration
	// MaxPerSource bounds the connections one source serves at once (an
	// IPv4 address, or an IPv6 /64, which one host usually holds whole), so
	// that one querier cannot take every MaxConns slot with idle
	// connections and lock the others out. More are closed at once, like
	// MaxConns's, and counted in Stats.RefusedSource. RFC 1413 sets no
	// limit; the default DefaultMaxPerSource leaves a server that asks
	// about a burst of connections in parallel room (the lab's probes ask
	// about 20 at once), and DefaultMaxConns takes 8 such sources.
	MaxPerSource int
	// MaxQueries is how many queries one connection may ask before the
	// server closes it (RFC 1413 §2: the server may either shut the
	// connection down or continue with more queries). Default
	// DefaultMaxQueries.
	MaxQueries int
	// Format renders a HOST_ID as the reply's user-id (1-512 octets without
	// NUL, CR or LF). Default FormatDecimal.
	Format func(uint32) string
	// HideNoUser answers UNKNOWN-ERROR instead of NO-USER so that queriers
	// cannot probe which ports are in use. RFC 1413 §5 allows this only as a
	// configurable feature that defaults to the proper error.
	HideNoUser bool
	// Logf, if set, logs lookup failures and listener errors.
	Logf func(format string, args ...any)

	Stats Stats

	active atomic.Int64 // connections being served, all Serve calls

	mu      sync.Mutex
	sources map[netip.Prefix]int // connections being served per source (sourceKey)
}

// Stats counts what a Server did. The counters only grow.
type Stats struct {
	Conns       atomic.Uint64 // connections served
	RefusedBusy atomic.Uint64 // connections closed at once: MaxConns reached
	// RefusedSource: connections closed at once, their source at
	// MaxPerSource.
	RefusedSource atomic.Uint64
	Queries       atomic.Uint64 // query lines read, valid or not
	Answered      atomic.Uint64 // USERID replies
	NoUser        atomic.Uint64 // lookups without a HOST_ID (NO-USER, or UNKNOWN-ERROR with HideNoUser)
	Invalid       atomic.Uint64 // INVALID-PORT replies: malformed, out-of-range or too long queries
	Errors        atomic.Uint64 // UNKNOWN-ERROR replies for failures: lookup errors, bad formatter output, unknown addresses
	Timeouts      atomic.Uint64 // connections closed for idleness
}

// String renders the counters for a log line.
func (s *Stats) String() string {
	return fmt.Sprintf("conns=%d refused_busy=%d refused_source=%d queries=%d answered=%d no_user=%d invalid=%d errors=%d timeouts=%d",
		s.Conns.Load(), s.RefusedBusy.Load(), s.RefusedSource.Load(), s.Queries.Load(), s.Answered.Load(),
		s.NoUser.Load(), s.Invalid.Load(), s.Errors.Load(), s.Timeouts.Load())
}

// Serve accepts ident connections on ln and answers them until ctx is done.
// It then closes ln and every connection it serves, waits for their
// goroutines and returns nil. If ln fails for good first (e.g. someone else
// closed it), Serve also shuts down and waits, and returns that error.
func (s *Server) Serve(ctx context.Context, ln net.Listener) error {
	if s.Lookup == nil {
		return errors.New("ident: Server.Lookup is nil")
	}
	var (
		wg    sync.WaitGroup
		mu    sync.Mutex
		conns = make(map[net.Conn]struct{})
		done  bool // set once shutdown began; no new connection is tracked
	)
	shutdown := func() {
		mu.Lock()
		done = true
		for c := range conns {
			c.Close()
		}
		mu.Unlock()
		ln.Close()
	}
	stop := make(chan struct{})
	watchDone := make(chan struct{})
	go func() {
		defer close(watchDone)
		select {
		case <-ctx.Done():
			shutdown()
		case <-stop:
		}
	}()

	err := s.acceptLoop(ctx, ln, func(c net.Conn) {
		release := func() {
			s.active.Add(-1)
			s.leave(c)
		}
		mu.Lock()
		if done {
			mu.Unlock()
			c.Close()
			release()
			return
		}
		conns[c] = struct{}{}
		wg.Add(1)
		mu.Unlock()
		go func() {
			defer wg.Done()
			defer release()
			s.handle(c)
			mu.Lock()
			delete(conns, c)
			mu.Unlock()
			c.Close()
		}()
	})
	close(stop)
	<-watchDone
	shutdown()
	wg.Wait()
	if ctx.Err() != nil {
		return nil
	}
	return err
}

// acceptLoop hands each accepted connection that fits under MaxConns and
// MaxPerSource to serve, its slots in s.active and s.sources already taken
// (serve gives them back with s.active.Add(-1) and s.leave).
func (s *Server) acceptLoop(ctx context.Context, ln net.Listener, serve func(net.Conn)) error {
	var backoff time.Duration
	for {
		c, err := ln.Accept()
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			if errors.Is(err, net.ErrClosed) {
				return fmt.Errorf("ident: accept on %v: %w", ln.Addr(), err)
			}
			// Transient failures (EMFILE, ECONNABORTED, ...): back off
			// like net/http rather than spin or give up.
			backoff = min(max(2*backoff, 5*time.Millisecond), time.Second)
			s.logf("ident: accept on %v: %v; retrying in %v", ln.Addr(), err, backoff)
			t := time.NewTimer(backoff)
			select {
			case <-ctx.Done():
				t.Stop()
				return nil
			case <-t.C:
			}
			continue
		}
		backoff = 0
		if !s.enter(c) {
			s.Stats.RefusedSource.Add(1)
			c.Close()
			continue
		}
		if s.active.Add(1) > int64(s.maxConns()) {
			s.active.Add(-1)
			s.leave(c)
			s.Stats.RefusedBusy.Add(1)
			c.Close()
			continue
		}
		s.Stats.Conns.Add(1)
		serve(c)
	}
}

// handle answers the queries of one connection, one reply per line, until
// the client closes it, goes idle, sends an over-long line or reaches
// MaxQueries.
func (s *Server) handle(c net.Conn) {
	local, okL := addrOf(c.LocalAddr())
	remote, okR := addrOf(c.RemoteAddr())
	known := okL && okR
	br := bufio.NewReaderSize(c, MaxLineLen) // a line of MaxLineLen octets, EOL included, fits
	var out []byte
	for range s.maxQueries() {
		if err := c.SetDeadline(time.Now().Add(s.timeout())); err != nil {
			return
		}
		line, err := br.ReadSlice('\n')
		last := false
		switch {
		case err == nil:
		case errors.Is(err, bufio.ErrBufferFull):
			// No EOL within MaxLineLen octets: answer and close, since
			// what follows cannot be framed reliably.
			s.Stats.Queries.Add(1)
			s.Stats.Invalid.Add(1)
			out, _ = AppendReply(out[:0], ErrorReply(0, 0, InvalidPort))
			c.Write(out)
			return
		case errors.Is(err, io.EOF) && len(trimSpace(trimEOL(line))) > 0:
			last = true // a final query without EOL: be liberal, answer it
		default:
			if errors.Is(err, os.ErrDeadlineExceeded) {
				s.Stats.Timeouts.Add(1)
			}
			return
		}
		s.Stats.Queries.Add(1)
		out, _ = AppendReply(out[:0], s.answer(line, local, remote, known)) // answer's replies are valid
		if _, err := c.Write(out); err != nil || last {
			return
		}
	}
}

// answer maps one query line to its reply (RFC 1413 §5).
func (s *Server) answer(line []byte, local, remote netip.Addr, known bool) Reply {
	sp, cp, err := ParseQuery(line)
	if err != nil {
		s.Stats.Invalid.Add(1)
		return ErrorReply(sp, cp, InvalidPort)
	}
	if !known {
		s.Stats.Errors.Add(1)
		return ErrorReply(sp, cp, UnknownError)
	}
	l, r := netip.AddrPortFrom(local, sp), netip.AddrPortFrom(remote, cp)
	id, ok, err := s.Lookup(l, r)
	switch {
	case err != nil:
		s.Stats.Errors.Add(1)
		s.logf("ident: lookup %v <-> %v: %v", l, r, err)
		return ErrorReply(sp, cp, UnknownError)
	case !ok:
		s.Stats.NoUser.Add(1)
		if s.HideNoUser {
			return ErrorReply(sp, cp, UnknownError)
		}
		return ErrorReply(sp, cp, NoUser)
	}
	uid := s.format()(id)
	if err := CheckUserID(uid); err != nil {
		s.Stats.Errors.Add(1)
		s.logf("ident: HOST_ID %d formatted as %.32q: %v", id, uid, err)
		return ErrorReply(sp, cp, UnknownError)
	}
	s.Stats.Answered.Add(1)
	return HostIDReply(sp, cp, uid)
}

// sourceKey is what MaxPerSource counts by: an IPv4 address, an IPv6 /64.
func sourceKey(c net.Conn) (netip.Prefix, bool) {
	a, ok := addrOf(c.RemoteAddr())
	if !ok {
		return netip.Prefix{}, false
	}
	bits := 32
	if a.Is6() {
		bits = 64
	}
	p, err := a.WithZone("").Prefix(bits)
	return p, err == nil
}

// enter takes a slot of c's source, or reports false when it has
// MaxPerSource connections already. A connection without a usable remote
// address is not counted (MaxConns still bounds it).
func (s *Server) enter(c net.Conn) bool {
	k, ok := sourceKey(c)
	if !ok {
		return true
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.sources == nil {
		s.sources = make(map[netip.Prefix]int)
	}
	if s.sources[k] >= s.maxPerSource() {
		return false
	}
	s.sources[k]++
	return true
}

// leave gives back the slot enter took for c.
func (s *Server) leave(c net.Conn) {
	k, ok := sourceKey(c)
	if !ok {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.sources[k] <= 1 {
		delete(s.sources, k)
	} else {
		s.sources[k]--
	}
}

// addrOf returns a connection end's IP address, IPv4-mapped IPv6 addresses
// (dual-stack listeners) unmapped so that Lookup sees the conntrack form.
func addrOf(a net.Addr) (netip.Addr, bool) {
	if t, ok := a.(*net.TCPAddr); ok {
		ap := t.AddrPort()
		return ap.Addr().Unmap(), ap.Addr().IsValid()
	}
	if a == nil {
		return netip.Addr{}, false
	}
	ap, err := netip.ParseAddrPort(a.String())
	if err != nil {
		return netip.Addr{}, false
	}
	return ap.Addr().Unmap(), true
}

func (s *Server) maxConns() int {
	if s.MaxConns > 0 {
		return s.MaxConns
	}
	return DefaultMaxConns
}

func (s *Server) maxPerSource() int {
	if s.MaxPerSource > 0 {
		return s.MaxPerSource
	}
	return DefaultMaxPerSource
}

func (s *Server) timeout() time.Duration {
	if s.Timeout > 0 {
		return s.Timeout
	}
	return DefaultTimeout
}

func (s *Server) maxQueries() int {
	if s.MaxQueries > 0 {
		return s.MaxQueries
	}
	return DefaultMaxQueries
}

func (s *Server) format() func(uint32) string {
	if s.Format != nil {
		return s.Format
	}
	return FormatDecimal
}

func (s *Server) logf(format string, args ...any) {
	if s.Logf != nil {
		s.Logf(format, args...)
	}
}
