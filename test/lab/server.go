package lab

import (
	"fmt"
	"io"
	"net"
	"sync"
	"syscall"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/natreveal/natreveal/encoders"
)

// Seen is what the server learnt of one connection from its SYN, read back
// with TCP_SAVED_SYN (IP and TCP headers as they arrived).
type Seen struct {
	Src       string // source address:port as the server saw it
	HasOption bool   // an RFC 7974 HOST_ID option was present
	OptionID  uint32
	OptionLen int
	IPID      uint16
	Atomic    bool   // DF set, not a fragment (RFC 6864)
	Bytes     int    // payload bytes received before EOF
	Head      string // the first bytes of the payload (tests put a label there)
}

// Server is a TCP server that saves every SYN (Linux TCP_SAVE_SYN) and echoes
// "ok" after the client half-closes.
type Server struct {
	ln   net.Listener
	mu   sync.Mutex
	seen []Seen
	wg   sync.WaitGroup
}

// Listen starts a server on addr inside namespace ns.
func Listen(ns, addr string) (*Server, error) {
	s := &Server{}
	err := Do(ns, func() error {
		lc := net.ListenConfig{Control: func(_, _ string, c syscall.RawConn) error {
			var serr error
			err := c.Control(func(fd uintptr) {
				serr = unix.SetsockoptInt(int(fd), unix.IPPROTO_TCP, unix.TCP_SAVE_SYN, 1)
			})
			if err != nil {
				return err
			}
			return serr
		}}
		ln, err := lc.Listen(nil, "tcp4", addr)
		s.ln = ln
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("lab: listen %s in %s: %w", addr, ns, err)
	}
	s.wg.Add(1)
	go s.accept()
	return s, nil
}

// Addr is the listening address.
func (s *Server) Addr() string { return s.ln.Addr().String() }

func (s *Server) accept() {
	defer s.wg.Done()
	for {
		c, err := s.ln.Accept()
		if err != nil {
			return
		}
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			defer c.Close()
			seen := Seen{Src: c.RemoteAddr().String()}
			if syn, err := savedSYN(c.(*net.TCPConn)); err == nil {
				seen.OptionID, seen.OptionLen, seen.HasOption = encoders.HostIDOption(syn)
				seen.IPID, seen.Atomic, _ = encoders.IPID(syn)
			}
			c.SetDeadline(time.Now().Add(30 * time.Second))
			var head [16]byte
			h, _ := io.ReadFull(c, head[:])
			n, _ := io.Copy(io.Discard, c)
			seen.Head, seen.Bytes = string(head[:h]), h+int(n)
			c.Write([]byte("ok"))
			s.mu.Lock()
			s.seen = append(s.seen, seen)
			s.mu.Unlock()
		}()
	}
}

func savedSYN(c *net.TCPConn) ([]byte, error) {
	rc, err := c.SyscallConn()
	if err != nil {
		return nil, err
	}
	// The saved headers are binary: read them with a raw getsockopt (the
	// x/sys string helper stops at the first zero byte).
	buf := make([]byte, 512)
	n := uint32(len(buf))
	var errno syscall.Errno
	if err := rc.Control(func(fd uintptr) {
		_, _, errno = unix.Syscall6(unix.SYS_GETSOCKOPT, fd, unix.IPPROTO_TCP, unix.TCP_SAVED_SYN,
			uintptr(unsafe.Pointer(&buf[0])), uintptr(unsafe.Pointer(&n)), 0)
	}); err != nil {
		return nil, err
	}
	if errno != 0 {
		return nil, fmt.Errorf("TCP_SAVED_SYN: %w", errno)
	}
	return buf[:n], nil
}

// Seen returns the connections completed so far.
func (s *Server) Seen() []Seen {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Seen(nil), s.seen...)
}

// Close stops the server and waits for its connections.
func (s *Server) Close() {
	s.ln.Close()
	s.wg.Wait()
}

// Connect dials addr from namespace ns, sends payload, half-closes and
// waits for the server's "ok".
func Connect(ns, addr string, payload []byte, timeout time.Duration) error {
	var c net.Conn
	err := Do(ns, func() error {
		var err error
		c, err = net.DialTimeout("tcp4", addr, timeout)
		return err
	})
	if err != nil {
		return fmt.Errorf("lab: connect from %s: %w", ns, err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(timeout))
	if _, err := c.Write(payload); err != nil {
		return fmt.Errorf("lab: send from %s: %w", ns, err)
	}
	c.(*net.TCPConn).CloseWrite()
	ack, err := io.ReadAll(c)
	if err != nil || string(ack) != "ok" {
		return fmt.Errorf("lab: %s: server answered %q, %v", ns, ack, err)
	}
	return nil
}
