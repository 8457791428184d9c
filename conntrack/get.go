package conntrack

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"
	"sync"
	"syscall"

	"github.com/mdlayher/netlink"
	ct "github.com/ti-mo/conntrack"
	"golang.org/x/sys/unix"
)

// ctnetlink (include/uapi/linux/netfilter/nfnetlink_conntrack.h).
const (
	ipctnlMsgCtNew = 0
	ipctnlMsgCtGet = 1

	ctaTupleOrig  = 1
	ctaTupleReply = 2
	ctaTupleIP    = 1
	ctaTupleProto = 2
	ctaIPv4Src    = 1
	ctaIPv4Dst    = 2
	ctaProtoNum   = 1
	ctaProtoSrc   = 2
	ctaProtoDst   = 3
)

// Conn looks single flows up over ctnetlink.
//
// It exists because ti-mo/conntrack's Get never returns on this kernel when
// the flow exists: ctnetlink answers a GET with a message flagged
// NLM_F_MULTI (ctnetlink_fill_info sets it whenever a portid is given) and
// then an ACK, without NLMSG_DONE, and mdlayher/netlink keeps reading for
// more parts. Conn reads until the ACK itself and decodes the flow with
// ti-mo/conntrack's Event.Unmarshal.
type Conn struct {
	mu  sync.Mutex
	fd  int
	seq uint32
	buf []byte
}

// Dial opens a ctnetlink socket in the current network namespace.
func Dial() (*Conn, error) {
	fd, err := unix.Socket(unix.AF_NETLINK, unix.SOCK_RAW|unix.SOCK_CLOEXEC, unix.NETLINK_NETFILTER)
	if err != nil {
		return nil, fmt.Errorf("conntrack: netlink socket: %w", err)
	}
	if err := unix.Bind(fd, &unix.SockaddrNetlink{Family: unix.AF_NETLINK}); err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("conntrack: bind netlink socket: %w", err)
	}
	// A lookup must never hang the caller: bound every receive.
	tv := unix.Timeval{Sec: 2}
	if err := unix.SetsockoptTimeval(fd, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &tv); err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("conntrack: receive timeout: %w", err)
	}
	return &Conn{fd: fd, buf: make([]byte, 64<<10)}, nil
}

// Close closes the socket.
func (c *Conn) Close() error { return unix.Close(c.fd) }

// Get returns the flow whose reply tuple (IPv4) or, if that is unset, whose
// original tuple matches f. A missing flow is an error wrapping unix.ENOENT.
func (c *Conn) Get(f ct.Flow) (ct.Flow, error) {
	dir, t := uint16(ctaTupleReply), f.TupleReply
	if !t.IP.SourceAddress.IsValid() {
		dir, t = ctaTupleOrig, f.TupleOrig
	}
	if !t.IP.SourceAddress.Is4() || !t.IP.DestinationAddress.Is4() {
		return ct.Flow{}, fmt.Errorf("conntrack: get: only IPv4 tuples are supported")
	}
	ae := netlink.NewAttributeEncoder()
	encodeTuple(ae, dir, t)
	attrs, err := ae.Encode()
	if err != nil {
		return ct.Flow{}, fmt.Errorf("conntrack: get: encode: %w", err)
	}
	found, err := c.request(ipctnlMsgCtGet, attrs)
	if err != nil {
		return ct.Flow{}, fmt.Errorf("conntrack: get: %w", err)
	}
	if found == nil {
		return ct.Flow{}, fmt.Errorf("conntrack: get: acknowledged without a flow")
	}
	return *found, nil
}

// Holds reports whether conntrack has a TCP flow whose original tuple is
// src -> dst (IPv4).
func (c *Conn) Holds(src, dst netip.AddrPort) (bool, error) {
	_, err := c.Get(ct.Flow{TupleOrig: origTuple(src, dst)})
	switch {
	case err == nil:
		return true, nil
	case errors.Is(err, unix.ENOENT):
		return false, nil
	}
	return false, err
}

// CountMarked counts the IPv4 flows whose ct mark has every bit of bits:
// one dump the kernel filters (CTA_MARK and CTA_MARK_MASK, ctnetlink_start),
// read to its NLMSG_DONE without decoding a flow.
func (c *Conn) CountMarked(bits uint32) (int, error) {
	n := 0
	err := c.exchange(func(seq uint32) ([]byte, error) { return countRequest(seq, bits) },
		func(syscall.NetlinkMessage) error { n++; return nil })
	if err != nil {
		return 0, fmt.Errorf("conntrack: count marked: %w", err)
	}
	return n, nil
}

// countRequest is CountMarked's request: IPCTNL_MSG_CT_GET flagged
// NLM_F_REQUEST|NLM_F_DUMP, with CTA_MARK and CTA_MARK_MASK both bits.
func countRequest(seq, bits uint32) ([]byte, error) {
	ae := netlink.NewAttributeEncoder()
	ae.Bytes(ctaMark, binary.BigEndian.AppendUint32(nil, bits))
	ae.Bytes(ctaMarkMask, binary.BigEndian.AppendUint32(nil, bits))
	attrs, err := ae.Encode()
	if err != nil {
		return nil, err
	}
	msg := message(ipctnlMsgCtGet, seq, attrs)
	binary.NativeEndian.PutUint16(msg[6:8], unix.NLM_F_REQUEST|unix.NLM_F_DUMP)
	return msg, nil
}

