package bench

// Established flows (issue 15): what natreveal costs the packets of
// long-lived connections it is done with, most of a busy NAT's packets.
// natreveal queues none of them; each only walks its nft chains (steer's
// `@inside` dispatch and ct mark test, remember's early return). Long-lived
// connections from both inside hosts to a server port no method selects
// carry 64-byte request/response transactions (TCP_RR-like): closed loop
// for the saturation rate, then paced below it for the whole machine's CPU
// per transaction and per packet crossing the NAT, and the latency.

import (
	"bufio"
	"context"
	"encoding/binary"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"text/tabwriter"
	"time"

	"golang.org/x/sys/unix"

	"github.com/natreveal/natreveal/internal/progress"
	"github.com/natreveal/natreveal/lab"
)

const (
	// estPort is the server port of the established flows: no method
	// selects it (http-header selects 80, proxy-protocol 7000).
	estPort = 8090
	// estMsg is the size of each request and each response.
	estMsg = 64
	// estPacedShare: the paced load is kernel only's saturation divided
	// by this, unless -established-rate sets it.
	estPacedShare = 4
)

// estMode is one way the NAT runs while the established flows cross it.
type estMode struct {
	name  string
	start func() (*daemon, error) // nil: kernel only
}

// estParams are the established table's settings.
type estParams struct {
	on    bool          // run the table
	conns int           // connections per inside client
	dur   time.Duration // each load's duration (saturation, then paced)
	rate  float64       // paced txn/s; 0: a quarter of kernel only's saturation in the first round
}

// estSample is one mode's established flows in one round.
type estSample struct {
	SatTxnRate float64 `json:"sat_txn_per_s"`
	// The paced load: its achieved rate, the whole machine's CPU per
	// transaction and per packet crossing the NAT (the NAT's public link,
	// both directions), packets per transaction.
	PacedTxnRate float64 `json:"paced_txn_per_s"`
	CPUPerTxn    float64 `json:"cpu_us_per_txn"`
	CPUPerPkt    float64 `json:"cpu_ns_per_pkt"`
	PktPerTxn    float64 `json:"pkts_per_txn"`
	// ProcsPerPkt is the CPU time of the bench's and the daemon's threads
	// per packet crossing the NAT: the generators, the server and the
	// daemon, with the kernel's packet work they run in their system
	// calls (here nearly all of it: each send carries its packet through
	// the veth pair, the NAT and the receiver's TCP). Unlike CPUPerPkt it
	// leaves out other processes on a shared machine.
	ProcsPerPkt float64 `json:"procs_cpu_ns_per_pkt"`
	// DaemonPerPkt is the daemon's share of ProcsPerPkt: for flows it
	// does not queue, its idle cost per second (the lanes' periodic
	// yields, the runtime) divided by the packet rate.
	DaemonPerPkt float64       `json:"daemon_cpu_ns_per_pkt"`
	P50          time.Duration `json:"lat_p50_ns"`
	P99          time.Duration `json:"lat_p99_ns"`
	Late         int           `json:"late"` // paced starts that found every connection of their thread busy
	// QueuedPerTxn is the packets queued to NFQUEUE per transaction over
	// both loads: ~0, natreveal is done with these flows.
	QueuedPerTxn float64 `json:"queued_per_txn"`
	Txns         uint64  `json:"txns"` // in both loads' windows
}

// EstResult is an established-table mode's medians over the rounds and its
// per-round differences to kernel only.
type EstResult struct {
	Mode         string      `json:"mode"`
	TxnRate      float64     `json:"txn_per_s"`     // saturation, closed loop
	SatTxnRatio  float64     `json:"sat_txn_ratio"` // x kernel only, median of the per-round ratios
	CPUPerTxn    float64     `json:"cpu_us_per_txn"`
	CPUPerPkt    float64     `json:"cpu_ns_per_pkt"`
	AddedCPUPkt  float64     `json:"added_cpu_ns_per_pkt"`
	AddedPktMin  float64     `json:"added_cpu_ns_per_pkt_min"`
	AddedPktMax  float64     `json:"added_cpu_ns_per_pkt_max"`
	ProcsPerPkt  float64     `json:"procs_cpu_ns_per_pkt"`
	AddedProcs   float64     `json:"added_procs_cpu_ns_per_pkt"`
	AddedProcMin float64     `json:"added_procs_cpu_ns_per_pkt_min"`
	AddedProcMax float64     `json:"added_procs_cpu_ns_per_pkt_max"`
	DaemonPerPkt float64     `json:"daemon_cpu_ns_per_pkt"`
	PktPerTxn    float64     `json:"pkts_per_txn"`
	P50          float64     `json:"lat_p50_us"`
	P99          float64     `json:"lat_p99_us"`
	AddedP99     float64     `json:"added_p99_us"`
	QueuedPerTxn float64     `json:"queued_per_txn"`
	Late         int         `json:"late"` // over all rounds
	Rounds       []estSample `json:"rounds"`
}

