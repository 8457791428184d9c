// Package listener is the syscall edge of the server side: a TCP listener
// that has Linux save each connection's SYN (TCP_SAVE_SYN, Linux 4.2) and
// hands out connections that know the HOST_IDs their SYN carried. The
// decoding itself is package reveal's.
package listener

import (
	"context"
	"errors"
	"fmt"
	"net"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/natreveal/natreveal/reveal"
)

// Listener is a net.Listener whose Accept returns *Conn.
type Listener struct {
	*net.TCPListener
	d *reveal.Decoder
}

// Listen listens on network ("tcp", "tcp4" or "tcp6") and addr, with
// TCP_SAVE_SYN set on the listening socket so that every connection it
// accepts keeps its SYN (IP header, options included, and TCP header).
// d decodes the SYNs; nil means a zero reveal.Decoder (its defaults).
func Listen(network, addr string, d *reveal.Decoder) (*Listener, error) {
	switch network {
	case "tcp", "tcp4", "tcp6":
	default:
		return nil, fmt.Errorf("listener: network %q: want tcp, tcp4 or tcp6", network)
	}
	if d == nil {
		d = &reveal.Decoder{}
	}
	lc := net.ListenConfig{Control: func(_, _ string, c syscall.RawConn) error {
		var serr error
		if err := c.Control(func(fd uintptr) {
			serr = unix.SetsockoptInt(int(fd), unix.IPPROTO_TCP, unix.TCP_SAVE_SYN, 1)
		}); err != nil {
			return err
		}
		if serr != nil {
			return fmt.Errorf("setsockopt TCP_SAVE_SYN: %w", serr)
		}
		return nil
	}}
	ln, err := lc.Listen(context.Background(), network, addr)
	if err != nil {
		return nil, err
	}
	return &Listener{TCPListener: ln.(*net.TCPListener), d: d}, nil
}

// Accept waits for the next connection and returns it as a *Conn.
func (l *Listener) Accept() (net.Conn, error) {
	c, err := l.AcceptReveal()
	if err != nil {
		return nil, err // not a typed nil *Conn in an interface
	}
	return c, nil
}

// AcceptReveal is Accept with the concrete type.
func (l *Listener) AcceptReveal() (*Conn, error) {
	tc, err := l.AcceptTCP()
	if err != nil {
		return nil, err
	}
	c := &Conn{TCPConn: tc}
	c.syn, c.synErr = savedSYN(tc)
	if len(c.syn) > 0 {
		c.found = l.d.Decode(c.syn, c.foundBuf[:0])
	}
	return c, nil
}

// Conn is an accepted connection with what its SYN said.
type Conn struct {
	*net.TCPConn
	syn      []byte
	synErr   error
	found    []reveal.Found
	foundBuf [4]reveal.Found
}

// HostIDs returns what the connection's SYN carried for the decoder's
// methods, in their order; nil when nothing (or no SYN was saved).
func (c *Conn) HostIDs() []reveal.Found {
	if len(c.found) == 0 {
		return nil
	}
	return c.found
}

// SavedSYN returns the SYN as the kernel saved it: IP header with its
// options, then the TCP header; no payload. It is empty when the kernel
// kept none, e.g. for a connection completed by a SYN cookie.
func (c *Conn) SavedSYN() []byte { return c.syn }

// SYNError is the error reading the saved SYN, if any.
func (c *Conn) SYNError() error { return c.synErr }

// synBufLen holds the largest SYN the kernel saves in practice: IPv4 with
// 40 bytes of options (60) or IPv6 with some extension headers, plus a TCP
// header with 40 bytes of options (60). A larger one is read again with the
// size the kernel asks for.
const synBufLen = 256

// errNoSYN: the kernel saved no SYN for the connection.
var errNoSYN = errors.New("listener: no saved SYN")

// savedSYN reads TCP_SAVED_SYN once (the kernel frees it then). It is a raw
// getsockopt: the headers are binary and unix.GetsockoptString stops at
// the first zero byte. When the buffer is too small the kernel answers
// EINVAL and writes the length it needs.
func savedSYN(c *net.TCPConn) ([]byte, error) {
	rc, err := c.SyscallConn()
	if err != nil {
		return nil, err
	}
	buf := make([]byte, synBufLen)
	for range 2 {
		n := uint32(len(buf))
		var errno syscall.Errno
		if err := rc.Control(func(fd uintptr) {
			_, _, errno = unix.Syscall6(unix.SYS_GETSOCKOPT, fd, unix.IPPROTO_TCP, unix.TCP_SAVED_SYN,
				uintptr(unsafe.Pointer(&buf[0])), uintptr(unsafe.Pointer(&n)), 0)
		}); err != nil {
			return nil, err
		}
		switch {
		case errno == unix.EINVAL && int(n) > len(buf):
			buf = make([]byte, n)
			continue
		case errno != 0:
			return nil, fmt.Errorf("listener: getsockopt TCP_SAVED_SYN: %w", errno)
		case n == 0:
			return nil, errNoSYN
		}
		return buf[:n:n], nil
	}
	return nil, errors.New("listener: TCP_SAVED_SYN keeps growing")
}
