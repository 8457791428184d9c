package lab

import (
	"fmt"
	"net"
	"sync"
	"time"

	"golang.org/x/sys/unix"
)

// Datagram is what the UDP server learnt of one datagram.
type Datagram struct {
	Src     string // source address:port as the server saw it
	Head    string // the payload (tests put a label there)
	Options []byte // the IPv4 options it arrived with (IP_RECVOPTS)
}

// UDPServer records every datagram it receives, with its IPv4 options.
type UDPServer struct {
	c    *net.UDPConn
	mu   sync.Mutex
	seen []Datagram
	done chan struct{}
}

// ListenUDP starts a UDP server on addr inside namespace ns.
func ListenUDP(ns, addr string) (*UDPServer, error) {
	c, err := ListenUDPOptions(ns, addr)
	if err != nil {
		return nil, err
	}
	s := &UDPServer{c: c, done: make(chan struct{})}
	go s.read()
	return s, nil
}

// ListenUDPOptions opens a udp4 socket on addr inside namespace ns that
// receives each datagram's IPv4 options (IP_RECVOPTS, RFC 791 section 3.1)
// as a control message; RecvOptions reads them back.
func ListenUDPOptions(ns, addr string) (*net.UDPConn, error) {
	var c *net.UDPConn
	err := Do(ns, func() error {
		ua, err := net.ResolveUDPAddr("udp4", addr)
		if err != nil {
			return err
		}
		if c, err = net.ListenUDP("udp4", ua); err != nil {
			return err
		}
		rc, err := c.SyscallConn()
		if err != nil {
			return err
		}
		var serr error
		if err := rc.Control(func(fd uintptr) {
			serr = unix.SetsockoptInt(int(fd), unix.IPPROTO_IP, unix.IP_RECVOPTS, 1)
		}); err != nil {
			return err
		}
		return serr
	})
	if err != nil {
		if c != nil {
			c.Close()
		}
		return nil, fmt.Errorf("lab: listen udp %s in %s: %w", addr, ns, err)
	}
	return c, nil
}

// RecvOptions returns a copy of the IPv4 options in the control messages oob
// of a socket from ListenUDPOptions, or nil when the datagram had none.
func RecvOptions(oob []byte) []byte {
	var opts []byte
	if cms, err := unix.ParseSocketControlMessage(oob); err == nil {
		for _, cm := range cms {
			if cm.Header.Level == unix.IPPROTO_IP && cm.Header.Type == unix.IP_RECVOPTS {
				opts = append([]byte(nil), cm.Data...)
			}
		}
	}
	return opts
}

func (s *UDPServer) read() {
	defer close(s.done)
	buf, oob := make([]byte, 2048), make([]byte, 256)
	for {
		n, oobn, _, from, err := s.c.ReadMsgUDP(buf, oob)
		if err != nil {
			return
		}
		d := Datagram{Src: from.String(), Head: string(buf[:n]), Options: RecvOptions(oob[:oobn])}
		s.mu.Lock()
		s.seen = append(s.seen, d)
		s.mu.Unlock()
	}
}

// Seen returns the datagrams received so far.
func (s *UDPServer) Seen() []Datagram {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Datagram(nil), s.seen...)
}

// Close stops the server.
func (s *UDPServer) Close() {
	s.c.Close()
	<-s.done
}

// SendUDP sends each payload as one datagram from one socket in namespace ns
// (one flow), pausing gap between them.
func SendUDP(ns, addr string, payloads []string, gap time.Duration) error {
	var c net.Conn
	err := Do(ns, func() error {
		var err error
		c, err = net.Dial("udp4", addr)
		return err
	})
	if err != nil {
		return fmt.Errorf("lab: udp from %s: %w", ns, err)
	}
	defer c.Close()
	for _, p := range payloads {
		if _, err := c.Write([]byte(p)); err != nil {
			return fmt.Errorf("lab: udp send from %s: %w", ns, err)
		}
		time.Sleep(gap)
	}
	return nil
}