// establishedModes returns the established table's modes: kernel only, the
// SYN-path modes that run natreveal (not the queue-only baselines), and
// the selected-flow configurations of bulk (not its kernel only).
func establishedModes(l *lab.Lab, syn []mode, bulk []bulkMode, binary, dir string, queues int, lanes bool) []estMode {
	out := []estMode{{name: "kernel"}}
	for _, m := range syn {
		if m.passthrough || m.methods == "" {
			continue
		}
		out = append(out, estMode{name: m.name, start: func() (*daemon, error) {
			return startDaemon(l, m, binary, queues, lanes)
		}})
	}
	for _, m := range bulk {
		if m.config == "" {
			continue
		}
		out = append(out, estMode{name: m.name, start: func() (*daemon, error) {
			return startConfigDaemon(l, m, binary, dir)
		}})
	}
	return out
}

// runEstablished alternates the modes over the rounds (the first is
// kernel only, measured first in the first round: a quarter of its
// saturation is the paced rate unless ep.rate sets one; at half, the
// generators, the server and the NAT kept both CPUs of a 2-CPU machine
// nearly busy and p99 was milliseconds of queueing, whatever the mode).
func runEstablished(ctx context.Context, l *lab.Lab, modes []estMode, rounds int, ep estParams) ([]EstResult, float64, error) {
	ln, err := estListen(l.Srv)
	if err != nil {
		return nil, 0, err
	}
	defer unix.Close(ln)
	// A P for each generator and echo thread (two per CPU, each locked to
	// its OS thread and in and out of system calls all the time) and one
	// for the rest: with one P per CPU a thread back from epoll_wait
	// waited for a P, and p99 was milliseconds in every mode.
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(2*len(cpuList()) + 1))
	note("established flows: %d connections per client to port %d, %d-byte transactions, %v per load", ep.conns, estPort, estMsg, ep.dur)
	samples := make([][]estSample, len(modes))
	pl := progress.Stderr()
	defer pl.Done()
	for r := 0; r < rounds; r++ {
		for k := range modes {
			i := (r + k) % len(modes)
			stepProgress(pl, r, rounds, k, len(modes), "established "+modes[i].name)
			s, err := measureEstablished(ctx, l, modes[i], ln, ep)
			if err != nil {
				return nil, 0, fmt.Errorf("round %d, established %s: %w", r+1, modes[i].name, err)
			}
			if ep.rate == 0 {
				ep.rate = s.SatTxnRate / estPacedShare
				note("established: paced load at %.0f txn/s (a quarter of kernel only's saturation)", ep.rate)
			}
			pl.Printf("round %d established %-14s %8.0f txn/s  paced %8.0f txn/s  %6.2f µs CPU/txn  %6.0f ns CPU/pkt  %.2f pkt/txn  queued %.3f/txn  p50 %4.0f µs  p99 %5.0f µs  late %d\n",
				r+1, modes[i].name, s.SatTxnRate, s.PacedTxnRate, s.CPUPerTxn, s.CPUPerPkt, s.PktPerTxn, s.QueuedPerTxn, us(s.P50), us(s.P99), s.Late)
			samples[i] = append(samples[i], s)
		}
	}
	names := make([]string, len(modes))
	for i, m := range modes {
		names[i] = m.name
	}
	return summarizeEstablished(names, samples), ep.rate, nil
}

