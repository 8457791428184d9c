// Package queue reads packets from NFQUEUE, hands them to a bounded worker
// pool, and returns verdicts: accept, possibly rewritten and marked. It never
// drops: on any failure the packet goes on unchanged (fail open), and the
// ruleset's bypass flag lets traffic flow when no daemon listens. With
// Config.FailOpen false, a packet the backlog cannot take is dropped
// instead (backlog-dropped): fail closed means no SYN leaves unmarked. The
// Config.Closed queues after the others are fail closed whatever FailOpen
// says: selected flows' packets, which must never pass untranslated.
//
// Each queue is a lane of its own: a reader takes every packet waiting on
// the queue's netlink socket in one system call (recvmmsg, nlsock.go), copies
// each into a free job buffer (none free: the backlog is full, the packet is
// accepted unchanged and counted) and hands the read's jobs as one group to
// the lane's workers, which answer the whole group in one send; or, with
// PerCPU, answers the group itself on a thread pinned to the queue's CPUs.
package queue

import (
	"context"
	"errors"
	"fmt"
	"os"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/natreveal/natreveal/packet"
	"golang.org/x/sys/unix"
)

// Config sizes the readers and the pool.
type Config struct {
	Num, Count uint16
	// Closed is how many fail-closed queues follow the Count others
	// (Num+Count..Num+Count+Closed-1; 0 or Count): bound without
	// NFQA_CFG_F_FAIL_OPEN and with lanes that drop what their backlog
	// cannot take, whatever FailOpen says. The ruleset sends selected
	// flows' packets there (rules.Spec.SelectQueues): one that passed
	// untranslated would corrupt its stream. Lane i of either range
	// serves the same CPUs (CPU fanout sends CPU c's packets to queue
	// c mod Count of each range).
	Closed   uint16
	MaxLen   uint32 // packets the kernel holds per queue
	FailOpen bool   // kernel accepts instead of dropping when a queue is full; false: a full backlog drops too
	Workers  int    // 0: one per CPU; spread over the Count queues, at least one each (as many again for the Closed ones)
	Backlog  int    // packets waiting for a worker, over the Count queues (as many again for the Closed ones); past that, accepted unchanged
	RcvBuf   int    // socket receive buffer bytes
	// GSO asks the kernel to queue GSO (and GRO) packets whole
	// (NFQA_CFG_F_GSO) instead of cutting each into MTU-sized segments
	// first: a bulk transfer then costs one queue round trip per up to 64
	// KiB. Rewritten packets get their TCP/UDP checksum completed here when
	// the kernel left it partial. Only for handlers that may see a TCP
	// super-packet (their segments all get the same rewrite) and that
	// leave UDP super-packets alone: they are accepted unchanged.
	GSO bool
	// PerCPU serves each queue with one thread of its own that reads,
	// handles and answers its packets itself, pinned to the CPUs whose
	// packets the queue gets under CPU fanout (queue Num+i: CPUs c with c
	// mod Count == i): no hand-off between threads, the wake-up on the CPU
	// that queued the packet, and the rest of the packet's way after the
	// verdict (which runs in the verdict's send) there too. The workers
	// then only take reads of spillMin packets or more (a backlog). Meant
	// for Count > 1, the ruleset fanning out by CPU.
	PerCPU bool
	Logf   func(format string, a ...any)
	// Live, when set, follows Serve's loops for a watchdog (Liveness.Stuck).
	Live *Liveness
}

// bufSize is the largest packet a small job buffer holds: jumbo frames
// included. Without GSO a longer one arrives cut short (NFQA_CAP_LEN) and is
// accepted unchanged.
const bufSize = 9216

// gsoMax is the largest packet the kernel copies whole with GSO on: the
// netlink attribute's 16-bit length less its header (NFQNL_MAX_COPY_RANGE);
// the IPv4 Total Length bounds a GSO packet to 65535 anyway. A longer one
// (a GRO packet of 65532-65535 bytes) is cut short and dropped: accepting it
// unchanged could let an untranslated segment of a selected flow through.
const gsoMax = 0xffff - nlaHdrLen

// bigBuf is a big job buffer: a GSO packet, and room behind it to render
// its rewritten payload (translate.go) and grow it.
const bigBuf = 2*(gsoMax+1) + packet.Headroom

// bigJobs is how many big job buffers a lane has: packets that need one
// wait for one (they are only ever held by a worker for one packet).
const bigJobs = 48

type job struct {
	id   uint32
	meta Meta
	n    int
	buf  []byte
	big  bool // from lane.big
}

// group is the jobs of one read, answered with one send.
type group struct {
	jobs [batchMax]*job
	n    int
}

