package handler

import (
	"errors"
	"fmt"
	"io/fs"
	"strings"
	"testing"

	"github.com/natreveal/natreveal/markbits"
)

// fakeUploads is the uploads set (rules.Uploads): what was added and
// removed, and what is in it.
type fakeUploads struct {
	calls  []string
	in     map[markbits.Upload]bool
	addErr error
}

func elemsText(els []markbits.Upload) string {
	var parts []string
	for _, e := range els {
		parts = append(parts, fmt.Sprintf("%v>%v[%#x,%#x]", e.Src, e.Dst, e.First, e.Last))
	}
	return strings.Join(parts, " ")
}

func (f *fakeUploads) AddUploads(els []markbits.Upload) error {
	f.calls = append(f.calls, "add "+elemsText(els))
	if f.addErr != nil {
		return f.addErr
	}
	if f.in == nil {
		f.in = map[markbits.Upload]bool{}
	}
	for _, e := range els {
		f.in[e] = true
	}
	return nil
}

func (f *fakeUploads) DelUploads(els []markbits.Upload) error {
	f.calls = append(f.calls, "del "+elemsText(els))
	for _, e := range els {
		if !f.in[e] {
			return fmt.Errorf("no such element: %w", fs.ErrNotExist)
		}
		delete(f.in, e)
	}
	return nil
}

// uploadRun is one selected http-header flow with the kernel handoff and
// the uploads set faked.
type uploadRun struct {
	t      *testing.T
	h      *Handler
	st     *Stats
	k      *kernelSeqAdj
	u      *fakeUploads
	isn    uint32
	srvSeq uint32
}

func newUploadRun(t *testing.T, isn uint32) *uploadRun {
	h, st := selHandler(t, false, func(c *testConfig) { c.SeqAdjBit = 0x80000 })
	r := &uploadRun{t: t, h: h, st: st, k: &kernelSeqAdj{}, u: &fakeUploads{}, isn: isn, srvSeq: srvISN + 1}
	h.SetSeqAdj(r.k)
	h.SetUploads(r.u)
	r.run(pkt{syn: true, seq: isn, mss: 1460})
	r.run(pkt{fromServer: true, syn: true, ack: true, seq: srvISN, ackn: isn + 1, mss: 1460})
	return r
}

// run handles p and sends its verdict (After runs).
func (r *uploadRun) run(p pkt) Verdict {
	r.t.Helper()
	_, v := handle(r.t, r.h, p)
	if v.After.Set() {
		v.After.Run()
	}
	return v
}

// client sends client bytes at stream offset off (0: the byte after the SYN).
func (r *uploadRun) client(off int64, payload []byte) Verdict {
	r.t.Helper()
	return r.run(pkt{ack: true, seq: r.isn + 1 + uint32(off), ackn: r.srvSeq, payload: payload})
}

// serverAcks sends n server segments acknowledging client offset off plus
// the inserted fields (what the server received).
func (r *uploadRun) serverAcks(n int, off int64) {
	r.t.Helper()
	for range n {
		r.run(pkt{fromServer: true, ack: true, seq: r.srvSeq, ackn: r.isn + 1 + uint32(off) + uint32(len(fields))})
	}
}

// calls returns and forgets the uploads set's calls.
func (r *uploadRun) calls() string {
	c := strings.Join(r.u.calls, "; ")
	r.u.calls = nil
	return c
}

// elem is the set element text of client offsets [lo, hi] of the flow.
func (r *uploadRun) elem(lo, hi int64) string {
	a, b := r.isn+1+uint32(lo), r.isn+1+uint32(hi)
	if a > b {
		return fmt.Sprintf("100.64.0.7:40000>198.51.100.1:80[%#x,0xffffffff] 100.64.0.7:40000>198.51.100.1:80[0x0,%#x]", a, b)
	}
	return fmt.Sprintf("100.64.0.7:40000>198.51.100.1:80[%#x,%#x]", a, b)
}

const uploadBody = 4 << 20

// startBody sends a request with a Content-Length body of uploadBody
// bytes, its first 1000 body bytes in the header's segment, and returns
// the body's end offset and the parser's position.
func (r *uploadRun) startBody(chunked bool) (end, pos int64) {
	r.t.Helper()
	hdr := fmt.Sprintf("POST /upload HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n", uploadBody)
	if chunked {
		hdr = fmt.Sprintf("POST /upload HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n%x\r\n", uploadBody)
	}
	seg := append([]byte(hdr), make([]byte, 1000)...)
	if v := r.client(0, seg); v.Drop {
		r.t.Fatal("request dropped")
	}
	return int64(len(hdr)) + uploadBody, int64(len(seg))
}