// summarizeEstablished turns each mode's rounds into its medians and, per
// round, its difference to the first mode (kernel only) of the same round:
// the median and spread of those, so that drift between rounds cancels.
func summarizeEstablished(names []string, samples [][]estSample) []EstResult {
	var out []EstResult
	var k []estSample
	if len(samples) > 0 {
		k = samples[0]
	}
	id := func(x float64) float64 { return x }
	for i, ss := range samples {
		r := EstResult{Mode: names[i], Rounds: ss}
		r.TxnRate = median(ss, func(s estSample) float64 { return s.SatTxnRate })
		r.CPUPerTxn = median(ss, func(s estSample) float64 { return s.CPUPerTxn })
		r.CPUPerPkt = median(ss, func(s estSample) float64 { return s.CPUPerPkt })
		r.PktPerTxn = median(ss, func(s estSample) float64 { return s.PktPerTxn })
		r.ProcsPerPkt = median(ss, func(s estSample) float64 { return s.ProcsPerPkt })
		r.DaemonPerPkt = median(ss, func(s estSample) float64 { return s.DaemonPerPkt })
		r.P50 = median(ss, func(s estSample) float64 { return us(s.P50) })
		r.P99 = median(ss, func(s estSample) float64 { return us(s.P99) })
		r.QueuedPerTxn = median(ss, func(s estSample) float64 { return s.QueuedPerTxn })
		var ratio, pkt, procs, p99 []float64
		for j := range min(len(ss), len(k)) {
			if k[j].SatTxnRate > 0 {
				ratio = append(ratio, ss[j].SatTxnRate/k[j].SatTxnRate)
			}
			pkt = append(pkt, ss[j].CPUPerPkt-k[j].CPUPerPkt)
			procs = append(procs, ss[j].ProcsPerPkt-k[j].ProcsPerPkt)
			p99 = append(p99, us(ss[j].P99)-us(k[j].P99))
		}
		r.SatTxnRatio = median(ratio, id)
		r.AddedCPUPkt = median(pkt, id)
		if len(pkt) > 0 {
			r.AddedPktMin, r.AddedPktMax = slices.Min(pkt), slices.Max(pkt)
		}
		r.AddedProcs = median(procs, id)
		if len(procs) > 0 {
			r.AddedProcMin, r.AddedProcMax = slices.Min(procs), slices.Max(procs)
		}
		r.AddedP99 = median(p99, id)
		for _, s := range ss {
			r.Late += s.Late
		}
		out = append(out, r)
	}
	return out
}

// measureEstablished runs one mode once: starts its daemon, opens the
// connections and lets natreveal finish with them, then the saturation and
// the paced load.
func measureEstablished(ctx context.Context, l *lab.Lab, m estMode, ln int, ep estParams) (s estSample, err error) {
	var pid int
	if m.start != nil {
		d, err := m.start()
		if err != nil {
			return s, err
		}
		defer func() {
			if _, e := d.stop(); e != nil && err == nil {
				err = e
			}
		}()
		pid = d.pid()
	}
	if err := lab.FlushConntrack(l.NAT); err != nil {
		return s, err
	}
	f, err := openFlows(l, ln, ep.conns)
	if err != nil {
		return s, err
	}
	defer f.close()
	// tcp-option tracks a flow's client segments until the server's first
	// segment after the SYN-ACK (RFC 7974 §4.2): one exchange on every
	// connection ends that, and the queue empties.
	if err := f.prime(); err != nil {
		return s, err
	}
	waitQueueEmpty(l.NAT, 5*time.Second)

	sat, err := f.load(ctx, l, 0, ep.dur, pid)
	if err != nil {
		return s, err
	}
	s.SatTxnRate = sat.rate
	rate := ep.rate
	if rate == 0 {
		rate = sat.rate / estPacedShare // the first mode of the first round: kernel only
	}
	pc, err := f.load(ctx, l, rate, ep.dur, pid)
	if err != nil {
		return s, err
	}
	s.PacedTxnRate, s.Late = pc.rate, pc.late
	s.P50, s.P99 = percentile(pc.durs, 0.5), percentile(pc.durs, 0.99)
	if pc.txns > 0 {
		s.CPUPerTxn = pc.busyNs / 1e3 / float64(pc.txns)
		s.PktPerTxn = float64(pc.pkts) / float64(pc.txns)
	}
	if pc.pkts > 0 {
		s.CPUPerPkt = pc.busyNs / float64(pc.pkts)
		s.ProcsPerPkt = pc.procsNs / float64(pc.pkts)
		s.DaemonPerPkt = pc.daemonNs / float64(pc.pkts)
	}
	s.Txns = sat.txns + pc.txns
	if s.Txns > 0 {
		s.QueuedPerTxn = float64(sat.queued+pc.queued) / float64(s.Txns)
	}
	return s, ctx.Err()
}

