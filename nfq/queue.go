// Package nfq reads packets from NFQUEUE, hands them to a bounded worker
// pool, and returns verdicts: accept, possibly rewritten and marked. It never
// drops: on any failure the packet goes on unchanged (fail open), and the
// ruleset's bypass flag lets traffic flow when no daemon listens.
package nfq

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"sync"

	nfqueue "github.com/florianl/go-nfqueue/v2"
	"github.com/mdlayher/netlink"
	"golang.org/x/sys/unix"

	"github.com/natreveal/natreveal/encoders"
)

// PacketHandler decides about one packet (see Handler).
type PacketHandler interface {
	Handle(buf []byte, n int, m Meta) Verdict
}

// QueueConfig sizes the readers and the pool.
type QueueConfig struct {
	Num, Count uint16
	MaxLen     uint32 // packets the kernel holds per queue
	FailOpen   bool   // kernel accepts instead of dropping when a queue is full
	Workers    int    // 0: one per CPU
	Backlog    int    // packets waiting for a worker; past that, accepted unchanged
	RcvBuf     int    // socket receive buffer bytes
	Logf       func(format string, a ...any)
}

// bufSize is the largest packet a worker rewrites: jumbo frames included.
// Queued packets are never GSO super-packets (no NfQaCfgFlagGSO).
const bufSize = 9216

type job struct {
	q    *nfqueue.Nfqueue
	id   uint32
	meta Meta
	n    int
	buf  []byte
}

// Serve binds the queues, then processes packets until ctx ends or a queue
// fails; bound is called once every queue is bound (its error aborts). It returns the first
// fatal error, nil on a clean stop.
func Serve(ctx context.Context, cfg QueueConfig, h PacketHandler, st *Stats, bound func() error) error {
	if cfg.Workers <= 0 {
		cfg.Workers = runtime.NumCPU()
	}
	if cfg.Backlog <= 0 {
		cfg.Backlog = 1024
	}
	if cfg.Logf == nil {
		cfg.Logf = func(string, ...any) {}
	}
	free := make(chan *job, cfg.Backlog)
	jobs := make(chan *job, cfg.Backlog)
	for i := 0; i < cfg.Backlog; i++ {
		free <- &job{buf: make([]byte, bufSize+encoders.Headroom)}
	}

	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	fatal := make(chan error, int(cfg.Count))
	var queues []*nfqueue.Nfqueue
	closeAll := func() {
		for _, q := range queues {
			q.Close()
		}
	}
	for i := uint16(0); i < cfg.Count; i++ {
		q, err := openQueue(ctx, cfg, cfg.Num+i, free, jobs, st, fatal)
		if err != nil {
			cancel()
			closeAll()
			return err
		}
		queues = append(queues, q)
	}

	var wg sync.WaitGroup
	for i := 0; i < cfg.Workers; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := range jobs {
				v := h.Handle(j.buf, j.n, j.meta)
				if err := verdict(j.q, j.id, v, j.buf); err != nil {
					st.inc(VerdictErrors)
				} else {
					st.inc(Accepted)
				}
				free <- j
			}
		}()
	}
	if bound != nil {
		if err := bound(); err != nil {
			cancel()
			closeAll()
			close(jobs)
			wg.Wait()
			return err
		}
	}

	var err error
	select {
	case <-ctx.Done():
	case err = <-fatal:
	}
	cancel()
	closeAll() // readers are gone: nothing sends on jobs any more
	close(jobs)
	wg.Wait()
	return err
}

func verdict(q *nfqueue.Nfqueue, id uint32, v Verdict, buf []byte) error {
	switch {
	case v.Drop:
		return q.SetVerdict(id, nfqueue.NfDrop)
	case v.Len > 0 && v.SetMark:
		return q.SetVerdictWithOption(id, nfqueue.NfAccept, nfqueue.WithMark(v.Mark), nfqueue.WithAlteredPacket(buf[:v.Len]))
	case v.Len > 0:
		return q.SetVerdictWithOption(id, nfqueue.NfAccept, nfqueue.WithAlteredPacket(buf[:v.Len]))
	case v.SetMark:
		return q.SetVerdictWithOption(id, nfqueue.NfAccept, nfqueue.WithMark(v.Mark))
	}
	return q.SetVerdict(id, nfqueue.NfAccept)
}

func openQueue(ctx context.Context, cfg QueueConfig, num uint16, free, jobs chan *job, st *Stats, fatal chan<- error) (*nfqueue.Nfqueue, error) {
	var flags uint32
	if cfg.FailOpen {
		flags |= nfqueue.NfQaCfgFlagFailOpen
	}
	q, err := nfqueue.Open(&nfqueue.Config{
		NfQueue:      num,
		MaxPacketLen: bufSize,
		MaxQueueLen:  cfg.MaxLen,
		Copymode:     nfqueue.NfQnlCopyPacket,
		AfFamily:     unix.AF_INET,
		Flags:        flags,
	})
	if err != nil {
		return nil, fmt.Errorf("nfq: open queue %d: %w", num, err)
	}
	// A reader that falls behind must not lose the socket to ENOBUFS.
	if err := q.SetOption(netlink.NoENOBUFS, true); err != nil {
		q.Close()
		return nil, fmt.Errorf("nfq: queue %d: NoENOBUFS: %w", num, err)
	}
	if cfg.RcvBuf > 0 {
		if err := q.Con.SetReadBuffer(cfg.RcvBuf); err != nil {
			q.Close()
			return nil, fmt.Errorf("nfq: queue %d: receive buffer: %w", num, err)
		}
	}
	hook := func(a nfqueue.Attribute) int {
		st.inc(Packets)
		if a.PacketID == nil {
			return 0
		}
		id := *a.PacketID
		if a.Payload == nil || len(*a.Payload) > bufSize {
			st.inc(Oversize)
			acceptNow(q, id, st)
			return 0
		}
		select {
		case j := <-free:
			j.q, j.id, j.n = q, id, copy(j.buf, *a.Payload)
			j.meta = Meta{}
			if a.Mark != nil {
				j.meta.Mark = *a.Mark
			}
			if a.InDev != nil {
				j.meta.InIf = *a.InDev
			}
			if a.OutDev != nil {
				j.meta.OutIf = *a.OutDev
			}
			jobs <- j // never blocks: jobs holds as many as there are
		default:
			st.inc(BacklogFull)
			acceptNow(q, id, st)
		}
		return 0
	}
	errfn := func(err error) int {
		if ctx.Err() != nil {
			return 1
		}
		var op *netlink.OpError
		if errors.As(err, &op) && (op.Timeout() || op.Temporary()) {
			return 0
		}
		fatal <- fmt.Errorf("nfq: queue %d: receive: %w", num, err)
		return 1
	}
	if err := q.RegisterWithErrorFunc(ctx, hook, errfn); err != nil {
		q.Close()
		return nil, fmt.Errorf("nfq: bind queue %d: %w", num, err)
	}
	return q, nil
}

func acceptNow(q *nfqueue.Nfqueue, id uint32, st *Stats) {
	if err := q.SetVerdict(id, nfqueue.NfAccept); err != nil {
		st.inc(VerdictErrors)
		return
	}
	st.inc(Accepted)
}
