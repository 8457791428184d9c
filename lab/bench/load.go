package bench

import (
	"context"
	"encoding/binary"
	"fmt"
	"net"
	"os"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"

	"github.com/natreveal/natreveal/lab"
)

// Ports on the lab server: connPort accepts (real handshakes), floodPort is
// closed, so the server answers each raw SYN with a RST and the NAT's
// conntrack entry closes at once (the flood stays within the table).
const (
	connPort  = 8080
	floodPort = 9
)

// server accepts connections on the lab server and resets them at once.
type server struct {
	ln *net.TCPListener
	wg sync.WaitGroup
}

func startServer(ns string) (*server, error) {
	s := &server{}
	err := lab.Do(ns, func() error {
		ln, err := net.ListenTCP("tcp4", &net.TCPAddr{IP: net.ParseIP(lab.ServerAddr), Port: connPort})
		s.ln = ln
		return err
	})
	if err != nil {
		return nil, err
	}
	for range 2 {
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			for {
				c, err := s.ln.AcceptTCP()
				if err != nil {
					if ne, ok := err.(net.Error); ok && ne.Timeout() {
						continue
					}
					return
				}
				c.SetLinger(0)
				c.Close()
			}
		}()
	}
	return s, nil
}

func (s *server) close() { s.ln.Close(); s.wg.Wait() }

var serverSA = func() *unix.SockaddrInet4 {
	sa := &unix.SockaddrInet4{Port: connPort}
	copy(sa.Addr[:], net.ParseIP(lab.ServerAddr).To4())
	return sa
}()

// connectOnce makes one TCP handshake from the current thread's namespace
// and resets the connection (SO_LINGER 0: no TIME_WAIT, the port is free
// again). It returns the time connect() took.
func connectOnce() (time.Duration, error) {
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return 0, err
	}
	defer unix.Close(fd)
	unix.SetsockoptLinger(fd, unix.SOL_SOCKET, unix.SO_LINGER, &unix.Linger{Onoff: 1, Linger: 0})
	// connect() gives up after this (SO_SNDTIMEO bounds it on Linux), so a
	// lost SYN cannot hold a worker past the end of a measurement for long.
	tv := unix.NsecToTimeval(int64(1500 * time.Millisecond))
	unix.SetsockoptTimeval(fd, unix.SOL_SOCKET, unix.SO_SNDTIMEO, &tv)
	t0 := time.Now()
	err = unix.Connect(fd, serverSA)
	return time.Since(t0), err
}

// connRate runs workers closed-loop handshakes per client namespace for d
// and returns the connections completed within d per second, and the
// failures by error. The workers are pinned round-robin to the CPUs the
// bench may use, so the load comes from every CPU (a NIC's receive queues
// spread over the router's CPUs the same way).
func connRate(ctx context.Context, clients []string, workers int, d time.Duration) (float64, map[string]int, error) {
	cpus := cpuList()
	next := 0
	var ok atomic.Uint64
	var mu sync.Mutex
	fails := map[string]int{}
	var wg sync.WaitGroup
	errc := make(chan error, 1)
	deadline := time.Now().Add(d)
	for _, ns := range clients {
		for range workers {
			cpu := cpus[next%len(cpus)]
			next++
			wg.Add(1)
			go func() {
				defer wg.Done()
				if !enterPinned(ns, cpu, errc) {
					return
				}
				for ctx.Err() == nil && time.Now().Before(deadline) {
					_, err := connectOnce()
					if err != nil {
						mu.Lock()
						fails[err.Error()]++
						mu.Unlock()
						continue
					}
					if time.Now().Before(deadline) {
						ok.Add(1)
					}
				}
			}()
		}
	}
	wg.Wait()
	select {
	case err := <-errc:
		return 0, nil, err
	default:
	}
	return float64(ok.Load()) / d.Seconds(), fails, ctx.Err()
}

