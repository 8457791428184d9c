package lab

import (
	"fmt"
	"net"
	"time"
)

// SendRaw sends payload as one IPv4 datagram of protocol proto from
// namespace ns to dst (the kernel builds the IP header).
func SendRaw(ns, dst string, proto int, payload []byte) error {
	return Do(ns, func() error {
		c, err := net.Dial(fmt.Sprintf("ip4:%d", proto), dst)
		if err != nil {
			return fmt.Errorf("lab: raw socket in %s: %w", ns, err)
		}
		defer c.Close()
		_, err = c.Write(payload)
		return err
	})
}

// RawReceiver collects datagrams of one IP protocol in a namespace.
type RawReceiver struct {
	c *net.IPConn
}

// ListenRaw opens a raw socket for protocol proto in namespace ns.
func ListenRaw(ns string, proto int) (*RawReceiver, error) {
	var c *net.IPConn
	err := Do(ns, func() error {
		var err error
		c, err = net.ListenIP(fmt.Sprintf("ip4:%d", proto), nil)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("lab: raw listen in %s: %w", ns, err)
	}
	return &RawReceiver{c: c}, nil
}

// Next returns the next datagram's payload (after the IP header) and its
// source, or an error after timeout.
func (r *RawReceiver) Next(timeout time.Duration) ([]byte, net.Addr, error) {
	r.c.SetReadDeadline(time.Now().Add(timeout))
	buf := make([]byte, 65536)
	n, from, err := r.c.ReadFrom(buf)
	if err != nil {
		return nil, nil, err
	}
	return buf[:n], from, nil
}

// Close closes the socket.
func (r *RawReceiver) Close() { r.c.Close() }