// connectRetry connects blocking socket fd to sa. A signal (Go's
// preemption) interrupts connect() without stopping the handshake: then it
// waits for the socket to become writable and takes its SO_ERROR.
func connectRetry(fd int, sa unix.Sockaddr) error {
	err := unix.Connect(fd, sa)
	if err != unix.EINTR {
		return err
	}
	pfd := []unix.PollFd{{Fd: int32(fd), Events: unix.POLLOUT}}
	for end := time.Now().Add(5 * time.Second); time.Now().Before(end); {
		n, err := unix.Poll(pfd, 100)
		if err == unix.EINTR || (err == nil && n == 0) {
			continue
		}
		if err != nil {
			return err
		}
		if e, err := unix.GetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_ERROR); err != nil || e != 0 {
			if err == nil {
				err = unix.Errno(e)
			}
			return err
		}
		return nil
	}
	return fmt.Errorf("connect: no handshake in 5 s")
}

// estListen opens the server's listening socket in namespace ns.
func estListen(ns string) (int, error) {
	fd := -1
	err := lab.Do(ns, func() error {
		var err error
		if fd, err = unix.Socket(unix.AF_INET, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0); err != nil {
			return err
		}
		unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_REUSEADDR, 1)
		if err := unix.Bind(fd, &unix.SockaddrInet4{Port: estPort, Addr: serverSA.Addr}); err != nil {
			return fmt.Errorf("bind :%d: %w", estPort, err)
		}
		return unix.Listen(fd, 4096)
	})
	if err != nil && fd >= 0 {
		unix.Close(fd)
	}
	return fd, err
}

// flows is one mode's set of established connections: the clients' ends
// (both inside hosts, interleaved) and the server's, with one echo thread
// per CPU the bench may use serving the server's ends.
type flows struct {
	cli, srv []int
	stop     atomic.Bool
	wg       sync.WaitGroup
	echoErr  chan error
}

// openFlows connects n connections from each inside client to the server
// and starts the server's echo threads.
func openFlows(l *lab.Lab, ln, n int) (*flows, error) {
	f := &flows{echoErr: make(chan error, len(cpuList()))}
	for i := range n {
		for _, ns := range []string{l.C1, l.C2} {
			var fd int
			err := lab.Do(ns, func() error {
				var err error
				if fd, err = unix.Socket(unix.AF_INET, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0); err != nil {
					return err
				}
				unix.SetsockoptLinger(fd, unix.SOL_SOCKET, unix.SO_LINGER, &unix.Linger{Onoff: 1, Linger: 0})
				unix.SetsockoptInt(fd, unix.IPPROTO_TCP, unix.TCP_NODELAY, 1)
				tv := unix.NsecToTimeval(int64(5 * time.Second))
				unix.SetsockoptTimeval(fd, unix.SOL_SOCKET, unix.SO_SNDTIMEO, &tv)
				unix.SetsockoptTimeval(fd, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &tv)
				return connectRetry(fd, &unix.SockaddrInet4{Port: estPort, Addr: serverSA.Addr})
			})
			if err != nil {
				if fd > 0 {
					unix.Close(fd)
				}
				f.close()
				return nil, fmt.Errorf("connection %d from %s: %w", i, ns, err)
			}
			f.cli = append(f.cli, fd)
			sfd, _, err := unix.Accept4(ln, unix.SOCK_CLOEXEC|unix.SOCK_NONBLOCK)
			for err == unix.EINTR {
				sfd, _, err = unix.Accept4(ln, unix.SOCK_CLOEXEC|unix.SOCK_NONBLOCK)
			}
			if err != nil {
				f.close()
				return nil, fmt.Errorf("accept: %w", err)
			}
			unix.SetsockoptInt(sfd, unix.IPPROTO_TCP, unix.TCP_NODELAY, 1)
			unix.SetsockoptLinger(sfd, unix.SOL_SOCKET, unix.SO_LINGER, &unix.Linger{Onoff: 1, Linger: 0})
			f.srv = append(f.srv, sfd)
		}
	}
	cpus := cpuList()
	for t, cpu := range cpus {
		var mine []int
		for j := t; j < len(f.srv); j += len(cpus) {
			mine = append(mine, f.srv[j])
		}
		f.wg.Add(1)
		go func() {
			defer f.wg.Done()
			if err := echo(cpu, mine, &f.stop); err != nil {
				f.echoErr <- fmt.Errorf("server echo: %w", err)
			}
		}()
	}
	return f, nil
}

