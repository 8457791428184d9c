package queue

import (
	"context"
	"encoding/binary"
	"errors"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/natreveal/natreveal/packet"
)

// fakeSocket is a bound queue without a kernel: reads take the datagrams
// pushed with deliver, sends record the verdicts.
type fakeSocket struct {
	in   chan []byte
	stop chan struct{}
	once sync.Once

	mu       sync.Mutex
	verdicts map[uint32]sentVerdict
	closed   bool
}

type sentVerdict struct {
	verdict uint32
	mark    uint32
	hasMark bool
	pkt     []byte
}

func newFakeSocket() *fakeSocket {
	return &fakeSocket{in: make(chan []byte, 64), stop: make(chan struct{}), verdicts: map[uint32]sentVerdict{}}
}

func (f *fakeSocket) deliver(d []byte) { f.in <- d }
func (f *fakeSocket) number() uint16   { return 7 }
func (f *fakeSocket) gsoOn() bool      { return false }
func (f *fakeSocket) interrupt()       { f.once.Do(func() { close(f.stop) }) }

func (f *fakeSocket) read(b *batch) error {
	select {
	case d := <-f.in:
		b.n = 0
		for {
			b.lens[b.n] = copy(b.slots[b.n], d)
			b.n++
			if b.n == batchMax {
				return nil
			}
			select {
			case d = <-f.in:
				continue
			default:
			}
			return nil
		}
	case <-f.stop:
		return os.ErrDeadlineExceeded
	case <-time.After(20 * time.Millisecond):
		return os.ErrDeadlineExceeded // as a blocking read's timeout
	}
}

// send parses the verdict messages as nfqnl_recv_verdict would.
func (f *fakeSocket) send(msgs []byte) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	for rest := msgs; ; {
		typ, body, r, ok := nextMsg(rest)
		if !ok {
			return nil
		}
		rest = r
		if typ != nfqnlMsgVerd {
			return errors.New("not a verdict")
		}
		var v sentVerdict
		var id uint32
		for i := nfgenHdrLen; i+nlaHdrLen <= len(body); {
			l := int(binary.NativeEndian.Uint16(body[i:]))
			val := body[i+nlaHdrLen : i+l]
			switch binary.NativeEndian.Uint16(body[i+2:]) & nlaTypeMask {
			case nfqaVerdictHdr:
				v.verdict, id = binary.BigEndian.Uint32(val), binary.BigEndian.Uint32(val[4:])
			case nfqaMark:
				v.mark, v.hasMark = binary.BigEndian.Uint32(val), true
			case nfqaPayload:
				v.pkt = append([]byte(nil), val...)
			}
			i += align4(l)
		}
		f.verdicts[id] = v
		if rest == nil {
			return nil
		}
	}
}

func (f *fakeSocket) sendv(iov [][]byte) error {
	var b []byte
	for _, p := range iov {
		b = append(b, p...)
	}
	return f.send(b)
}

func (f *fakeSocket) close() error {
	f.mu.Lock()
	f.closed = true
	f.mu.Unlock()
	return nil
}

func (f *fakeSocket) answered(id uint32) (sentVerdict, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	v, ok := f.verdicts[id]
	return v, ok
}

func (f *fakeSocket) count() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.verdicts)
}

// marker rewrites the first byte of every packet and marks it; packets
// starting with 0xff are dropped. It counts what runs after the send.
type marker struct {
	mu    sync.Mutex
	after int
}

func (m *marker) Settled(packet.FlowKey) {
	m.mu.Lock()
	m.after++
	m.mu.Unlock()
}

func (m *marker) Handle(buf []byte, n int, meta Meta) Verdict {
	if buf[0] == 0xff {
		return Verdict{Drop: true}
	}
	buf[0] = 0x46
	return Verdict{Len: n, SetMark: true, Mark: meta.Mark | 0x100, After: AfterSend{S: m}}
}

