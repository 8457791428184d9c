package handler

import (
	"bytes"
	"errors"
	"fmt"
	"net/netip"
	"strings"
	"testing"

	"github.com/gopacket/gopacket/layers"

	"github.com/natreveal/natreveal/stream"
)

const kernelAckAfter = stream.KernelAckAfter

// kernelSeqAdj is fakeSeqAdj that also holds the offset the kernel would
// apply, so the test can check the numbers the server and the client end
// up with.
type kernelSeqAdj struct {
	fakeSeqAdj
	d int32
}

func (k *kernelSeqAdj) SetSeqAdj(src, dst netip.AddrPort, pos uint32, delta, prev int32) error {
	if err := k.fakeSeqAdj.SetSeqAdj(src, dst, pos, delta, prev); err != nil {
		return err
	}
	k.d = delta
	return nil
}

func TestKernelAcks(t *testing.T) {
	h, st := selHandler(t, false, func(c *testConfig) { c.SeqAdjBit = 0x80000 })
	k := &kernelSeqAdj{}
	h.SetSeqAdj(k)
	// run handles p and sends its verdict; d is the kernel's offset then,
	// the one the packet gets (After runs once the verdict is sent).
	var d int32
	run := func(p pkt) ([]byte, Verdict) {
		t.Helper()
		out, v := handle(t, h, p)
		d = k.d
		if v.After.Set() {
			v.After.Run()
		}
		return out, v
	}
	run(pkt{syn: true, seq: selISN, mss: 1460})
	run(pkt{fromServer: true, syn: true, ack: true, seq: srvISN, ackn: selISN + 1, mss: 1460})
	k.calls = nil

	req := []byte("GET / HTTP/1.1\r\nHost: x\r\n\r\n")
	ins := uint32(len(fields))
	srvSeq := uint32(srvISN + 1)
	// serverData sends n server segments acknowledging ack (server
	// numbering); each must reach the client acknowledging want (client
	// numbering) once the kernel has subtracted its offset.
	serverData := func(n int, ack, want uint32) {
		t.Helper()
		for range n {
			out, _ := run(pkt{fromServer: true, ack: true, seq: srvSeq, ackn: ack, payload: bytes.Repeat([]byte{'x'}, 100)})
			if got := decode(t, out).Ack - uint32(d); got != want {
				t.Fatalf("server ack %#x reaches the client as %#x, want %#x (kernel offset %d)", ack, got, want, d)
			}
			srvSeq += 100
		}
	}
	// client sends a client segment at seq (client numbering) that must
	// reach the server at want (server numbering).
	client := func(seq, want uint32, payload []byte) ([]byte, Verdict) {
		t.Helper()
		out, v := run(pkt{ack: true, seq: seq, ackn: srvSeq, payload: payload})
		if v.Drop {
			return nil, v
		}
		if got := decode(t, out).Seq + uint32(d); got != want {
			t.Fatalf("client seq %#x reaches the server as %#x, want %#x (kernel offset %d)", seq, got, want, d)
		}
		return out, v
	}

	// Request 1 inserts the fields; until the server has acknowledged
	// them for kernelAckAfter segments, nothing changes in the kernel.
	out, _ := client(selISN+1, selISN+1, req)
	if !strings.Contains(string(decode(t, out).Payload), fields) {
		t.Fatalf("request 1 without the fields: %q", decode(t, out).Payload)
	}
	end1 := selISN + 1 + uint32(len(req))
	serverData(kernelAckAfter-1, end1+ins, end1)
	if len(k.calls) != 0 {
		t.Fatalf("kernel calls before %d server segments: %q", kernelAckAfter, k.calls)
	}
	serverData(1, end1+ins, end1)
	if want := fmt.Sprint([]string{fmt.Sprintf("seqadj %#x %d", uint32(selISN), ins), "set-mark 0x80000"}); fmt.Sprint(k.calls) != want {
		t.Fatalf("calls %q, want %q", k.calls, want)
	}
	k.calls = nil
	// The kernel maps the server's segments now (not queued): raw ack
	// minus the offset.
	if got := end1 + ins - uint32(k.d); got != end1 {
		t.Fatalf("kernel-mapped ack %#x, want %#x", got, end1)
	}
	// A client ACK leaves the queue unchanged: the kernel adds the offset.
	if _, v := client(end1, end1+ins, nil); v.Len != 0 {
		t.Errorf("a pure ACK past the last edit was rewritten: %+v", v)
	}

	// Request 2: the server's segments come back to the queue before the
	// new fields go out.
	out, _ = client(end1, end1+ins, req)
	if fmt.Sprint(k.calls) != "[clear-mark 0x80000]" {
		t.Fatalf("calls on request 2: %q", k.calls)
	}
	if !strings.Contains(string(decode(t, out).Payload), fields) {
		t.Fatalf("request 2 without the fields")
	}
	k.calls = nil
	end2 := end1 + uint32(len(req))
	serverData(kernelAckAfter, end2+2*ins, end2)
	if want := fmt.Sprint([]string{fmt.Sprintf("seqadj %#x %d", uint32(selISN), 2*ins), "set-mark 0x80000"}); fmt.Sprint(k.calls) != want {
		t.Fatalf("calls %q, want %q", k.calls, want)
	}
	k.calls = nil

	// Request 3 while the bit cannot be cleared: dropped, so the server
	// never acknowledges fields the kernel would map by the old offset;
	// the retransmission goes out once it can.
	k.markErr = errors.New("ctnetlink down")
	if _, v := client(end2, end2+2*ins, req); !v.Drop {
		t.Fatalf("request 3 was sent though the bit stayed set: %+v", v)
	}
	k.markErr = nil
	out, _ = client(end2, end2+2*ins, req)
	if !strings.Contains(string(decode(t, out).Payload), fields) {
		t.Fatalf("request 3 without the fields")
	}
	end3 := end2 + uint32(len(req))
	serverData(2, end3+3*ins, end3)
	// A SACK block of the server maps like its ack (RFC 2018).
	out, _ = run(pkt{fromServer: true, ack: true, seq: srvSeq, ackn: end2 + 2*ins, sack: [][2]uint32{{end2 + 2*ins + 10, end3 + 3*ins}}})
	var sack []byte
	for _, o := range decode(t, out).Options {
		if o.OptionType == layers.TCPOptionKindSACK {
			sack = o.OptionData
		}
	}
	if len(sack) != 8 {
		t.Fatalf("SACK option lost: %x", sack)
	}
	l, r := be32(sack)-uint32(d), be32(sack[4:])-uint32(d)
	if r != end3 || l < end2 || l > end2+10 {
		t.Errorf("SACK block [%#x, %#x) reaches the client as [%#x, %#x)", end2+2*ins+10, end3+3*ins, l, r)
	}
	if st.Get(SelKernelAcks) != 2 || st.Get(SelUserAcks) != 2 || st.Get(SelKernelFailed) != 1 {
		t.Errorf("select-kernel-acks %d, select-user-acks %d, select-kernel-failed %d",
			st.Get(SelKernelAcks), st.Get(SelUserAcks), st.Get(SelKernelFailed))
	}
}