// prime makes one blocking exchange on every connection, then makes the
// clients' ends non-blocking for the loads.
func (f *flows) prime() error {
	var msg, buf [estMsg]byte
	for _, fd := range f.cli {
		if err := writeFull(fd, msg[:]); err != nil {
			return fmt.Errorf("prime: %w", err)
		}
		for got := 0; got < estMsg; {
			n, err := unix.Read(fd, buf[got:])
			if err == unix.EINTR { // Go's preemption signal
				continue
			}
			if err != nil || n == 0 {
				return fmt.Errorf("prime: read: %d, %v", n, err)
			}
			got += n
		}
		if err := unix.SetNonblock(fd, true); err != nil {
			return err
		}
	}
	return nil
}

func (f *flows) close() {
	for _, fd := range f.cli {
		unix.Close(fd)
	}
	f.stop.Store(true)
	f.wg.Wait()
	for _, fd := range f.srv {
		unix.Close(fd)
	}
}

// estLoad is one load's measurement over its window (20 % to 95 % of its
// duration).
type estLoad struct {
	rate     float64 // transactions per second completed in the window
	txns     uint64  // completed in the window
	busyNs   float64 // the whole machine's busy CPU time in the window (/proc/stat)
	procsNs  float64 // the bench's and the daemon's threads' CPU time in the window
	daemonNs float64 // the daemon's share of procsNs
	pkts     uint64  // packets through the NAT's public link, both directions, in the window
	queued   uint64  // packets queued to NFQUEUE in the NAT namespace in the window
	durs     []time.Duration
	late     int
}

// estSnap is the running totals a load's window is the difference of.
type estSnap struct {
	at     time.Time
	txns   uint64
	ticks  cpuTicks
	procs  uint64 // ns
	daemon uint64 // ns
	pkts   uint64
	queued uint64
}