func TestUploadSkipsQueue(t *testing.T) {
	for _, c := range []struct {
		name string
		isn  uint32
	}{{"plain", 1000}, {"across 2^32", 0xffff0000}} {
		t.Run(c.name, func(t *testing.T) {
			r := newUploadRun(t, c.isn)
			end, pos := r.startBody(false)
			// Until the server has the fields, the body stays queued.
			r.client(pos, make([]byte, 1000))
			pos += 1000
			r.serverAcks(1, 0)
			if got := r.calls(); got != "" {
				t.Fatalf("set calls before the kernel holds the offset: %s", got)
			}
			// Its first acknowledgement of them hands the offset to the
			// kernel at once (a long body); after that verdict, the
			// body's element.
			r.serverAcks(1, pos)
			if r.st.Get(SelKernelAcks) != 1 {
				t.Fatalf("select-kernel-acks %d after the fields were acknowledged", r.st.Get(SelKernelAcks))
			}
			hi := end - 1<<16
			if got, want := r.calls(), "add "+r.elem(pos, hi); got != want {
				t.Fatalf("calls %s, want %s", got, want)
			}
			if n := len(r.u.in); (c.isn == 1000 && n != 1) || (c.isn != 1000 && n != 2) {
				t.Errorf("%d elements in the set", n)
			}
			// The kernel accepted the segments in the range; the first one
			// the daemon sees again starts past it (the parser skips the gap).
			at := hi + 1
			if v := r.client(at, make([]byte, 1000)); v.Drop || v.Len != 0 {
				t.Fatalf("the segment past the element: %+v, want unchanged", v)
			}
			if got, want := r.calls(), "del "+r.elem(pos, hi); got != want {
				t.Fatalf("calls %s, want %s", got, want)
			}
			if len(r.u.in) != 0 {
				t.Errorf("left in the set: %v", r.u.in)
			}
			// The rest of the body, then the next request: it gets the fields.
			for off := at + 1000; off < end; off += 8000 {
				if v := r.client(off, make([]byte, min(8000, end-off))); v.Drop || v.Len != 0 {
					t.Fatalf("body segment at %d: %+v, want unchanged", off, v)
				}
			}
			out, v := handle(t, r.h, pkt{ack: true, seq: r.isn + 1 + uint32(end), ackn: r.srvSeq, payload: []byte("GET / HTTP/1.1\r\nHost: x\r\n\r\n")})
			if v.Drop || !strings.Contains(string(decode(t, out).Payload), fields) {
				t.Fatalf("the next request lacks the fields: %+v", v)
			}
			if v.After.Set() {
				v.After.Run()
			}
			if got := r.calls(); got != "" {
				t.Errorf("calls on the next request: %s", got)
			}
			if r.st.Get(SelUploads) != 1 || r.st.Get(SelUploadFailed) != 0 {
				t.Errorf("select-uploads %d, select-upload-failed %d", r.st.Get(SelUploads), r.st.Get(SelUploadFailed))
			}
		})
	}
}

// The element goes with the flow: a client RST, a server RST, conntrack's
// destroy event.
func TestUploadFlowEnd(t *testing.T) {
	for _, how := range []string{"client rst", "server rst", "destroyed"} {
		t.Run(how, func(t *testing.T) {
			r := newUploadRun(t, 1000)
			end, pos := r.startBody(false)
			r.serverAcks(kernelAckAfter, pos)
			if got := r.calls(); got != "add "+r.elem(pos, end-1<<16) {
				t.Fatalf("calls %s", got)
			}
			switch how {
			case "client rst":
				b, n := rstPkt(t, pkt{ack: true, seq: r.isn + 1 + uint32(pos), ackn: r.srvSeq})
				r.h.Handle(b, n, Meta{})
			case "server rst":
				b, n := rstPkt(t, pkt{fromServer: true, ack: true, seq: r.srvSeq, ackn: r.isn + 1 + uint32(pos) + uint32(len(fields))})
				r.h.Handle(b, n, Meta{})
			case "destroyed":
				r.h.ForgetFlow(FlowKey{Proto: 6, Inside: selClient, InsidePort: cliPort, Server: selServer, ServerPort: 80}, 0, nil, false)
			}
			if got, want := r.calls(), "del "+r.elem(pos, end-1<<16); got != want {
				t.Errorf("calls %s, want %s", got, want)
			}
		})
	}
}

// Nothing goes into the set for a chunked body, while the kernel does not
// hold the offset (the bit could not be set), or after an add failed.
func TestUploadStaysQueued(t *testing.T) {
	r := newUploadRun(t, 1000)
	_, pos := r.startBody(true)
	r.serverAcks(kernelAckAfter, pos)
	r.client(pos, make([]byte, 1000))
	if got := r.calls(); got != "" || r.st.Get(SelKernelAcks) != 1 {
		t.Errorf("chunked body: calls %s, kernel acks %d", got, r.st.Get(SelKernelAcks))
	}

	r = newUploadRun(t, 1000)
	r.k.markErr = errors.New("ctnetlink down")
	_, pos = r.startBody(false)
	r.serverAcks(kernelAckAfter+4, pos)
	r.client(pos, make([]byte, 1000))
	if got := r.calls(); got != "" {
		t.Errorf("without the seqadj bit: calls %s", got)
	}

	r = newUploadRun(t, 1000)
	r.u.addErr = errors.New("no such set")
	end, pos := r.startBody(false)
	r.serverAcks(kernelAckAfter, pos)
	r.client(pos, make([]byte, 1000))
	r.client(end-1000, make([]byte, 1000))
	if got := r.calls(); got != "add "+r.elem(pos, end-1<<16) || r.st.Get(SelUploadFailed) != 1 {
		t.Errorf("a failed add: calls %s, select-upload-failed %d", got, r.st.Get(SelUploadFailed))
	}
}