// Hooks let the caller steer packets to the queues only while they are read.
type Hooks struct {
	// Bound runs once every queue is bound (install the ruleset here); its
	// error aborts Serve.
	Bound func() error
	// Unbinding runs when Serve stops, before the queues close (remove the
	// ruleset here): packets already queued are still answered, since the
	// kernel drops whatever sits in a queue when its listener goes.
	Unbinding func()
}

// Drain bounds: after Unbinding, Serve keeps reading until no packet came
// for drainIdle, at most drainMax.
const (
	drainIdle = 50 * time.Millisecond
	drainMax  = time.Second
)

// lane is one queue with its reader, job buffers and workers.
type lane struct {
	q      socket
	free   chan *job   // job buffers not in use: the backlog
	groups chan *group // reads waiting for a worker
	spare  chan *group // empty groups
	big    chan *job   // big job buffers not in use (GSO)
	pktMax int         // largest packet read whole
	// failClosed: a packet the backlog cannot take is dropped, not
	// accepted unchanged (Config.FailOpen false: no SYN leaves unmarked;
	// a Config.Closed queue: no selected flow's segment passes
	// untranslated).
	failClosed bool
	// pinned: the reader is a PerCPU lane's thread, which waits in the
	// read itself (poll(2), nlQueue.readHot) while packets come, parking
	// in the Go poller only when its queue is idle (see yieldEvery).
	pinned bool

	busy []atomic.Int64 // the reader's (0) and each worker's busy mark (liveness.go)
}

// Serve binds the queues, then processes packets until ctx ends or a queue
// fails. It returns the first fatal error, nil on a clean stop.
func Serve(ctx context.Context, cfg Config, h PacketHandler, st Counter, hooks Hooks) error {
	if cfg.Count == 0 {
		cfg.Count = 1
	}
	var socks []socket
	closeAll := func() {
		for _, s := range socks {
			s.close()
		}
	}
	if last := int(cfg.Num) + int(cfg.Count) + int(cfg.Closed) - 1; last > 0xffff {
		return fmt.Errorf("queue: queues %d..%d go beyond 65535", cfg.Num, last)
	}
	gso := false
	for i := range cfg.Count + cfg.Closed {
		copyRange := uint32(bufSize)
		if cfg.GSO {
			copyRange = gsoMax
		}
		// A Closed queue: the kernel drops what it cannot hold.
		failOpen := cfg.FailOpen && i < cfg.Count
		q, err := openNLQueue(cfg.Num+i, copyRange, cfg.MaxLen, failOpen, cfg.GSO, cfg.RcvBuf, cfg.PerCPU)
		if err != nil {
			closeAll()
			return fmt.Errorf("queue: bind queue %d: %w", cfg.Num+i, err)
		}
		if i == 0 {
			gso = q.gso
		}
		socks = append(socks, q)
	}
	if cfg.GSO && !gso && cfg.Logf != nil {
		cfg.Logf("queue: the kernel refused NFQA_CFG_F_GSO: GSO packets are queued segment by segment")
	}
	return serve(ctx, cfg, socks, h, st, hooks)
}

// socket is one bound queue (nlQueue; a fake in tests).
type socket interface {
	number() uint16
	gsoOn() bool // GSO packets come whole
	read(b *batch) error
	send(msgs []byte) error
	sendv(iov [][]byte) error
	interrupt()
	close() error
}

