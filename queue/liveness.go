package queue

import (
	"fmt"
	"sync/atomic"
	"time"
)

// Liveness follows Serve's loops for a watchdog (sd_watchdog_enabled(3)):
// each lane's loops (its reader, its workers) mark when they took up a read
// or a group and clear the mark when they come round to wait for the next.
// A loop that waits for packets is idle, not stuck; one that holds a read or
// a group past the watchdog interval (a handler that never returns, a reader
// waiting for a job buffer no worker gives back) has stopped answering the
// queue. The zero value is ready; a nil *Liveness follows nothing.
type Liveness struct {
	live atomic.Pointer[liveness]
}

// liveness is one Serve's state.
type liveness struct {
	epoch time.Time
	lanes []*lane
}

func (lv *Liveness) start(lanes []*lane) {
	if lv != nil {
		lv.live.Store(&liveness{epoch: time.Now(), lanes: lanes})
	}
}

func (lv *Liveness) stop() {
	if lv != nil {
		lv.live.Store(nil)
	}
}

// markBusy sets a loop's mark: nanoseconds since the epoch, never 0.
func (lv *Liveness) markBusy(m *atomic.Int64) {
	if lv == nil {
		return
	}
	if s := lv.live.Load(); s != nil {
		m.Store(int64(time.Since(s.epoch)) | 1)
	}
}

// Stuck says which of Serve's loops has held one read or group of packets
// longer than within, "" when each came round (or waits for packets, or
// Serve is not running).
func (lv *Liveness) Stuck(within time.Duration) string {
	if lv == nil {
		return ""
	}
	s := lv.live.Load()
	if s == nil {
		return ""
	}
	now := time.Since(s.epoch)
	for _, l := range s.lanes {
		for i := range l.busy {
			since := l.busy[i].Load()
			if since == 0 || now-time.Duration(since) < within {
				continue
			}
			who := "reader"
			if i > 0 {
				who = fmt.Sprintf("worker %d", i)
			}
			return fmt.Sprintf("queue %d %s busy with one batch for %s", l.q.number(), who, (now - time.Duration(since)).Round(time.Millisecond))
		}
	}
	return ""
}