func pkt(n int) []byte {
	p := make([]byte, n)
	p[0] = 0x45
	return p
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(5 * time.Second); !cond(); {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}

// A lane answers every packet once: rewritten and marked, dropped when the
// handler refuses, accepted unchanged when cut short; the after step runs
// once its verdict went out, and the counters add up.
func TestLaneAnswersEveryPacket(t *testing.T) {
	for _, perCPU := range []bool{false, true} {
		sock := newFakeSocket()
		h := &marker{}
		var st Counters
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() {
			done <- serve(ctx, Config{Workers: 2, Backlog: 8, PerCPU: perCPU}, []socket{sock}, h, &st, Hooks{})
		}()
		sock.deliver(packetMsg(1, 0x10, 1, 2, pkt(60), false))
		sock.deliver(packetMsg(2, 0, 1, 2, []byte{0xff, 0, 0, 0}, false))
		sock.deliver(packetMsg(3, 0, 1, 2, pkt(60), true))
		sock.deliver(packetMsg(4, 0, 1, 2, pkt(3000), false)) // gathered from its buffer
		waitFor(t, "4 verdicts", func() bool { return sock.count() == 4 })
		if v, _ := sock.answered(1); v.verdict != nfAccept || !v.hasMark || v.mark != 0x110 || len(v.pkt) != 60 || v.pkt[0] != 0x46 {
			t.Errorf("perCPU %v: packet 1: %+v", perCPU, v)
		}
		if v, _ := sock.answered(2); v.verdict != nfDrop {
			t.Errorf("perCPU %v: packet 2 not dropped: %+v", perCPU, v)
		}
		if v, _ := sock.answered(3); v.verdict != nfAccept || v.hasMark || v.pkt != nil {
			t.Errorf("perCPU %v: cut-short packet 3 not accepted unchanged: %+v", perCPU, v)
		}
		if v, _ := sock.answered(4); v.verdict != nfAccept || len(v.pkt) != 3000 || v.pkt[0] != 0x46 {
			t.Errorf("perCPU %v: packet 4: verdict %d, %d bytes", perCPU, v.verdict, len(v.pkt))
		}
		cancel()
		if err := <-done; err != nil {
			t.Fatalf("serve: %v", err)
		}
		if !sock.closed {
			t.Error("socket not closed")
		}
		if h.after != 2 {
			t.Errorf("after ran %d times, want 2", h.after)
		}
		if st.Load(Packets) != 4 || st.Load(Accepted) != 4 || st.Load(Oversize) != 1 || st.Load(VerdictErrors) != 0 {
			t.Errorf("counters: packets %d accepted %d oversize %d errors %d",
				st.Load(Packets), st.Load(Accepted), st.Load(Oversize), st.Load(VerdictErrors))
		}
	}
}

// With every job buffer held, a packet is accepted unchanged at once
// (backlog-full) rather than waiting.
func TestLaneBacklogFull(t *testing.T) {
	sock := newFakeSocket()
	release := make(chan struct{})
	h := blocking{release}
	var st Counters
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- serve(ctx, Config{Workers: 1, Backlog: 1}, []socket{sock}, h, &st, Hooks{}) }()
	sock.deliver(packetMsg(1, 0, 0, 0, pkt(40), false))
	waitFor(t, "packet 1 read", func() bool { return st.Load(Packets) == 1 })
	time.Sleep(10 * time.Millisecond)
	sock.deliver(packetMsg(2, 0, 0, 0, pkt(40), false))
	waitFor(t, "packet 2's verdict", func() bool { _, ok := sock.answered(2); return ok })
	if st.Load(BacklogFull) != 1 {
		t.Errorf("backlog-full %d, want 1", st.Load(BacklogFull))
	}
	close(release)
	waitFor(t, "packet 1's verdict", func() bool { _, ok := sock.answered(1); return ok })
	cancel()
	<-done
}

// Fail closed (Config.FailOpen false): a packet the backlog cannot take is
// dropped and counted, never accepted unmarked; fail open accepts it.
func TestLaneBacklogFullFailClosed(t *testing.T) {
	for _, failOpen := range []bool{false, true} {
		sock := newFakeSocket()
		release := make(chan struct{})
		var st Counters
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() {
			done <- serve(ctx, Config{Workers: 1, Backlog: 1, FailOpen: failOpen}, []socket{sock}, blocking{release}, &st, Hooks{})
		}()
		sock.deliver(packetMsg(1, 0, 0, 0, pkt(40), false))
		waitFor(t, "packet 1 read", func() bool { return st.Load(Packets) == 1 })
		time.Sleep(10 * time.Millisecond)
		for id := uint32(2); id <= 5; id++ {
			sock.deliver(packetMsg(id, 0, 0, 0, pkt(40), false))
		}
		waitFor(t, "4 verdicts", func() bool { return sock.count() == 4 })
		want, dropped := uint32(nfDrop), uint64(4)
		if failOpen {
			want, dropped = nfAccept, 0
		}
		for id := uint32(2); id <= 5; id++ {
			if v, _ := sock.answered(id); v.verdict != want || v.hasMark {
				t.Errorf("fail_open %v: packet %d: %+v, want verdict %d", failOpen, id, v, want)
			}
		}
		if st.Load(BacklogFull) != 4 || st.Load(BacklogDropped) != dropped {
			t.Errorf("fail_open %v: backlog-full %d backlog-dropped %d", failOpen, st.Load(BacklogFull), st.Load(BacklogDropped))
		}
		close(release)
		waitFor(t, "packet 1's verdict", func() bool { _, ok := sock.answered(1); return ok })
		cancel()
		<-done
	}
}