// load runs transactions on every client connection for d, from one
// thread per CPU the bench may use, each pinned to its CPU and serving its
// share of the connections (pid: the daemon, 0 for none): closed loop (rate 0: the next request as soon
// as the response is in) or paced at rate per second in all (open loop:
// each thread's timer starts the next request on one of its idle
// connections; a tick that finds none idle counts as late).
func (f *flows) load(ctx context.Context, l *lab.Lab, rate float64, d time.Duration, pid int) (estLoad, error) {
	cpus := cpuList()
	self := os.Getpid()
	threads := make([]estThread, len(cpus))
	start := time.Now()
	end := start.Add(d)
	w0, w1 := start.Add(d/5), start.Add(d*19/20)
	errc := make(chan error, len(cpus))
	var wg sync.WaitGroup
	for t, cpu := range cpus {
		th := &threads[t]
		th.w0, th.w1, th.end = w0, w1, end
		for j := t; j < len(f.cli); j += len(cpus) {
			th.conns = append(th.conns, &estConn{fd: f.cli[j]})
		}
		if rate > 0 {
			th.interval = time.Duration(float64(len(cpus)) * float64(time.Second) / rate)
			th.phase = th.interval * time.Duration(t) / time.Duration(len(cpus))
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := th.run(cpu); err != nil {
				errc <- err
			}
		}()
	}
	snap := func() (estSnap, error) {
		s := estSnap{at: time.Now()}
		for i := range threads {
			s.txns += threads[i].txns.Load()
		}
		if pid > 0 {
			s.daemon = cpuNanos(pid)
		}
		s.procs = cpuNanos(self) + s.daemon
		var err error
		if s.ticks, err = readCPUTicks(); err != nil {
			return s, err
		}
		q, err := readQueueStats(l.NAT)
		if err != nil {
			return s, err
		}
		s.queued = q.queued
		err = lab.Do(l.NAT, func() error {
			var err error
			s.pkts, err = ifacePackets("/proc/thread-self/net/dev", "pub")
			return err
		})
		return s, err
	}
	var s0, s1 estSnap
	var serr error
	time.Sleep(time.Until(w0))
	s0, serr = snap()
	time.Sleep(time.Until(w1))
	if serr == nil {
		s1, serr = snap()
	}
	wg.Wait()
	close(errc)
	if err := <-errc; err != nil {
		return estLoad{}, err
	}
	select {
	case err := <-f.echoErr:
		return estLoad{}, err
	default:
	}
	if serr != nil {
		return estLoad{}, serr
	}
	var res estLoad
	res.txns = s1.txns - s0.txns
	res.rate = float64(res.txns) / s1.at.Sub(s0.at).Seconds()
	res.busyNs = float64(s1.ticks.busy-s0.ticks.busy) * (1e9 / userHZ)
	res.procsNs = float64(s1.procs - s0.procs)
	res.daemonNs = float64(s1.daemon - s0.daemon)
	res.pkts = s1.pkts - s0.pkts
	res.queued = s1.queued - s0.queued
	for i := range threads {
		res.durs = append(res.durs, threads[i].durs...)
		res.late += threads[i].late
	}
	return res, ctx.Err()
}

// estConn is one client connection in a load.
type estConn struct {
	fd   int
	got  int       // bytes of the response read so far
	sent time.Time // the request's send; zero: idle
}

// estThread is one load generator thread and its connections.
type estThread struct {
	conns           []*estConn
	interval, phase time.Duration // paced: the thread's timer period and its first tick; 0: closed loop
	w0, w1, end     time.Time
	txns            atomic.Uint64 // completed transactions
	durs            []time.Duration
	late, next      int
}

var estRequest [estMsg]byte

// pinnedEpoll locks the calling goroutine to its thread for good (Go
// discards the pinned thread when the goroutine ends), pins it to cpu and
// returns a new epoll instance.
func pinnedEpoll(cpu int) (int, error) {
	runtime.LockOSThread()
	if err := pinThread(cpu); err != nil {
		return -1, err
	}
	ep, err := unix.EpollCreate1(unix.EPOLL_CLOEXEC)
	if err != nil {
		return -1, fmt.Errorf("epoll: %w", err)
	}
	return ep, nil
}

