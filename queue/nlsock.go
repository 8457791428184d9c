package queue

import (
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"sync/atomic"
	"syscall"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// nlQueue is one bound NFQUEUE on a NETLINK_NETFILTER socket of its own:
// the thin syscall edge of the queue path. Reads take many packets per
// system call (recvmmsg), verdicts go out many per send.
type nlQueue struct {
	num uint16
	fd  int
	f   *os.File        // owns fd, registered with the Go poller (nil: hot)
	rc  syscall.RawConn // reads wait in the poller, not in a thread
	seq uint32
	gso bool // NFQA_CFG_F_GSO took: GSO packets come whole, checksums may be partial

	// hot: a pinned lane's socket, read by readHot; last is when its
	// last read took packets, pfd its poll(2) argument, parked the
	// poller's file while it parks.
	hot    bool
	last   time.Time
	pfd    [1]unix.PollFd
	stop   atomic.Bool // interrupt was called
	parked atomic.Pointer[os.File]
}

// hotWait bounds one poll(2) of a hot read: under the runtime's 10 ms
// (forcePreemptNS), after which sysmon takes the P of a thread in a system
// call and, for every such retake, wakes up to some sixty times at its
// shortest period. parkAfter is how long a hot read keeps waiting on its
// thread after the last packet before it parks in the Go poller.
const (
	hotWait   = 5 * time.Millisecond
	parkAfter = 20 * time.Millisecond
)

// openQueue binds queue num: copy whole packets up to copyRange bytes, at
// most maxLen queued in the kernel, fail open if asked, GSO packets whole if
// asked (q.gso says whether the kernel agreed). The socket does not lose
// itself to ENOBUFS (NETLINK_NO_ENOBUFS). Reads wait in the Go poller, or,
// when hot, for a while in the reading thread itself (readHot).
func openNLQueue(num uint16, copyRange, maxLen uint32, failOpen, gso bool, rcvBuf int, hot bool) (*nlQueue, error) {
	fd, err := unix.Socket(unix.AF_NETLINK, unix.SOCK_RAW|unix.SOCK_CLOEXEC|unix.SOCK_NONBLOCK, unix.NETLINK_NETFILTER)
	if err != nil {
		return nil, fmt.Errorf("netlink socket: %w", err)
	}
	q := &nlQueue{num: num, fd: fd, hot: hot, pfd: [1]unix.PollFd{{Fd: int32(fd), Events: unix.POLLIN}}}
	if err := q.setup(copyRange, maxLen, failOpen, gso, rcvBuf); err != nil {
		unix.Close(fd)
		return nil, err
	}
	if hot {
		return q, nil
	}
	q.f = os.NewFile(uintptr(fd), fmt.Sprintf("nfqueue-%d", num))
	if q.rc, err = q.f.SyscallConn(); err != nil {
		q.f.Close()
		return nil, err
	}
	return q, nil
}

func (q *nlQueue) setup(copyRange, maxLen uint32, failOpen, gso bool, rcvBuf int) error {
	if err := unix.Bind(q.fd, &unix.SockaddrNetlink{Family: unix.AF_NETLINK}); err != nil {
		return fmt.Errorf("netlink bind: %w", err)
	}
	if err := unix.SetsockoptInt(q.fd, unix.SOL_NETLINK, unix.NETLINK_NO_ENOBUFS, 1); err != nil {
		return fmt.Errorf("NETLINK_NO_ENOBUFS: %w", err)
	}
	if rcvBuf > 0 {
		// FORCE goes past net.core.rmem_max (root only); else the capped size.
		if unix.SetsockoptInt(q.fd, unix.SOL_SOCKET, unix.SO_RCVBUFFORCE, rcvBuf) != nil {
			if err := unix.SetsockoptInt(q.fd, unix.SOL_SOCKET, unix.SO_RCVBUF, rcvBuf); err != nil {
				return fmt.Errorf("receive buffer: %w", err)
			}
		}
	}
	// A batch of verdicts with rewritten packets is one send.
	if unix.SetsockoptInt(q.fd, unix.SOL_SOCKET, unix.SO_SNDBUFFORCE, sendMax+4096) != nil {
		unix.SetsockoptInt(q.fd, unix.SOL_SOCKET, unix.SO_SNDBUF, sendMax+4096)
	}
	// Bind to the queue (NFQNL_CFG_CMD_BIND; the PF_(UN)BIND commands are
	// no-ops since Linux 3.8), then copy mode, length and flags.
	if err := q.config(appendAttr(nil, nfqaCfgCmd, cfgCmdBind, 0, 0, unix.AF_INET)); err != nil {
		return fmt.Errorf("bind: %w", err)
	}
	params := []byte{byte(copyRange >> 24), byte(copyRange >> 16), byte(copyRange >> 8), byte(copyRange), copyPacket}
	var flags uint32
	if failOpen {
		flags = cfgFailOpen
	}
	attrs := appendAttr(nil, nfqaCfgParams, params...)
	attrs = appendAttrU32(attrs, nfqaCfgMaxLen, maxLen)
	attrs = appendAttrU32(attrs, nfqaCfgMask, cfgFailOpen|cfgGSO)
	if gso {
		// GSO packets whole (Linux 3.10+; an older kernel refuses the flag:
		// then without it, and the kernel segments them as before).
		if q.config(appendAttrU32(attrs, nfqaCfgFlags, flags|cfgGSO)) == nil {
			q.gso = true
			return nil
		}
	}
	if err := q.config(appendAttrU32(attrs, nfqaCfgFlags, flags)); err != nil {
		return fmt.Errorf("configure: %w", err)
	}
	return nil
}

// config sends an NFQNL_MSG_CONFIG with attrs and waits for its ack (the
// socket is still blocking-free: poll for the answer, bounded).
func (q *nlQueue) config(attrs []byte) error {
	q.seq++
	b := appendMsgHdr(nil, nfqnlMsgCfg, nlmFRequest|nlmFAck, q.seq, q.num)
	b = append(b, attrs...)
	finishMsg(b, 0)
	if _, err := unix.Write(q.fd, b); err != nil {
		return err
	}
	buf := make([]byte, 8192)
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		n, err := unix.Read(q.fd, buf)
		if err == unix.EAGAIN || err == unix.EINTR {
			fds := []unix.PollFd{{Fd: int32(q.fd), Events: unix.POLLIN}}
			unix.Poll(fds, 100)
			continue
		}
		if err != nil {
			return err
		}
		for rest := buf[:n]; ; {
			typ, body, r, ok := nextMsg(rest)
			if !ok {
				break
			}
			rest = r
			if typ == nfqnlMsgPkt {
				// A packet queued before the configuration is done (a
				// leftover ruleset): let it go on unchanged.
				if p, ok := parsePacket(body); ok {
					unix.Write(q.fd, appendVerdict(nil, q.num, p.id, nfAccept, false, 0, nil))
				}
				continue
			}
			if typ == nlmsgError && len(body) >= 4+nlmsgHdrLen && binary.NativeEndian.Uint32(body[4+8:]) == q.seq {
				if e := nlError(body); e != 0 {
					return syscall.Errno(-e)
				}
				return nil
			}
		}
	}
	return errors.New("no answer from nfnetlink_queue")
}