// pacedResult is one paced run: connect() durations, and the whole
// machine's CPU time per completed connection in its measured window.
type pacedResult struct {
	durs         []time.Duration
	late, failed int
	conns        uint64  // completed in the measured window
	cpuUsPerConn float64 // all CPUs (/proc/stat), µs per completed connection
	ctxtPerConn  float64 // the machine's context switches per completed connection
	// daemonUsPerConn is the daemon's threads' CPU time (user and system:
	// the verdict's send carries the packet on through the kernel) per
	// completed connection; 0 without a daemon.
	daemonUsPerConn float64
	// procsUsPerConn is this process's and the daemon's threads' CPU time
	// per completed connection: the generators, the server and the daemon,
	// with the kernel's packet work done in their system calls (softirqs
	// run at the end of a send count to the sender's thread, unless the
	// kernel has CONFIG_IRQ_TIME_ACCOUNTING, which the development VM's
	// has not: there it misses them). Unlike
	// cpuUsPerConn it leaves out other processes on a shared machine, and
	// softirqs run from idle or ksoftirqd.
	procsUsPerConn float64
}

// paced offers new connections at rate per second (open loop) for d from
// one slot per CPU the bench may use: a few workers pinned to that CPU in a
// client namespace (the slots alternate between the clients), the starts
// dealt round-robin over the slots. Starts that find a slot's workers all
// busy are counted as late, not queued. Between 20 % and 95 % of d it reads
// /proc/stat and the completions, for the CPU time per connection, and the
// CPU time of process pid (the daemon; 0: none).
func paced(ctx context.Context, clients []string, rate float64, d time.Duration, pid int) (res pacedResult, err error) {
	const workersPerSlot = 8
	cpus := cpuList()
	var mu sync.Mutex
	var wg sync.WaitGroup
	var done atomic.Uint64
	starts := make([]chan struct{}, len(cpus))
	errc := make(chan error, 1)
	for i, cpu := range cpus {
		ns := clients[i%len(clients)]
		starts[i] = make(chan struct{}, workersPerSlot)
		for range workersPerSlot {
			wg.Add(1)
			go func() {
				defer wg.Done()
				if !enterPinned(ns, cpu, errc) {
					for range starts[i] {
					}
					return
				}
				for range starts[i] {
					dt, err := connectOnce()
					mu.Lock()
					if err != nil {
						res.failed++
					} else {
						res.durs = append(res.durs, dt)
					}
					mu.Unlock()
					if err == nil {
						done.Add(1)
					}
				}
			}()
		}
	}
	interval := time.Duration(float64(time.Second) / rate)
	w0, w1 := d/5, d*19/20
	var t0, t1 cpuTicks
	var n0, n1, p0, p1, s0, s1 uint64
	var terr error
	self := os.Getpid()
	read := func(t *cpuTicks, n, pn, sn *uint64) {
		*n = done.Load()
		if pid > 0 {
			*pn = cpuNanos(pid)
		}
		*sn = cpuNanos(self)
		var e error
		if *t, e = readCPUTicks(); e != nil {
			terr = e
		}
	}
	start := time.Now()
	began, ended := false, false
	for i := 0; ctx.Err() == nil; i++ {
		next := start.Add(time.Duration(i) * interval)
		at := next.Sub(start)
		if at >= d {
			break
		}
		if wait := time.Until(next); wait > 0 {
			time.Sleep(wait)
		}
		if !began && at >= w0 {
			read(&t0, &n0, &p0, &s0)
			began = true
		}
		if !ended && at >= w1 {
			read(&t1, &n1, &p1, &s1)
			ended = true
		}
		select {
		case starts[i%len(starts)] <- struct{}{}:
		default:
			res.late++
		}
	}
	if began && !ended {
		read(&t1, &n1, &p1, &s1)
	}
	for _, c := range starts {
		close(c)
	}
	wg.Wait()
	if terr != nil {
		return res, terr
	}
	if res.conns = n1 - n0; res.conns > 0 {
		res.cpuUsPerConn = float64(t1.busy-t0.busy) * (1e6 / userHZ) / float64(res.conns)
		res.ctxtPerConn = float64(t1.ctxt-t0.ctxt) / float64(res.conns)
		res.daemonUsPerConn = float64(p1-p0) / 1e3 / float64(res.conns)
		res.procsUsPerConn = float64(s1-s0+p1-p0) / 1e3 / float64(res.conns)
	}
	select {
	case err = <-errc:
	default:
		err = ctx.Err()
	}
	return res, err
}

func percentile(durs []time.Duration, p float64) time.Duration {
	if len(durs) == 0 {
		return 0
	}
	s := slices.Clone(durs)
	slices.Sort(s)
	i := int(p * float64(len(s)-1))
	return s[i]
}