// serve runs lanes on bound sockets, one per queue, until ctx ends or one
// fails; it closes them. The last cfg.Closed sockets are fail closed.
func serve(ctx context.Context, cfg Config, socks []socket, h PacketHandler, st Counter, hooks Hooks) error {
	if cfg.Workers <= 0 {
		cfg.Workers = runtime.NumCPU()
	}
	if cfg.Backlog <= 0 {
		cfg.Backlog = 1024
	}
	if cfg.Logf == nil {
		cfg.Logf = func(string, ...any) {}
	}
	// open: the sockets of the first range; the Closed ones follow, each
	// lane sized and pinned as the first range's lane of its index.
	open := max(1, len(socks)-int(cfg.Closed))
	if count := len(socks); cfg.PerCPU && runtime.GOMAXPROCS(0) <= count {
		// The pinned lanes wait in system calls, each holding its P.
		// With no P idle, sysmon retakes a lane's P once a wait has
		// lasted one of its ticks (20 µs at first) and, having retaken
		// one, keeps its shortest period: thousands of wake-ups a second
		// (docs/performance.md, "Where the per-connection cost goes").
		// One P more than lanes stays idle, and sysmon leaves waits
		// alone for 10 ms (see yieldEvery for what it does then).
		runtime.GOMAXPROCS(count + 1)
		defer runtime.SetDefaultGOMAXPROCS()
	}
	workers := max(1, cfg.Workers/open)
	backlog := max(1, cfg.Backlog/open)

	var lanes []*lane
	closeAll := func() {
		for _, l := range lanes {
			l.q.close()
		}
	}
	for i, q := range socks {
		l := &lane{q: q, free: make(chan *job, backlog), groups: make(chan *group, backlog+1),
			spare: make(chan *group, backlog+1), pktMax: bufSize, busy: make([]atomic.Int64, 1+workers),
			failClosed: !cfg.FailOpen || i >= open}
		for range backlog {
			l.free <- &job{buf: make([]byte, bufSize+packet.Headroom)}
		}
		if q.gsoOn() {
			l.pktMax = gsoMax
			l.big = make(chan *job, bigJobs)
			for range bigJobs {
				l.big <- &job{buf: make([]byte, bigBuf), big: true}
			}
		}
		// Every group in use holds a job, and the reader one more.
		for range backlog + 1 {
			l.spare <- &group{}
		}
		lanes = append(lanes, l)
	}

	cfg.Live.start(lanes)
	defer cfg.Live.stop()

	// Readers run until the drain is over, not until ctx ends.
	var stopping atomic.Bool
	fatal := make(chan error, len(lanes))
	var readers, wg sync.WaitGroup
	cpus := allowedCPUs()
	for i, l := range lanes {
		readers.Add(1)
		if cfg.PerCPU {
			go func() {
				defer readers.Done()
				// The thread ends with the goroutine (never unlocked), and
				// its affinity with it.
				runtime.LockOSThread()
				if err := pin(cpus, i%open, open); err != nil {
					cfg.Logf("queue: queue %d: %v: its thread is not pinned", l.q.number(), err)
				}
				vs := newVerdicts(l)
				l.pinned = true
				l.read(&stopping, st, cfg.Live, fatal, func(g *group) {
					if g.n >= spillMin {
						l.groups <- g // a backlog: the workers take it, on any CPU
						return
					}
					l.answer(h, st, vs, g)
				})
			}()
		} else {
			go func() {
				defer readers.Done()
				l.read(&stopping, st, cfg.Live, fatal, func(g *group) { l.groups <- g })
			}()
		}
		for w := range workers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				l.work(h, st, cfg.Live, &l.busy[1+w])
			}()
		}
	}
	shutdown := func() {
		stopping.Store(true)
		for _, l := range lanes {
			l.q.interrupt()
		}
		readers.Wait() // nothing sends on groups any more
		for _, l := range lanes {
			close(l.groups)
		}
		wg.Wait()
		closeAll()
	}
	if hooks.Bound != nil {
		if err := hooks.Bound(); err != nil {
			shutdown()
			return err
		}
	}

	var err error
	select {
	case <-ctx.Done():
	case err = <-fatal:
	}
	if hooks.Unbinding != nil {
		hooks.Unbinding()
	}
	if err == nil {
		drain(st, lanes)
	}
	shutdown()
	return err
}

// drain waits until the readers saw no packet for drainIdle and the workers
// took every job, at most drainMax.
func drain(st Counter, lanes []*lane) {
	deadline := time.Now().Add(drainMax)
	last, idleSince := st.Load(Packets), time.Now()
	for time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
		waiting := 0
		for _, l := range lanes {
			waiting += len(l.groups)
		}
		if n := st.Load(Packets); n != last || waiting > 0 {
			last, idleSince = n, time.Now()
			continue
		}
		if time.Since(idleSince) >= drainIdle {
			return
		}
	}
}