func be32(b []byte) uint32 {
	return uint32(b[0])<<24 | uint32(b[1])<<16 | uint32(b[2])<<8 | uint32(b[3])
}

// The client's pure ACKs pass the kernel while the bit is set (the rules'
// pureack chain), so the server's FIN takes the bit away before its
// verdict: the client's acknowledgement of it, which ends the flow here,
// is queued again. When the bit cannot be cleared the FIN is dropped.
func TestKernelAcksServerFin(t *testing.T) {
	h, st := selHandler(t, false, func(c *testConfig) { c.SeqAdjBit = 0x80000 })
	k := &kernelSeqAdj{}
	h.SetSeqAdj(k)
	run := func(p pkt) Verdict {
		t.Helper()
		_, v := handle(t, h, p)
		if v.After.Set() {
			v.After.Run()
		}
		return v
	}
	run(pkt{syn: true, seq: selISN, mss: 1460})
	run(pkt{fromServer: true, syn: true, ack: true, seq: srvISN, ackn: selISN + 1, mss: 1460})
	req := []byte("GET / HTTP/1.1\r\nHost: x\r\n\r\n")
	ins := uint32(len(fields))
	srvSeq := uint32(srvISN + 1)
	run(pkt{ack: true, seq: selISN + 1, ackn: srvSeq, payload: req})
	end := selISN + 1 + uint32(len(req))
	for range kernelAckAfter {
		run(pkt{fromServer: true, ack: true, seq: srvSeq, ackn: end + ins, payload: bytes.Repeat([]byte{'x'}, 100)})
		srvSeq += 100
	}
	if st.Get(SelKernelAcks) != 1 {
		t.Fatalf("no handoff: calls %q", k.calls)
	}
	k.calls = nil

	k.markErr = errors.New("ctnetlink down")
	if v := run(pkt{fromServer: true, ack: true, fin: true, seq: srvSeq, ackn: end + ins}); !v.Drop {
		t.Fatalf("server FIN sent though the bit stayed set: %+v", v)
	}
	k.markErr = nil
	if v := run(pkt{fromServer: true, ack: true, fin: true, seq: srvSeq, ackn: end + ins}); v.Drop {
		t.Fatalf("server FIN dropped: %+v", v)
	}
	if want := "[clear-mark 0x80000 clear-mark 0x80000]"; fmt.Sprint(k.calls) != want {
		t.Errorf("calls %q, want %q", k.calls, want)
	}
	// The client's FIN and its acknowledgement of the server's FIN, both
	// queued now, end the flow; no second handoff after the server's FIN.
	run(pkt{ack: true, fin: true, seq: end, ackn: srvSeq + 1})
	run(pkt{fromServer: true, ack: true, seq: srvSeq + 1, ackn: end + ins + 1})
	if h.sel.Len() != 0 || st.Get(SelDone) != 1 {
		t.Errorf("flow state kept after both FINs were acknowledged (%d held)", h.sel.Len())
	}
	if st.Get(SelKernelAcks) != 1 || st.Get(SelUserAcks) != 1 || st.Get(SelKernelFailed) != 1 {
		t.Errorf("select-kernel-acks %d, select-user-acks %d, select-kernel-failed %d",
			st.Get(SelKernelAcks), st.Get(SelUserAcks), st.Get(SelKernelFailed))
	}
}