// With Closed, the queues after the first range are fail closed whatever
// FailOpen says: past a full backlog the first range's lane accepts (a SYN
// unmarked), the closed one drops (a selected flow's segment, retransmitted).
func TestLaneBacklogFullMixed(t *testing.T) {
	open, closed := newFakeSocket(), newFakeSocket()
	release := make(chan struct{})
	var st Counters
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- serve(ctx, Config{Workers: 1, Backlog: 1, FailOpen: true, Closed: 1}, []socket{open, closed}, blocking{release}, &st, Hooks{})
	}()
	for _, sock := range []*fakeSocket{open, closed} {
		sock.deliver(packetMsg(1, 0, 0, 0, pkt(40), false))
	}
	waitFor(t, "packet 1 of each read", func() bool { return st.Load(Packets) == 2 })
	time.Sleep(10 * time.Millisecond)
	for _, sock := range []*fakeSocket{open, closed} {
		for id := uint32(2); id <= 5; id++ {
			sock.deliver(packetMsg(id, 0, 0, 0, pkt(40), false))
		}
	}
	waitFor(t, "4 verdicts each", func() bool { return open.count() == 4 && closed.count() == 4 })
	for _, c := range []struct {
		name string
		sock *fakeSocket
		want uint32
	}{{"fail-open lane", open, nfAccept}, {"fail-closed lane", closed, nfDrop}} {
		for id := uint32(2); id <= 5; id++ {
			if v, _ := c.sock.answered(id); v.verdict != c.want || v.hasMark {
				t.Errorf("%s: packet %d: %+v, want verdict %d", c.name, id, v, c.want)
			}
		}
	}
	if st.Load(BacklogFull) != 8 || st.Load(BacklogDropped) != 4 {
		t.Errorf("backlog-full %d backlog-dropped %d, want 8 and 4", st.Load(BacklogFull), st.Load(BacklogDropped))
	}
	close(release)
	waitFor(t, "packet 1's verdicts", func() bool {
		_, ok1 := open.answered(1)
		_, ok2 := closed.answered(1)
		return ok1 && ok2
	})
	cancel()
	<-done
}

type blocking struct{ release chan struct{} }

func (b blocking) Handle([]byte, int, Meta) Verdict {
	<-b.release
	return Verdict{}
}

// Packets queued after Unbinding (the ruleset is gone, the queue still
// holds some) are answered before the socket closes: the kernel would drop
// them with its listener.
func TestDrainAnswersLatePackets(t *testing.T) {
	sock := newFakeSocket()
	var st Counters
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	hooks := Hooks{
		Bound: func() error { return nil },
		Unbinding: func() {
			for id := uint32(10); id < 20; id++ {
				sock.deliver(packetMsg(id, 0, 0, 0, pkt(40), false))
			}
		},
	}
	go func() { done <- serve(ctx, Config{Workers: 2}, []socket{sock}, &marker{}, &st, hooks) }()
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	for id := uint32(10); id < 20; id++ {
		if _, ok := sock.answered(id); !ok {
			t.Errorf("packet %d not answered before close", id)
		}
	}
	if st.Load(Packets) != 10 {
		t.Errorf("packets %d, want 10", st.Load(Packets))
	}
}

// A Bound error stops serve, which closes the sockets and returns it.
func TestBoundErrorStops(t *testing.T) {
	sock := newFakeSocket()
	want := errors.New("no ruleset")
	err := serve(context.Background(), Config{}, []socket{sock}, &marker{}, &Counters{}, Hooks{Bound: func() error { return want }})
	if !errors.Is(err, want) || !sock.closed {
		t.Fatalf("serve: %v, closed %v", err, sock.closed)
	}
}