// read is a lane's reader: until stopping, it takes what the queue holds,
// hands packets to hand as one group (the workers, or answer on this
// thread) and answers itself those it cannot hand over (backlog full, cut
// short).
func (l *lane) read(stopping *atomic.Bool, st Counter, live *Liveness, fatal chan<- error, hand func(*group)) {
	b := newBatch(l.pktMax)
	var out []byte    // verdicts the reader sends itself
	ran := time.Now() // pinned: when the scheduler last ran this goroutine
	for {
		if l.pinned && time.Since(ran) >= yieldEvery {
			runtime.Gosched()
			ran = time.Now()
		}
		if err := l.q.read(b); err != nil {
			if stopping.Load() {
				return
			}
			if errors.Is(err, unix.ENOBUFS) || errors.Is(err, os.ErrDeadlineExceeded) {
				continue // NETLINK_NO_ENOBUFS makes the first rare; a stale deadline
			}
			fatal <- fmt.Errorf("queue: queue %d: receive: %w", l.q.number(), err)
			return
		}
		live.markBusy(&l.busy[0])
		g := <-l.spare
		packets, own := 0, 0
		for i := 0; i < b.n; i++ {
			for rest := b.slots[i][:b.lens[i]]; ; {
				typ, body, r, ok := nextMsg(rest)
				if !ok {
					break
				}
				rest = r
				switch typ {
				case nlmsgError:
					// A verdict the kernel refused (unknown id: it was
					// answered already, or the queue was flushed).
					if nlError(body) != 0 {
						st.Add(VerdictErrors, 1)
					}
				case nfqnlMsgPkt:
					packets++
					p, ok := parsePacket(body)
					if !ok {
						continue // no id: nothing to answer
					}
					pkt := body[p.off : p.off+p.n]
					if p.truncated || p.n > l.pktMax {
						st.Add(Oversize, 1)
						verdict := uint32(nfAccept)
						if p.meta.GSO {
							verdict = nfDrop // see gsoMax
						}
						out = appendVerdict(out, l.q.number(), p.id, verdict, false, 0, nil)
						own++
						continue
					}
					if p.meta.GSO {
						st.Add(GSOPackets, 1)
					}
					if p.meta.GSO && !gsoTCP(pkt) {
						// A UDP (or other) super-packet: its datagrams would
						// all get one rewrite. Let it go as it is.
						st.Add(GSOPassed, 1)
						out = appendVerdict(out, l.q.number(), p.id, nfAccept, false, 0, nil)
						own++
						continue
					}
					if l.big != nil && p.n > bufSize/2 {
						// A big buffer also for a packet that fits a small
						// one but leaves too little room behind it to
						// render its rewritten payload (translate.go).
						var j *job
						select {
						case j = <-l.big:
						default:
							// All held: hand over what this read has so far
							// (its jobs may hold them), then wait.
							if g.n > 0 {
								hand(g)
								g = <-l.spare
							}
							j = <-l.big
						}
						j.id, j.meta, j.n = p.id, p.meta, copy(j.buf, pkt)
						g.jobs[g.n] = j
						g.n++
						continue
					}
					select {
					case j := <-l.free:
						j.id, j.meta, j.n = p.id, p.meta, copy(j.buf, pkt)
						g.jobs[g.n] = j
						g.n++
					default:
						st.Add(BacklogFull, 1)
						verdict := uint32(nfAccept)
						if l.failClosed {
							verdict = nfDrop // the sender retransmits; nothing leaves unmarked
							st.Add(BacklogDropped, 1)
						}
						out = appendVerdict(out, l.q.number(), p.id, verdict, false, 0, nil)
						own++
					}
				}
			}
		}
		st.Add(Packets, uint64(packets))
		if own > 0 {
			l.sendVerdicts(out, own, st)
			out = out[:0]
		}
		if g.n > 0 {
			hand(g) // never blocks: as many slots as groups
		} else {
			l.spare <- g
		}
		l.busy[0].Store(0)
	}
}

// work is a lane's worker; busy is its liveness mark.
func (l *lane) work(h PacketHandler, st Counter, live *Liveness, busy *atomic.Int64) {
	vs := newVerdicts(l)
	for g := range l.groups {
		live.markBusy(busy)
		l.answer(h, st, vs, g)
		busy.Store(0)
	}
}

// answer handles a group's packets and sends their verdicts in one send.
func (l *lane) answer(h PacketHandler, st Counter, vs *verdicts, g *group) {
	for _, j := range g.jobs[:g.n] {
		v := h.Handle(j.buf, j.n, j.meta)
		if v.After.Set() {
			vs.after = append(vs.after, v.After)
		}
		if !v.Drop && v.Len > 0 && j.meta.csumNotReady {
			finishL4Checksum(j.buf[:v.Len], j.meta.GSO)
		}
		switch {
		case v.Drop:
			vs.add(j, nfDrop, false, 0, nil)
		case v.Len >= gatherMin:
			vs.ref(j, v) // j is released once sent
		case v.Len > 0:
			vs.add(j, nfAccept, v.SetMark, v.Mark, j.buf[:v.Len])
		default:
			vs.add(j, nfAccept, v.SetMark, v.Mark, nil)
		}
		if vs.size() > sendMax-bigBuf-256 {
			vs.send(st)
		}
	}
	vs.send(st)
	g.n = 0
	l.spare <- g
}