// flood sends raw TCP SYNs from the client namespace ns to the server's
// closed floodPort as fast as one thread pinned to CPU cpu can for d (at
// most maxPkts), each with the next source port of a ring of ports from
// firstPort (so conntrack entries are reused once the server's RST closed
// them: the table stays bounded; each generator of a client has a ring of
// its own). It counts what it sent into sent.
func flood(ctx context.Context, ns, src string, cpu, firstPort, ports int, d time.Duration, maxPkts int, sent *atomic.Uint64) error {
	errc := make(chan error, 1)
	go func() {
		errc <- func() error {
			if err := lab.Enter(ns); err != nil {
				return err
			}
			if err := pinThread(cpu); err != nil {
				return err
			}
			fd, err := unix.Socket(unix.AF_INET, unix.SOCK_RAW|unix.SOCK_CLOEXEC, unix.IPPROTO_RAW)
			if err != nil {
				return fmt.Errorf("raw socket: %w", err)
			}
			defer unix.Close(fd)
			if err := unix.Connect(fd, &unix.SockaddrInet4{Addr: serverSA.Addr}); err != nil {
				return err
			}
			pkt := synTemplate(net.ParseIP(src).To4(), serverSA.Addr[:])
			deadline := time.Now().Add(d)
			for i := 0; i < maxPkts; i++ {
				if i&255 == 0 && (ctx.Err() != nil || time.Now().After(deadline)) {
					return nil
				}
				setPort(pkt, uint16(firstPort+i%ports), uint32(i)*7919)
				if _, err := unix.Write(fd, pkt); err != nil {
					if err == unix.ENOBUFS || err == unix.EAGAIN {
						continue
					}
					return fmt.Errorf("send: %w", err)
				}
				sent.Add(1)
			}
			return nil
		}()
	}()
	return <-errc
}

// synTemplate is an IPv4 TCP SYN as Linux sends it: DF set (an atomic
// datagram, RFC 6864, so ip-id may write it), 20 option bytes (MSS,
// SACK-permitted, timestamps, window scale), leaving room for the HOST_ID
// option. The kernel fills in the IP checksum (IP_HDRINCL).
func synTemplate(src, dst []byte) []byte {
	p := make([]byte, 60)
	p[0], p[1] = 0x45, 0
	binary.BigEndian.PutUint16(p[2:], 60)
	binary.BigEndian.PutUint16(p[6:], 0x4000) // DF
	p[8], p[9] = 64, unix.IPPROTO_TCP
	copy(p[12:16], src)
	copy(p[16:20], dst)
	t := p[20:]
	binary.BigEndian.PutUint16(t[2:], floodPort)
	t[12] = 10 << 4 // data offset: 40 bytes
	t[13] = 0x02    // SYN
	binary.BigEndian.PutUint16(t[14:], 64240)
	copy(t[20:], []byte{
		2, 4, 0x05, 0xb4, // MSS 1460
		4, 2, // SACK permitted
		8, 10, 0, 0, 0, 1, 0, 0, 0, 0, // timestamps
		1,       // NOP
		3, 3, 7, // window scale
	})
	return p
}

// setPort writes the source port and sequence number and the TCP checksum
// (RFC 9293 §3.1: over the pseudo-header and the segment).
func setPort(p []byte, port uint16, seq uint32) {
	t := p[20:]
	binary.BigEndian.PutUint16(t[0:], port)
	binary.BigEndian.PutUint32(t[4:], seq)
	t[16], t[17] = 0, 0
	sum := uint32(0)
	for i := 12; i < 20; i += 2 { // addresses
		sum += uint32(p[i])<<8 | uint32(p[i+1])
	}
	sum += unix.IPPROTO_TCP + uint32(len(t))
	for i := 0; i < len(t); i += 2 {
		sum += uint32(t[i])<<8 | uint32(t[i+1])
	}
	for sum > 0xffff {
		sum = sum>>16 + sum&0xffff
	}
	binary.BigEndian.PutUint16(t[16:], ^uint16(sum))
}

// enterPinned moves the calling goroutine's thread into namespace ns and
// pins it to CPU cpu. On failure it reports the error on errc unless one is
// there already, and returns false.
func enterPinned(ns string, cpu int, errc chan<- error) bool {
	err := lab.Enter(ns)
	if err == nil {
		err = pinThread(cpu)
	}
	if err != nil {
		select {
		case errc <- err:
		default:
		}
		return false
	}
	return true
}