// batchMax is how many datagrams one read takes at most.
const batchMax = 32

// sendMax bounds one send of verdicts (the kernel refuses a message larger
// than the socket's send buffer).
const sendMax = 256 << 10

// slotSize is the read buffer of one packet message: netlink, nfgenmsg and
// attribute headers and a packet of up to pktMax bytes.
func slotSize(pktMax int) int { return pktMax + 512 }

// batch is the buffer of one read: up to batchMax datagrams.
type batch struct {
	size  int // bytes per slot
	slots [batchMax][]byte
	lens  [batchMax]int
	n     int
	hdrs  [batchMax]unix.Mmsghdr
	iovs  [batchMax]unix.Iovec
}

func newBatch(pktMax int) *batch {
	slot := slotSize(pktMax)
	b := &batch{size: slot}
	mem := make([]byte, batchMax*slot)
	for i := range b.slots {
		b.slots[i] = mem[i*slot : (i+1)*slot : (i+1)*slot]
		b.iovs[i].Base = &b.slots[i][0]
		b.iovs[i].SetLen(slot)
		b.hdrs[i].Hdr.Iov = &b.iovs[i]
		b.hdrs[i].Hdr.SetIovlen(1)
	}
	return b
}

// read fills b with the datagrams waiting on q, at least one: it waits in
// the Go poller until one comes (or the read deadline passes:
// os.ErrDeadlineExceeded); a hot queue first waits on its own thread
// (readHot).
func (q *nlQueue) read(b *batch) error {
	if q.hot {
		return q.readHot(b)
	}
	return pollerRead(q.rc, b)
}