// yieldEvery: a pinned lane goes through the Go scheduler at least this
// often. While packets come it waits for them in poll(2) on its own thread
// and never parks, so the scheduler never runs it anew; after 10 ms (the runtime's
// forcePreemptNS) sysmon takes it for a goroutine that runs too long and
// takes its P away in the middle of the system call. Each such retake also
// resets sysmon to its shortest sleep (20 µs) and starts an idle M: with
// two lanes that kept sysmon waking thousands of times a second, about
// 50 µs of CPU per connection at 3,000 connections a second on a 2-CPU VM
// (docs/performance.md, "Where the per-connection cost goes"). A
// runtime.Gosched costs a locked goroutine two thread switches, 200 a
// second per lane at this period.
const yieldEvery = 5 * time.Millisecond

// spillMin: a PerCPU lane answers a read of fewer packets itself; a read
// this big means its CPU has a backlog, and the lane's workers take it.
const spillMin = 8

// gatherMin: rewritten packets at least this long are not copied into the
// verdict buffer; the send gathers them from their job buffers (writev),
// which spares a copy of each GSO packet of a selected flow.
const gatherMin = 2048

// release returns a job buffer to its pool.
func (l *lane) release(j *job) {
	if j.big {
		l.big <- j
	} else {
		l.free <- j
	}
}

// verdicts collects a worker's verdict messages until they are sent.
type verdicts struct {
	l     *lane
	out   []byte // messages, up to each referenced payload
	refs  []verdictRef
	held  []*job      // jobs whose bytes refs point at, released after the send
	after []AfterSend // to run once the verdicts are sent
	iov   [][]byte
	n     int // messages in out
	bytes int // referenced payload bytes with padding
}

// verdictRef is a payload sent from its job buffer, after out[:at].
type verdictRef struct {
	at  int
	pkt []byte
}

var zeroPad [3]byte

func newVerdicts(l *lane) *verdicts {
	return &verdicts{l: l, out: make([]byte, 0, sendMax)}
}

// add adds j's verdict, the packet (if any) copied in, and releases j.
func (vs *verdicts) add(j *job, verdict uint32, setMark bool, mark uint32, pkt []byte) {
	vs.out = appendVerdict(vs.out, vs.l.q.number(), j.id, verdict, setMark, mark, pkt)
	vs.n++
	vs.l.release(j)
}

// ref adds j's verdict with its rewritten packet referenced, not copied.
func (vs *verdicts) ref(j *job, v Verdict) {
	vs.out = appendVerdictRef(vs.out, vs.l.q.number(), j.id, v.SetMark, v.Mark, v.Len)
	vs.refs = append(vs.refs, verdictRef{at: len(vs.out), pkt: j.buf[:v.Len]})
	vs.held = append(vs.held, j)
	vs.bytes += align4(v.Len)
	vs.n++
}

func (vs *verdicts) size() int { return len(vs.out) + vs.bytes }

// send sends the collected verdicts in one system call, then releases the
// held jobs and runs the after functions.
func (vs *verdicts) send(st Counter) {
	if vs.n == 0 {
		return
	}
	if len(vs.refs) == 0 {
		vs.l.sendVerdicts(vs.out, vs.n, st)
	} else {
		vs.iov = vs.iov[:0]
		prev := 0
		for _, r := range vs.refs {
			vs.iov = append(vs.iov, vs.out[prev:r.at], r.pkt)
			if pad := align4(len(r.pkt)) - len(r.pkt); pad > 0 {
				vs.iov = append(vs.iov, zeroPad[:pad])
			}
			prev = r.at
		}
		if prev < len(vs.out) {
			vs.iov = append(vs.iov, vs.out[prev:])
		}
		vs.l.sendGathered(vs.iov, vs.n, st)
		clear(vs.iov)
	}
	for _, j := range vs.held {
		vs.l.release(j)
	}
	clear(vs.held)
	vs.held, vs.refs = vs.held[:0], vs.refs[:0]
	vs.out, vs.n, vs.bytes = vs.out[:0], 0, 0
	for _, a := range vs.after {
		a.Run()
	}
	clear(vs.after)
	vs.after = vs.after[:0]
}

// sendVerdicts sends n verdict messages at once and counts them.
func (l *lane) sendVerdicts(msgs []byte, n int, st Counter) {
	l.count(l.q.send(msgs), n, st)
}

// sendGathered is sendVerdicts for messages in pieces (writev).
func (l *lane) sendGathered(iov [][]byte, n int, st Counter) {
	l.count(l.q.sendv(iov), n, st)
}

func (l *lane) count(err error, n int, st Counter) {
	if err != nil {
		st.Add(VerdictErrors, uint64(n))
		return
	}
	st.Add(Accepted, uint64(n))
}