// encodeTuple adds tuple t (IPv4) as attribute dir (CTA_TUPLE_ORIG or
// CTA_TUPLE_REPLY).
func encodeTuple(ae *netlink.AttributeEncoder, dir uint16, t ct.Tuple) {
	ae.Nested(dir, func(ae *netlink.AttributeEncoder) error {
		ae.Nested(ctaTupleIP, func(ae *netlink.AttributeEncoder) error {
			src, dst := t.IP.SourceAddress.As4(), t.IP.DestinationAddress.As4()
			ae.Bytes(ctaIPv4Src, src[:])
			ae.Bytes(ctaIPv4Dst, dst[:])
			return nil
		})
		ae.Nested(ctaTupleProto, func(ae *netlink.AttributeEncoder) error {
			ae.Uint8(ctaProtoNum, t.Proto.Protocol)
			ae.Bytes(ctaProtoSrc, binary.BigEndian.AppendUint16(nil, t.Proto.SourcePort))
			ae.Bytes(ctaProtoDst, binary.BigEndian.AppendUint16(nil, t.Proto.DestinationPort))
			return nil
		})
		return nil
	})
}

// message is one ctnetlink request: nlmsghdr, nfgenmsg {family AF_INET,
// version 0, res_id 0}, attributes; flags NLM_F_REQUEST|NLM_F_ACK (an
// IPCTNL_MSG_CT_NEW without NLM_F_CREATE updates an existing flow only).
func message(typ uint8, seq uint32, attrs []byte) []byte {
	msg := make([]byte, unix.NLMSG_HDRLEN, unix.NLMSG_HDRLEN+4+len(attrs))
	msg = append(msg, unix.AF_INET, unix.NFNETLINK_V0, 0, 0)
	msg = append(msg, attrs...)
	binary.NativeEndian.PutUint32(msg[0:4], uint32(len(msg)))
	binary.NativeEndian.PutUint16(msg[4:6], unix.NFNL_SUBSYS_CTNETLINK<<8|uint16(typ))
	binary.NativeEndian.PutUint16(msg[6:8], unix.NLM_F_REQUEST|unix.NLM_F_ACK)
	binary.NativeEndian.PutUint32(msg[8:12], seq)
	return msg
}

// request sends one request and reads until its ACK: the flow the kernel
// sent with it, if any, and the kernel's error.
func (c *Conn) request(typ uint8, attrs []byte) (*ct.Flow, error) {
	var found *ct.Flow
	err := c.exchange(func(seq uint32) ([]byte, error) { return message(typ, seq, attrs), nil }, func(m syscall.NetlinkMessage) error {
		var ev ct.Event
		nm := netlink.Message{
			Header: netlink.Header{Length: m.Header.Len, Type: netlink.HeaderType(m.Header.Type),
				Flags: netlink.HeaderFlags(m.Header.Flags), Sequence: m.Header.Seq, PID: m.Header.Pid},
			Data: m.Data,
		}
		if err := ev.Unmarshal(nm); err != nil {
			return fmt.Errorf("decode flow: %w", err)
		}
		found = ev.Flow
		return nil
	})
	return found, err
}

// exchange sends the request msg builds for the next sequence number and
// reads its answer until the ACK (or a dump's NLMSG_DONE), handing each flow
// message to flow. It returns the kernel's error.
func (c *Conn) exchange(msg func(seq uint32) ([]byte, error), flow func(m syscall.NetlinkMessage) error) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.seq++
	b, err := msg(c.seq)
	if err != nil {
		return fmt.Errorf("encode: %w", err)
	}
	if err := unix.Sendto(c.fd, b, 0, &unix.SockaddrNetlink{Family: unix.AF_NETLINK}); err != nil {
		return fmt.Errorf("send: %w", err)
	}
	for {
		n, _, err := unix.Recvfrom(c.fd, c.buf, 0)
		if err != nil {
			if err == unix.EINTR {
				continue
			}
			return fmt.Errorf("receive: %w", err)
		}
		msgs, err := syscall.ParseNetlinkMessage(c.buf[:n])
		if err != nil {
			return fmt.Errorf("parse: %w", err)
		}
		for _, m := range msgs {
			if m.Header.Seq != c.seq {
				continue // a late answer to an earlier, timed-out request
			}
			switch {
			case m.Header.Type == unix.NLMSG_DONE:
				return nil
			case m.Header.Type == unix.NLMSG_ERROR:
				if len(m.Data) < 4 {
					return fmt.Errorf("short error message")
				}
				if code := int32(binary.NativeEndian.Uint32(m.Data[:4])); code != 0 {
					return unix.Errno(-code)
				}
				return nil
			case m.Header.Type == unix.NFNL_SUBSYS_CTNETLINK<<8|ipctnlMsgCtNew:
				if err := flow(m); err != nil {
					return err
				}
			}
		}
	}
}