func (th *estThread) run(cpu int) error {
	ep, err := pinnedEpoll(cpu)
	if err != nil {
		return err
	}
	defer unix.Close(ep)
	byFD := map[int32]*estConn{}
	for _, c := range th.conns {
		byFD[int32(c.fd)] = c
		if err := unix.EpollCtl(ep, unix.EPOLL_CTL_ADD, c.fd, &unix.EpollEvent{Events: unix.EPOLLIN, Fd: int32(c.fd)}); err != nil {
			return fmt.Errorf("epoll add: %w", err)
		}
	}
	tfd := -1
	if th.interval > 0 {
		if tfd, err = unix.TimerfdCreate(unix.CLOCK_MONOTONIC, unix.TFD_NONBLOCK|unix.TFD_CLOEXEC); err != nil {
			return fmt.Errorf("timerfd: %w", err)
		}
		defer unix.Close(tfd)
		its := unix.ItimerSpec{Interval: unix.NsecToTimespec(int64(th.interval)), Value: unix.NsecToTimespec(int64(max(th.phase, time.Microsecond)))}
		if err := unix.TimerfdSettime(tfd, 0, &its, nil); err != nil {
			return fmt.Errorf("timerfd: %w", err)
		}
		if err := unix.EpollCtl(ep, unix.EPOLL_CTL_ADD, tfd, &unix.EpollEvent{Events: unix.EPOLLIN, Fd: int32(tfd)}); err != nil {
			return fmt.Errorf("epoll add: %w", err)
		}
	} else {
		for _, c := range th.conns {
			if err := th.send(c); err != nil {
				return err
			}
		}
	}
	evs := make([]unix.EpollEvent, 64)
	var buf [estMsg]byte
	for time.Now().Before(th.end) {
		n, err := unix.EpollWait(ep, evs, 20)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return fmt.Errorf("epoll wait: %w", err)
		}
		for _, ev := range evs[:n] {
			if int(ev.Fd) == tfd {
				if _, err := unix.Read(tfd, buf[:8]); err != nil {
					if err == unix.EAGAIN {
						continue
					}
					return fmt.Errorf("timerfd: %w", err)
				}
				// Expirations since the last read (normally 1).
				for range binary.NativeEndian.Uint64(buf[:8]) {
					if err := th.start(); err != nil {
						return err
					}
				}
				continue
			}
			c := byFD[ev.Fd]
			k, err := unix.Read(c.fd, buf[c.got:])
			if err == unix.EAGAIN {
				continue
			}
			if err != nil || k == 0 {
				return fmt.Errorf("client read: %d, %v", k, err)
			}
			if c.got += k; c.got < estMsg {
				continue
			}
			now := time.Now()
			if th.interval > 0 && !now.Before(th.w0) && now.Before(th.w1) {
				th.durs = append(th.durs, now.Sub(c.sent))
			}
			c.got, c.sent = 0, time.Time{}
			th.txns.Add(1)
			if th.interval == 0 {
				if err := th.send(c); err != nil {
					return err
				}
			}
		}
	}
	// Drain what is in flight, so that the next load starts with every
	// connection idle and no response left to read.
	for deadline := time.Now().Add(2 * time.Second); ; {
		busy := 0
		for _, c := range th.conns {
			if c.sent.IsZero() {
				continue
			}
			busy++
			k, err := unix.Read(c.fd, buf[c.got:])
			if err == unix.EAGAIN {
				continue
			}
			if err != nil || k == 0 {
				return fmt.Errorf("client read: %d, %v", k, err)
			}
			if c.got += k; c.got == estMsg {
				c.got, c.sent = 0, time.Time{}
			}
		}
		if busy == 0 {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%d transactions still unanswered 2 s after the load", busy)
		}
		time.Sleep(time.Millisecond)
	}
}

// start sends a request on the thread's next idle connection (paced).
func (th *estThread) start() error {
	for range th.conns {
		c := th.conns[th.next]
		th.next = (th.next + 1) % len(th.conns)
		if c.sent.IsZero() {
			return th.send(c)
		}
	}
	th.late++
	return nil
}

func (th *estThread) send(c *estConn) error {
	c.sent = time.Now()
	if err := writeFull(c.fd, estRequest[:]); err != nil {
		return fmt.Errorf("client write: %w", err)
	}
	return nil
}

// writeFull writes b, which fits in an empty socket buffer many times over.
func writeFull(fd int, b []byte) error {
	n, err := unix.Write(fd, b)
	for err == unix.EINTR { // Go's preemption signal, before anything was sent
		n, err = unix.Write(fd, b)
	}
	if err == nil && n != len(b) {
		err = fmt.Errorf("short write %d of %d", n, len(b))
	}
	return err
}

// echo answers every estMsg bytes read on fds with estMsg bytes, from one
// thread pinned to cpu, until stop (or every connection closed).
func echo(cpu int, fds []int, stop *atomic.Bool) error {
	ep, err := pinnedEpoll(cpu)
	if err != nil {
		return err
	}
	defer unix.Close(ep)
	got := map[int32]int{}
	for _, fd := range fds {
		got[int32(fd)] = 0
		if err := unix.EpollCtl(ep, unix.EPOLL_CTL_ADD, fd, &unix.EpollEvent{Events: unix.EPOLLIN, Fd: int32(fd)}); err != nil {
			return fmt.Errorf("epoll add: %w", err)
		}
	}
	evs := make([]unix.EpollEvent, 64)
	var buf [estMsg]byte
	for !stop.Load() && len(got) > 0 {
		n, err := unix.EpollWait(ep, evs, 50)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return fmt.Errorf("epoll wait: %w", err)
		}
		for _, ev := range evs[:n] {
			g := got[ev.Fd]
			k, err := unix.Read(int(ev.Fd), buf[g:])
			if err == unix.EAGAIN {
				continue
			}
			if err != nil || k == 0 { // the client closed (reset) it
				unix.EpollCtl(ep, unix.EPOLL_CTL_DEL, int(ev.Fd), nil)
				delete(got, ev.Fd)
				continue
			}
			if g += k; g < estMsg {
				got[ev.Fd] = g
				continue
			}
			got[ev.Fd] = 0
			if err := writeFull(int(ev.Fd), buf[:]); err != nil && !stop.Load() {
				return err
			}
		}
	}
	return nil
}

