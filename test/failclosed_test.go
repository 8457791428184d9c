package test

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
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
	type kept struct {
		c  net.Conn
		br *bufio.Reader
	}
	const req = "GET / HTTP/1.1\r\nHost: server\r\nX-Forwarded-For: 6.6.6.6\r\n\r\n"
	read := func(k kept) (string, error) {
		k.c.SetDeadline(time.Now().Add(20 * time.Second))
		resp, err := http.ReadResponse(k.br, nil)
		if err != nil {
			return "", err
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		return resp.Status + " " + string(b), err
	}
	want := `200 OK xff=["_0x0002"]`
	var ks []kept
	for i := range conns {
		var c net.Conn
		if err := lab.Do(l.C1, func() (err error) { c, err = net.DialTimeout("tcp4", httpAddr, 5*time.Second); return }); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		k := kept{c, bufio.NewReader(c)}
		// Two requests: the flow's offset is two insertions.
		for range 2 {
			if _, err := io.WriteString(c, req); err != nil {
				t.Fatal(err)
			}
			if got, err := read(k); err != nil || !strings.HasPrefix(got, want) {
				t.Fatalf("connection %d before the overload: %q %v", i, got, err)
			}
		}
		ks = append(ks, k)
	}

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
		k.c.SetDeadline(time.Now().Add(5 * time.Second))
		if _, err := io.WriteString(k.c, req); err != nil {
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

	resets := 0
	for i, k := range ks {
		got, err := read(k)
		switch {
		case err != nil:
			if ne := net.Error(nil); errors.As(err, &ne) && ne.Timeout() {
				t.Errorf("connection %d: the request sent while stopped hung: %v", i, err)
			}
			resets++
		case !strings.HasPrefix(got, want):
			t.Errorf("connection %d: the request sent while stopped reached the server untranslated: answer %q, want %q or a reset", i, got, want)
		}
	}
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