// pollerRead is one read through rc that waits in the Go poller.
func pollerRead(rc syscall.RawConn, b *batch) error {
	var n int
	var errno syscall.Errno
	err := rc.Read(func(fd uintptr) bool {
		n, errno = b.recv(fd, unix.MSG_DONTWAIT)
		return errno != unix.EAGAIN && errno != unix.EINTR
	})
	if err != nil {
		return err
	}
	if errno != 0 {
		return errno
	}
	b.filled(n)
	return nil
}

// readHot is a pinned lane's read. While packets came within parkAfter it
// waits in poll(2) on the lane's own thread, which the kernel wakes
// directly (no poller in between, no hand-off to the locked thread), at
// most hotWait per call (os.ErrDeadlineExceeded: the lane's loop comes
// round). Past parkAfter without a packet it parks (park).
func (q *nlQueue) readHot(b *batch) error {
	for !q.stop.Load() {
		n, e := b.recv(uintptr(q.fd), unix.MSG_DONTWAIT)
		switch e {
		case 0:
			q.last = time.Now()
			b.filled(n)
			return nil
		case unix.EAGAIN, unix.EINTR:
		default:
			return e
		}
		if time.Since(q.last) >= parkAfter {
			return q.park(b)
		}
		ready, err := unix.Poll(q.pfd[:], int(hotWait/time.Millisecond))
		if err != nil && err != unix.EINTR {
			return fmt.Errorf("poll: %w", err)
		}
		if ready == 0 {
			break // the lane's loop comes round (a yield, a stop)
		}
	}
	return os.ErrDeadlineExceeded
}

// park waits for a packet in the Go poller: an idle queue then holds no
// thread awake, no P and no timer, and sysmon sleeps (docs/performance.md,
// "An idle daemon"). The socket is in the poller only while it parks,
// through a duplicate descriptor: registered for good, every packet would
// also wake the thread that waits in epoll for the runtime, to find no
// goroutine waiting (about 3 more context switches per connection). The
// first packet after a park costs one hand-off from that thread.
func (q *nlQueue) park(b *batch) error {
	dup, err := unix.FcntlInt(uintptr(q.fd), unix.F_DUPFD_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("park: dup: %w", err)
	}
	f := os.NewFile(uintptr(dup), fmt.Sprintf("nfqueue-%d", q.num))
	defer f.Close() // leaves the poller (EPOLL_CTL_DEL), then closes dup
	rc, err := f.SyscallConn()
	if err != nil {
		return fmt.Errorf("park: %w", err)
	}
	q.parked.Store(f)
	defer q.parked.Store(nil)
	if q.stop.Load() {
		return os.ErrDeadlineExceeded
	}
	if err := pollerRead(rc, b); err != nil {
		return err
	}
	q.last = time.Now()
	return nil
}

// recv is one recvmmsg into b's slots.
func (b *batch) recv(fd, flags uintptr) (int, syscall.Errno) {
	for i := range b.hdrs {
		b.hdrs[i].Hdr.Flags = 0
	}
	r, _, e := unix.Syscall6(unix.SYS_RECVMMSG, fd, uintptr(unsafe.Pointer(&b.hdrs[0])), batchMax, flags, 0, 0)
	return int(r), e
}

// filled records the n datagrams a read put in b.
func (b *batch) filled(n int) {
	b.n = n
	for i := 0; i < n; i++ {
		b.lens[i] = int(b.hdrs[i].Len)
		if b.hdrs[i].Hdr.Flags&unix.MSG_TRUNC != 0 {
			b.lens[i] = min(b.lens[i], b.size)
		}
	}
}

// send writes verdict messages to the kernel in one system call.
func (q *nlQueue) send(msgs []byte) error {
	for {
		_, err := unix.Write(q.fd, msgs)
		if err == unix.EINTR {
			continue
		}
		return err
	}
}

// sendv is send for messages in pieces: the kernel copies them into one
// message buffer as it would one write's.
func (q *nlQueue) sendv(iov [][]byte) error {
	for {
		_, err := unix.Writev(q.fd, iov)
		if err == unix.EINTR {
			continue
		}
		return err
	}
}

// interrupt makes a waiting read return (a deadline in the past); a hot
// read's poll(2) returns within hotWait anyway.
func (q *nlQueue) interrupt() {
	q.stop.Store(true)
	f := q.f
	if q.hot {
		f = q.parked.Load()
	}
	if f != nil {
		f.SetReadDeadline(time.Unix(1, 0))
	}
}

// close unbinds the queue: the kernel drops what is still queued on it.
func (q *nlQueue) close() error {
	if q.f == nil {
		return unix.Close(q.fd)
	}
	return q.f.Close()
}

func (q *nlQueue) number() uint16 { return q.num }
func (q *nlQueue) gsoOn() bool    { return q.gso }
