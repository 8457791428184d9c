package bench

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/signal"
	"sync/atomic"
	"syscall"

	nfqueue "github.com/florianl/go-nfqueue/v2"

	"github.com/natreveal/natreveal/rules"
)

// goNFQueue is the role of this binary that serves the queues for the
// "go-nfqueue" mode: the same ruleset and verdict as passthrough (accept,
// mark passMark), but the queue client is github.com/florianl/go-nfqueue/v2
// (one socket per queue, RegisterWithErrorFunc, SetVerdictWithMark), in
// its documented use: no pinning, no batching of reads or verdicts. Both
// modes in one run compare the two clients on the same packets.
func goNFQueue(queues int) error {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	nft, spec, err := passRules(queues)
	if err != nil {
		return err
	}
	var packets, accepted, verdictErrors, readErrors atomic.Uint64
	var qs []*nfqueue.Nfqueue
	defer func() {
		for _, q := range qs {
			q.Close()
		}
	}()
	for i := range queues {
		// queue.fail_open false, as the other modes: a full queue drops.
		q, err := nfqueue.Open(&nfqueue.Config{NfQueue: uint16(i), MaxPacketLen: 0xffff, MaxQueueLen: 4096,
			Copymode: nfqueue.NfQnlCopyPacket})
		if err != nil {
			return fmt.Errorf("go-nfqueue: open queue %d: %w", i, err)
		}
		qs = append(qs, q)
		// natreveal's client asks for 8 MiB (queue.Config.RcvBuf); the same here.
		if err := q.Con.SetReadBuffer(8 << 20); err != nil {
			return fmt.Errorf("go-nfqueue: receive buffer: %w", err)
		}
		err = q.RegisterWithErrorFunc(ctx, func(a nfqueue.Attribute) int {
			packets.Add(1)
			if a.PacketID == nil {
				return 0
			}
			if err := q.SetVerdictWithMark(*a.PacketID, nfqueue.NfAccept, passMark); err != nil {
				verdictErrors.Add(1)
				return 0
			}
			accepted.Add(1)
			return 0
		}, func(error) int {
			readErrors.Add(1) // ENOBUFS and the like: keep reading
			return 0
		})
		if err != nil {
			return fmt.Errorf("go-nfqueue: register queue %d: %w", i, err)
		}
	}
	if err := rules.Apply(nft, spec); err != nil {
		return err
	}
	fmt.Fprintln(os.Stderr, "running: go-nfqueue")
	<-ctx.Done()
	rules.Remove(nft, "")
	b, _ := json.Marshal(map[string]uint64{"packets": packets.Load(), "accepted": accepted.Load(),
		"verdict-errors": verdictErrors.Load(), "read-errors": readErrors.Load()})
	fmt.Fprintf(os.Stderr, "stats %s\n", b)
	return nil
}
