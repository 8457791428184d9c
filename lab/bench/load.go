package bench

import (
	"context"
	"encoding/binary"
	"fmt"
	"net"
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
// failures by error.
func connRate(ctx context.Context, clients []string, workers int, d time.Duration) (float64, map[string]int, error) {
	var ok atomic.Uint64
	var mu sync.Mutex
	fails := map[string]int{}
	var wg sync.WaitGroup
	errc := make(chan error, 1)
	deadline := time.Now().Add(d)
	for _, ns := range clients {
		for range workers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				if err := lab.Enter(ns); err != nil {
					select {
					case errc <- err:
					default:
					}
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

// latency paces new connections at rate per second (open loop) for d,
// alternating the client namespaces, and returns the connect() durations.
// Starts that find every worker busy are counted as late, not queued.
func latency(ctx context.Context, clients []string, rate float64, d time.Duration) (durs []time.Duration, late, failed int, err error) {
	const workersPerNS = 32
	var mu sync.Mutex
	var wg sync.WaitGroup
	starts := make([]chan struct{}, len(clients))
	errc := make(chan error, 1)
	for i, ns := range clients {
		starts[i] = make(chan struct{}, workersPerNS)
		for range workersPerNS {
			wg.Add(1)
			go func() {
				defer wg.Done()
				if err := lab.Enter(ns); err != nil {
					select {
					case errc <- err:
					default:
					}
					for range starts[i] {
					}
					return
				}
				for range starts[i] {
					dt, err := connectOnce()
					mu.Lock()
					if err != nil {
						failed++
					} else {
						durs = append(durs, dt)
					}
					mu.Unlock()
				}
			}()
		}
	}
	interval := time.Duration(float64(time.Second) / rate)
	start := time.Now()
	for i := 0; ctx.Err() == nil; i++ {
		next := start.Add(time.Duration(i) * interval)
		if next.Sub(start) >= d {
			break
		}
		if w := time.Until(next); w > 0 {
			time.Sleep(w)
		}
		select {
		case starts[i%len(starts)] <- struct{}{}:
		default:
			late++
		}
	}
	for _, c := range starts {
		close(c)
	}
	wg.Wait()
	select {
	case err = <-errc:
	default:
		err = ctx.Err()
	}
	return durs, late, failed, err
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
// closed floodPort as fast as one thread can for d (at most maxPkts), each
// with the next source port of a ring of ports (so conntrack entries are
// reused once the server's RST closed them: the table stays bounded). It
// returns the number sent.
func flood(ctx context.Context, ns, src string, d time.Duration, maxPkts int, sent *atomic.Uint64) error {
	errc := make(chan error, 1)
	go func() {
		errc <- func() error {
			if err := lab.Enter(ns); err != nil {
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
			const firstPort, ports = 20000, 30000
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
