package test

import (
	"fmt"
	"net"
	"syscall"
	"testing"
	"time"

	"github.com/natreveal/natreveal/lab"
)

// Overload with queue.fail_open true (the default): a selected flow's
// segment that finds its queue full is dropped by the kernel and
// retransmitted, never passed untranslated, while a new connection's SYN
// that finds its queue full still passes unmarked. Selected flows have
// queues of their own (rules.Spec.SelectQueues), bound without
// NFQA_CFG_F_FAIL_OPEN. The daemon is stopped (SIGSTOP) with one-packet
// kernel queues, so that each queue fills with its first packet.
func TestFullQueueSelectedFlowsFailClosed(t *testing.T) {
	l := payloadLab(t)
	startHTTP(t, l)
	cfg := writeConfig(t, httpConfig+"queue:\n  count: 1\n  max_len: 1\n")
	d := startDaemon(t, l, "--config", cfg)

	const conns = 4
	ks := dialKeptHTTP(t, l, conns, 2) // two insertions in each flow's offset

	if err := d.Signal(syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	stopped := true
	cont := func() {
		if stopped {
			stopped = false
			d.Signal(syscall.SIGCONT)
		}
	}
	t.Cleanup(cont)
	// Queue 1 (the selected flows') holds the first request, the kernel
	// drops the others and every retransmission while the daemon stays
	// stopped.
	for i, k := range ks {
		if err := k.send(5 * time.Second); err != nil {
			t.Fatalf("connection %d: write while stopped: %v", i, err)
		}
	}
	// Queue 0 (SYNs) fails open: the first SYN waits in it, its
	// retransmission and every later SYN pass unmarked.
	for i := range 3 {
		if err := lab.Do(l.C2, func() error {
			c, err := net.DialTimeout("tcp4", httpAddr, 5*time.Second)
			if err == nil {
				c.Close()
			}
			return err
		}); err != nil {
			t.Errorf("new connection %d while the daemon is stopped: %v (SYNs should fail open)", i, err)
		}
	}
	time.Sleep(500 * time.Millisecond)
	cont()

	resets := answeredOrReset(t, ks, 20*time.Second, "sent while stopped")
	m := scrape(t, l, "127.0.0.1:9850")
	st := d.stop(t)
	dropped := func(q int) float64 { return m[fmt.Sprintf(`natreveal_kernel_queue_dropped_total{queue="%d"}`, q)] }
	t.Logf("%d of %d connections reset; kernel drops: queue 0 %v, queue 1 %v; counters: select-reset %d backlog-full %d",
		resets, conns, dropped(0), dropped(1), st["select-reset"], st["backlog-full"])
	if dropped(1) == 0 {
		t.Error("the kernel dropped nothing of the selected flows' queue 1: it failed open (or never filled)")
	}
	if dropped(0) != 0 {
		t.Errorf("the kernel dropped %v packets of queue 0: SYNs should fail open", dropped(0))
	}
}
