package nfq

import (
	"fmt"
	"sync/atomic"
	"time"
)

// liveness is what Stuck reads: each lane's loops (its reader, its workers)
// mark when they took up a read or a group and clear the mark when they come
// round to wait for the next. A loop that waits for packets is idle, not
// stuck; one that holds a read or a group past the watchdog interval (a
// handler that never returns, a reader waiting for a job buffer no worker
// gives back) has stopped answering the queue.
type liveness struct {
	epoch time.Time
	lanes []*lane
}

// markBusy sets a loop's mark: nanoseconds since the epoch, never 0.
func (s *Stats) markBusy(m *atomic.Int64) {
	if lv := s.live.Load(); lv != nil {
		m.Store(int64(time.Since(lv.epoch)) | 1)
	}
}

// Stuck says which of Serve's loops has held one read or group of packets
// longer than within, "" when each came round (or waits for packets): the
// liveness check behind systemd's watchdog (sd_watchdog_enabled(3)).
func (s *Stats) Stuck(within time.Duration) string {
	lv := s.live.Load()
	if lv == nil {
		return ""
	}
	now := time.Since(lv.epoch)
	for _, l := range lv.lanes {
		for i := range l.busy {
			since := l.busy[i].Load()
			if since == 0 || now-time.Duration(since) < within {
				continue
			}
			who := "reader"
			if i > 0 {
				who = fmt.Sprintf("worker %d", i)
			}
			return fmt.Sprintf("queue %d %s busy with one batch for %s", l.q.num, who, (now - time.Duration(since)).Round(time.Millisecond))
		}
	}
	return ""
}
