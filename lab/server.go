package lab

import (
	"fmt"
	"io"
	"net"
	"net/netip"
	"sync"
	"syscall"
	"time"

	"github.com/natreveal/natreveal/method/destopt"
	"github.com/natreveal/natreveal/method/ipid"
	"github.com/natreveal/natreveal/method/tcpoption"
	"github.com/natreveal/natreveal/reveal"
	"github.com/natreveal/natreveal/reveal/listener"
)

// Seen is what the server learnt of one connection from its SYN, read back
// with TCP_SAVED_SYN (IP header, IPv6 extension headers included, and TCP
// header as they arrived).
type Seen struct {
	Src       string // source address:port as the server saw it
	HasOption bool   // an RFC 7974 HOST_ID option was present
	OptionID  uint32
	OptionLen int
	IPID      uint16
	Atomic    bool // DF set, not a fragment (RFC 6864)
	// HasDstOpt: IPv6, a HOST_ID option of the default type in a
	// Destination Options header (RFC 8200 §4.6), read by that method's
	// registry entry.
	HasDstOpt bool
	DstOptID  uint32
	DstOptLen int
	Bytes     int    // payload bytes received before EOF
	Head      string // the first bytes of the payload (tests put a label there)
	SYN       []byte // the saved SYN: IPv4 header (options included) or IPv6 header chain, and TCP header
}

// Server is a TCP server that saves every SYN (Linux TCP_SAVE_SYN) and echoes
// "ok" after the client half-closes.
type Server struct {
	ln   *listener.Listener
	mu   sync.Mutex
	seen []Seen
	wg   sync.WaitGroup
}

// network is "tcp6" for an IPv6 address:port, else "tcp4".
func network(addr string) string {
	if ap, err := netip.ParseAddrPort(addr); err == nil && ap.Addr().Is6() {
		return "tcp6"
	}
	return "tcp4"
}

// Listen starts a server on addr (IPv4 or [IPv6]:port) inside namespace ns.
// It is built on reveal/listener, which saves and reads each SYN.
func Listen(ns, addr string) (*Server, error) {
	s := &Server{}
	err := Do(ns, func() error {
		ln, err := listener.Listen(network(addr), addr, &reveal.Decoder{})
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
		c, err := s.ln.AcceptReveal()
		if err != nil {
			return
		}
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			defer c.Close()
			seen := Seen{Src: c.RemoteAddr().String()}
			if syn := c.SavedSYN(); len(syn) > 0 {
				seen.SYN = syn
				if syn[0]>>4 == 6 {
					seen.OptionID, seen.OptionLen, seen.HasOption = tcpoption.HostIDOption6(syn)
					seen.DstOptID, seen.DstOptLen, seen.HasDstOpt = destopt.Method.Decoder.Packet(syn)
				} else {
					seen.OptionID, seen.OptionLen, seen.HasOption = tcpoption.HostIDOption(syn)
					seen.IPID, seen.Atomic, _ = ipid.IPID(syn)
				}
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
	return ConnectWith(ns, addr, payload, timeout, nil)
}

// ConnectWith is Connect with a socket option setter run on the client's
// socket before it connects (e.g. IP_OPTIONS, so the SYN carries them).
func ConnectWith(ns, addr string, payload []byte, timeout time.Duration, setopt func(fd int) error) error {
	var c net.Conn
	err := Do(ns, func() error {
		d := net.Dialer{Timeout: timeout}
		if setopt != nil {
			d.Control = func(_, _ string, rc syscall.RawConn) error {
				var serr error
				if err := rc.Control(func(fd uintptr) { serr = setopt(int(fd)) }); err != nil {
					return err
				}
				return serr
			}
		}
		var err error
		c, err = d.Dial(network(addr), addr)
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
