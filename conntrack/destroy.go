package conntrack

// A lean reader of ctnetlink destroy events: one netlink socket in the
// group NFNLGRP_CONNTRACK_DESTROY, drained with non-blocking reads after
// each wake-up, and only the two tuples decoded, in place and without
// allocations. Every connection through the NAT ends in one such event, so
// the reader's cost per event counts: ti-mo/conntrack's Listen decoded
// the whole flow into fresh objects, which was a fifth of the daemon's CPU
// time in a SYN flood (test/bench, tcp-option).

import (
	"context"
	"encoding/binary"
	"fmt"
	"net/netip"
	"os"
	"time"

	"golang.org/x/sys/unix"
)

// ctnetlink attribute numbers beyond those in get.go
// (include/uapi/linux/netfilter/nfnetlink_conntrack.h).
const (
	ipctnlMsgCtDelete = 2
	ctaIPv6Src        = 3
	ctaIPv6Dst        = 4
	nlaTypeMask       = 0x3fff // without NLA_F_NESTED, NLA_F_NET_BYTEORDER
	nfnlgrpCtDestroy  = 3      // NFNLGRP_CONNTRACK_DESTROY
)

// watchDestroy is WatchDestroy in the current network namespace.
func watchDestroy(ctx context.Context, fn func(Destroyed)) error {
	fd, err := unix.Socket(unix.AF_NETLINK, unix.SOCK_RAW|unix.SOCK_CLOEXEC|unix.SOCK_NONBLOCK, unix.NETLINK_NETFILTER)
	if err != nil {
		return fmt.Errorf("conntrack: events socket: %w", err)
	}
	if err := unix.Bind(fd, &unix.SockaddrNetlink{Family: unix.AF_NETLINK}); err != nil {
		unix.Close(fd)
		return fmt.Errorf("conntrack: bind events socket: %w", err)
	}
	if err := unix.SetsockoptInt(fd, unix.SOL_NETLINK, unix.NETLINK_ADD_MEMBERSHIP, nfnlgrpCtDestroy); err != nil {
		unix.Close(fd)
		return fmt.Errorf("conntrack: listen for destroy events: %w", err)
	}
	// Events lost to a full buffer are dropped silently (callers also
	// expire state by age).
	if err := unix.SetsockoptInt(fd, unix.SOL_NETLINK, unix.NETLINK_NO_ENOBUFS, 1); err != nil {
		unix.Close(fd)
		return fmt.Errorf("conntrack: events NoENOBUFS: %w", err)
	}
	_ = unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_RCVBUF, 1<<20)
	f := os.NewFile(uintptr(fd), "ctnetlink-events")
	rc, err := f.SyscallConn()
	if err != nil {
		f.Close()
		return fmt.Errorf("conntrack: events socket: %w", err)
	}
	go func() {
		<-ctx.Done()
		f.SetReadDeadline(time.Unix(1, 0))
	}()
	go func() {
		defer f.Close()
		buf := make([]byte, 64<<10)
		for ctx.Err() == nil {
			var rerr error
			err := rc.Read(func(fd uintptr) bool {
				got := false
				for {
					n, _, err := unix.Recvfrom(int(fd), buf, unix.MSG_DONTWAIT)
					switch {
					case err == unix.EINTR:
						continue
					case err == unix.EAGAIN:
						return got // nothing read yet: wait for the poller
					case err == unix.ENOBUFS:
						continue // overrun: events lost, go on
					case err != nil:
						rerr = err
						return true
					}
					got = true
					parseDestroyEvents(buf[:n], fn)
				}
			})
			if err != nil || rerr != nil {
				return // deadline (ctx ended) or a closed socket
			}
		}
	}()
	return nil
}

// parseDestroyEvents calls fn for each destroy event in the netlink
// messages of b.
func parseDestroyEvents(b []byte, fn func(Destroyed)) {
	for len(b) >= unix.NLMSG_HDRLEN {
		l := int(binary.NativeEndian.Uint32(b[0:4]))
		if l < unix.NLMSG_HDRLEN || l > len(b) {
			return
		}
		typ := binary.NativeEndian.Uint16(b[4:6])
		if typ == unix.NFNL_SUBSYS_CTNETLINK<<8|ipctnlMsgCtDelete && l >= unix.NLMSG_HDRLEN+4 {
			if d, ok := parseDestroyed(b[unix.NLMSG_HDRLEN+4 : l]); ok {
				fn(d)
			}
		}
		b = b[min(nlmsgAlign(l), len(b)):]
	}
}

func nlmsgAlign(l int) int { return (l + 3) &^ 3 }

// attrs walks the netlink attributes of b, calling fn with each one's type
// (flags masked) and payload.
func attrs(b []byte, fn func(typ uint16, data []byte)) {
	for len(b) >= 4 {
		l := int(binary.NativeEndian.Uint16(b[0:2]))
		if l < 4 || l > len(b) {
			return
		}
		fn(binary.NativeEndian.Uint16(b[2:4])&nlaTypeMask, b[4:l])
		b = b[min(nlmsgAlign(l), len(b)):]
	}
}

// tuple is a decoded CTA_TUPLE_*.
type tuple struct {
	proto    uint8
	src, dst netip.AddrPort
}

func parseTuple(b []byte) (t tuple) {
	var src, dst netip.Addr
	var sp, dp uint16
	attrs(b, func(typ uint16, data []byte) {
		switch typ {
		case ctaTupleIP:
			attrs(data, func(typ uint16, a []byte) {
				switch {
				case (typ == ctaIPv4Src || typ == ctaIPv4Dst) && len(a) == 4:
					v := netip.AddrFrom4([4]byte(a))
					if typ == ctaIPv4Src {
						src = v
					} else {
						dst = v
					}
				case (typ == ctaIPv6Src || typ == ctaIPv6Dst) && len(a) == 16:
					v := netip.AddrFrom16([16]byte(a))
					if typ == ctaIPv6Src {
						src = v
					} else {
						dst = v
					}
				}
			})
		case ctaTupleProto:
			attrs(data, func(typ uint16, a []byte) {
				switch {
				case typ == ctaProtoNum && len(a) >= 1:
					t.proto = a[0]
				case typ == ctaProtoSrc && len(a) >= 2:
					sp = binary.BigEndian.Uint16(a)
				case typ == ctaProtoDst && len(a) >= 2:
					dp = binary.BigEndian.Uint16(a)
				}
			})
		}
	})
	t.src, t.dst = netip.AddrPortFrom(src, sp), netip.AddrPortFrom(dst, dp)
	return t
}

// parseDestroyed decodes the attributes of a destroy event (after the
// nfgenmsg header); ok is false when the original tuple is missing.
func parseDestroyed(b []byte) (d Destroyed, ok bool) {
	var orig, reply tuple
	attrs(b, func(typ uint16, data []byte) {
		switch typ {
		case ctaTupleOrig:
			orig, ok = parseTuple(data), true
		case ctaTupleReply:
			reply = parseTuple(data)
		}
	})
	if !ok || !orig.src.Addr().IsValid() {
		return d, false
	}
	return Destroyed{Proto: orig.proto, OrigSrc: orig.src, OrigDst: orig.dst, NATSrc: reply.dst}, true
}