// ifacePackets is the received plus transmitted packets of interface name
// in a /proc/net/dev file.
func ifacePackets(path, name string) (uint64, error) {
	fh, err := os.Open(path)
	if err != nil {
		return 0, err
	}
	defer fh.Close()
	sc := bufio.NewScanner(fh)
	for sc.Scan() {
		dev, rest, ok := strings.Cut(sc.Text(), ":")
		if !ok || strings.TrimSpace(dev) != name {
			continue
		}
		f := strings.Fields(rest)
		if len(f) < 10 {
			return 0, fmt.Errorf("%s: short line for %s", path, name)
		}
		rx, err1 := strconv.ParseUint(f[1], 10, 64)
		tx, err2 := strconv.ParseUint(f[9], 10, 64)
		if err1 != nil || err2 != nil {
			return 0, fmt.Errorf("%s: %s: %v %v", path, name, err1, err2)
		}
		return rx + tx, nil
	}
	if err := sc.Err(); err != nil {
		return 0, err
	}
	return 0, fmt.Errorf("%s: no interface %s", path, name)
}

// startConfigDaemon runs `natreveal run` with bulk mode m's configuration
// (written into dir).
func startConfigDaemon(l *lab.Lab, m bulkMode, binary, dir string) (*daemon, error) {
	cfg := filepath.Join(dir, m.name+".yaml")
	if err := os.WriteFile(cfg, []byte(m.config), 0o644); err != nil {
		return nil, err
	}
	return startDaemonArgs(l, m.name, []string{binary, "run", "--status-socket=", "--config", cfg})
}

// printEstablished prints the established-flows table.
func printEstablished(f *os.File, rep *report) {
	k := rep.Established[0]
	fmt.Fprintf(f, "natreveal bench %s, Linux %s, CPUs %v: established flows, %d connections per client to a port no method selects, %d-byte request and response, paced load %.0f txn/s, median of %d round(s)\n",
		rep.Date, rep.Kernel, rep.CPUList, rep.EstConns, estMsg, rep.EstRate, len(k.Rounds))
	fmt.Fprintln(f, "(CPU: the whole machine's; procs: the bench's and the daemon's threads', packet work in their system calls included; daemon: its share; per packet crossing the NAT)")
	fmt.Fprintln(f)
	w := tabwriter.NewWriter(f, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(w, "mode\tsat txn/s\tx kernel\tCPU µs/txn\tpkt/txn\tCPU ns/pkt\t+CPU ns/pkt\t(min..max)\tprocs ns/pkt\t+procs ns/pkt\t(min..max)\tdaemon ns/pkt\tqueued/txn\tp50 µs\tp99 µs\t+p99 µs\tlate\t")
	for _, r := range rep.Established {
		fmt.Fprintf(w, "%s\t%.0f\t%.2f\t%.2f\t%.2f\t%.0f\t%+.0f\t%.0f..%.0f\t%.0f\t%+.0f\t%.0f..%.0f\t%.0f\t%.3f\t%.0f\t%.0f\t%+.0f\t%d\t\n",
			r.Mode, r.TxnRate, r.SatTxnRatio, r.CPUPerTxn, r.PktPerTxn, r.CPUPerPkt, r.AddedCPUPkt, r.AddedPktMin, r.AddedPktMax,
			r.ProcsPerPkt, r.AddedProcs, r.AddedProcMin, r.AddedProcMax, r.DaemonPerPkt, r.QueuedPerTxn, r.P50, r.P99, r.AddedP99, r.Late)
	}
	w.Flush()
}
