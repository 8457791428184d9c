package handler

import (
	"errors"
	"fmt"
	"net/netip"
	"testing"

	"github.com/natreveal/natreveal/conntrack"
	"github.com/natreveal/natreveal/stream"
)

// fakeSeqAdj records the handoff's ctnetlink calls.
type fakeSeqAdj struct {
	calls   []string
	err     error // SetSeqAdj's answer
	markErr error // ClearMark's and SetMark's
}

func (f *fakeSeqAdj) DropHelper(src, dst netip.AddrPort) error {
	f.calls = append(f.calls, fmt.Sprintf("drop-helper %v %v", src, dst))
	return nil
}

func (f *fakeSeqAdj) SetSeqAdj(src, dst netip.AddrPort, pos uint32, delta, prev int32) error {
	f.calls = append(f.calls, fmt.Sprintf("seqadj %#x %d", pos, delta))
	return f.err
}

func (f *fakeSeqAdj) ClearMark(src, dst netip.AddrPort, bits uint32) error {
	f.calls = append(f.calls, fmt.Sprintf("clear-mark %#x", bits))
	return f.markErr
}

func (f *fakeSeqAdj) SetMark(src, dst netip.AddrPort, bits uint32) error {
	f.calls = append(f.calls, fmt.Sprintf("set-mark %#x", bits))
	return f.markErr
}

func TestHandoff(t *testing.T) {
	hdr, _ := stream.BuildProxyHeader(2, true, netip.AddrPortFrom(selClient, cliPort), netip.AddrPortFrom(selServer, 80), "_0x0007")
	n := uint32(len(hdr))
	for _, c := range []struct {
		name  string
		proxy bool
		err   error
		want  []string // calls after the SYN-ACK's
	}{
		{"proxy", true, nil, []string{fmt.Sprintf("seqadj %#x %d", uint32(selISN), n), "clear-mark 0x40000"}},
		{"no extension", true, conntrack.ErrNoSeqAdj, []string{fmt.Sprintf("seqadj %#x %d", uint32(selISN), n)}},
		{"http", false, nil, nil},
	} {
		t.Run(c.name, func(t *testing.T) {
			h, st := selHandler(t, c.proxy)
			f := &fakeSeqAdj{err: c.err}
			h.SetSeqAdj(f)
			handle(t, h, pkt{syn: true, seq: selISN, mss: 1460})
			_, v := handle(t, h, pkt{fromServer: true, syn: true, ack: true, seq: srvISN, ackn: selISN + 1, mss: 1460})
			if v.After.Set() {
				v.After.Run() // the SYN-ACK's verdict is sent
			}
			if len(f.calls) != 1 || f.calls[0] != "drop-helper 100.64.0.7:40000 198.51.100.1:80" {
				t.Fatalf("after the SYN-ACK: %q", f.calls)
			}
			f.calls = nil
			// The header goes out with the first data; its verdict is sent
			// later than the server's acknowledgement is handled (another
			// worker): no handoff while it is pending.
			data := []byte("GET / HTTP/1.1\r\nHost: x\r\n\r\n")
			_, v1 := handle(t, h, pkt{ack: true, seq: selISN + 1, ackn: srvISN + 1, payload: data})
			out := len(data)
			if c.proxy {
				out += int(n)
			}
			_, v2 := handle(t, h, pkt{fromServer: true, ack: true, seq: srvISN + 1, ackn: selISN + 1 + uint32(out)})
			if c.proxy && (!v1.After.Set() || !v2.After.Set()) {
				t.Fatalf("no After on the proxy flow's verdicts")
			}
			if v2.After.Set() {
				v2.After.Run()
			}
			if len(f.calls) != 0 {
				t.Fatalf("handoff with a verdict pending: %q", f.calls)
			}
			if v1.After.Set() {
				v1.After.Run()
			}
			if fmt.Sprint(f.calls) != fmt.Sprint(c.want) {
				t.Fatalf("calls %q, want %q", f.calls, c.want)
			}
			// Handed off: the state is gone, later packets pass unchanged.
			handedOff := c.proxy && c.err == nil
			if got := h.sel.Len() == 0; got != handedOff {
				t.Errorf("state dropped %v, want %v", got, handedOff)
			}
			var p []byte
			p, v = handle(t, h, pkt{ack: true, seq: selISN + 1 + uint32(len(data)), ackn: srvISN + 1, payload: []byte("more")})
			if handedOff && (v.Len != 0 || v.After.Set() || decode(t, p).Seq != selISN+1+uint32(len(data))) {
				t.Errorf("a handed-off flow's packet was changed: %+v", v)
			}
			if !handedOff && c.proxy && decode(t, p).Seq != selISN+1+uint32(len(data))+n {
				t.Errorf("a flow left in user space was not translated")
			}
			wantKernel, wantFailed := uint64(0), uint64(0)
			if handedOff {
				wantKernel = 1
			}
			if errors.Is(c.err, conntrack.ErrNoSeqAdj) {
				wantFailed = 1
			}
			if st.Get(SelKernel) != wantKernel || st.Get(SelKernelFailed) != wantFailed {
				t.Errorf("select-kernel %d, select-kernel-failed %d", st.Get(SelKernel), st.Get(SelKernelFailed))
			}
		})
	}
}
