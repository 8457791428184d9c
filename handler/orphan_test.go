package handler

import (
	"bytes"
	"testing"

	"github.com/natreveal/natreveal/packet"
)

// handleMark runs one packet whose packet mark is mark (the steer chain sets
// the select bit on a selected flow's client segments).
func handleMark(t testing.TB, h *Handler, p pkt, mark uint32) ([]byte, Verdict) {
	t.Helper()
	buf, n := buildPkt(t, p)
	v := h.Handle(buf, n, Meta{Mark: mark})
	if v.Drop {
		return nil, v
	}
	if v.Len > 0 {
		n = v.Len
	}
	return buf[:n], v
}

// oseq is an orphan flow's client sequence number.
const oseq uint32 = 1000

// A selected flow this daemon holds no state for (it was restarted, or took
// over from an HA peer) is reset and counted: no client byte reaches the
// server untranslated (issue 17 item 6, issue 14 item 2).
func TestOrphanFlowReset(t *testing.T) {
	h, st := selHandler(t, false)
	req := []byte("GET / HTTP/1.1\r\nX-Forwarded-For: 6.6.6.6\r\n\r\n")
	out, v := handleMark(t, h, pkt{ack: true, seq: oseq, ackn: srvISN + 50, payload: req}, selBit)
	tcp := decode(t, out)
	if len(tcp.Payload) != 0 || tcp.FIN || tcp.PSH || !tcp.ACK || tcp.RST {
		t.Fatalf("orphan client data not cut to a bare ACK: %+v", tcp)
	}
	if tcp.Seq != oseq^1<<31 {
		t.Errorf("probe seq %#x, want half the space away from %#x", tcp.Seq, oseq)
	}
	if !v.SetMark || v.Mark&selBit != 0 {
		t.Errorf("the select bit must leave the packet mark: %+v", v)
	}
	if st.Get(SelReset) != 1 {
		t.Fatalf("select-reset %d, want 1", st.Get(SelReset))
	}
	// The server's answer becomes a RST at its own sequence number.
	out, _ = handle(t, h, pkt{fromServer: true, ack: true, seq: srvISN + 50, ackn: oseq + 40})
	tcp = decode(t, out)
	if !tcp.RST || tcp.ACK || tcp.Seq != srvISN+50 || len(tcp.Payload) != 0 {
		t.Fatalf("server segment of an orphan flow: want RST seq %d, got %+v", srvISN+50, tcp)
	}
	// The client is gone: the next server segment passes, the client's
	// stack answers it with a RST, which passes too.
	srv := pkt{fromServer: true, ack: true, seq: srvISN + 50, ackn: oseq + 40, payload: []byte("HTTP/1.1 200 OK\r\n")}
	want, n := buildPkt(t, srv)
	if out, v = handle(t, h, srv); v.Len != 0 || !bytes.Equal(out, want[:n]) {
		t.Errorf("a later server segment must pass unchanged: %+v", v)
	}
	buf, n := rstPkt(t, pkt{ack: true, seq: oseq + 40})
	if v = h.Handle(buf, n, Meta{Mark: selBit}); v.Drop || v.Len != 0 {
		t.Errorf("the client's RST must pass: %+v", v)
	}
	if st.Get(SelReset) != 1 {
		t.Errorf("select-reset %d, want 1 (one flow)", st.Get(SelReset))
	}
}

// Client segments without the select bit are queued for other methods: no
// state is not a fault there.
func TestOrphanNeedsSelectBit(t *testing.T) {
	h, st := selHandler(t, false)
	p := pkt{ack: true, seq: oseq, ackn: srvISN + 50, payload: []byte("GET / HTTP/1.1\r\n\r\n")}
	want, n := buildPkt(t, p)
	if out, _ := handleMark(t, h, p, 0); !bytes.Equal(out, want[:n]) {
		t.Error("an unselected client segment changed")
	}
	if st.Get(SelReset) != 0 || st.Get(SelUnknown) != 1 {
		t.Errorf("select-reset %d select-unknown %d, want 0 and 1", st.Get(SelReset), st.Get(SelUnknown))
	}
}

// A flow whose state ended here (a RST, both FINs acknowledged) keeps a
// tombstone: its late packets pass as before, nothing is reset.
func TestOrphanEndedFlowPasses(t *testing.T) {
	h, st := selHandler(t, false)
	handshake(t, h)
	if out, _ := handleMark(t, h, pkt{ack: true, seq: selISN + 1, ackn: srvISN + 1}, selBit); out == nil {
		t.Fatal("ACK dropped")
	}
	buf, n := rstPkt(t, pkt{ack: true, seq: selISN + 1, ackn: srvISN + 1})
	h.Handle(buf, n, Meta{Mark: selBit})
	if st.Get(SelDone) != 1 {
		t.Fatalf("select-done %d after the client's RST", st.Get(SelDone))
	}
	late := pkt{fromServer: true, ack: true, fin: true, seq: srvISN + 1, ackn: selISN + 1}
	want, wn := buildPkt(t, late)
	if out, v := handle(t, h, late); v.Len != 0 || !bytes.Equal(out, want[:wn]) {
		t.Errorf("a late server FIN of an ended flow must pass: %+v", v)
	}
	data := pkt{ack: true, seq: selISN + 1, ackn: srvISN + 2, payload: []byte("x")}
	want, wn = buildPkt(t, data)
	if out, _ := handleMark(t, h, data, selBit); !bytes.Equal(out, want[:wn]) {
		t.Error("a late client segment of an ended flow must pass")
	}
	if st.Get(SelReset) != 0 {
		t.Errorf("select-reset %d for an ended flow", st.Get(SelReset))
	}
	// Conntrack destroys the flow: the tombstone goes with it, and a flow
	// that shows up again without state is an orphan.
	h.ForgetFlow(FlowKey{Proto: 6, Inside: selClient, InsidePort: cliPort, Server: selServer, ServerPort: 80}, cliPort, nil, false)
	if out, _ := handle(t, h, late); !decode(t, out).RST {
		t.Error("after the destroy, a server segment without state must become a RST")
	}
}

// rstPkt is buildPkt with the RST flag.
func rstPkt(t testing.TB, p pkt) ([]byte, int) {
	buf, n := buildPkt(t, p)
	buf[20+13] |= 0x04 // RST (RFC 9293 §3.1)
	packet.SetTCPChecksum4(buf[:n], 20)
	return buf, n
}

// A SYN that reopens a tuple in TIME_WAIT makes the kernel kill the old
// conntrack entry; its destroy event can arrive after the new flow's SYN
// started state here. While conntrack holds an entry of the tuple (the new
// one) the state stays and the flow is translated, not reset; a flow whose
// entry is gone loses it. A found-nothing during the handshake is asked
// again (the SYN's entry is confirmed only after its verdict).
func TestDestroyOfReopenedTuple(t *testing.T) {
	key := FlowKey{Proto: 6, Inside: selClient, InsidePort: cliPort, Server: selServer, ServerPort: 80}
	req := "GET / HTTP/1.1\r\nHost: a\r\n\r\n"
	want := "GET / HTTP/1.1\r\n" + fields + "Host: a\r\n\r\n"
	yes, no := func() bool { return true }, func() bool { return false }

	h, st := selHandler(t, false)
	if _, v := handle(t, h, pkt{syn: true, seq: selISN, mss: 1460}); v.Mark&selBit == 0 {
		t.Fatal("SYN not selected")
	}
	if h.ForgetFlow(key, cliPort, yes, false) {
		t.Error("a live tuple must not be asked again")
	}
	if h.ForgetFlow(key, cliPort, no, false) != true {
		t.Fatal("a handshake without an entry must be asked again")
	}
	handle(t, h, pkt{fromServer: true, syn: true, ack: true, seq: srvISN, ackn: selISN + 1, mss: 1460})
	if h.ForgetFlow(key, cliPort, yes, false) {
		t.Error("a live tuple must not be asked again")
	}
	out, _ := handleMark(t, h, pkt{ack: true, seq: selISN + 1, ackn: srvISN + 1, payload: []byte(req)}, selBit)
	if tcp := decode(t, out); string(tcp.Payload) != want {
		t.Fatalf("after the old entry's destroy event: %q, want %q", tcp.Payload, want)
	}
	if st.Get(SelReset) != 0 || st.Get(SelReopened) != 2 || st.Get(FlowsEvicted) != 0 {
		t.Errorf("select-reset %d select-reopened %d flows-evicted %d, want 0, 2, 0",
			st.Get(SelReset), st.Get(SelReopened), st.Get(FlowsEvicted))
	}
	// The flow's own entry is destroyed: past the handshake, at once.
	if h.ForgetFlow(key, cliPort, no, false) {
		t.Error("past the handshake, a destroy without an entry is final")
	}
	if st.Get(FlowsEvicted) != 1 {
		t.Errorf("flows-evicted %d, want 1", st.Get(FlowsEvicted))
	}
	out, _ = handleMark(t, h, pkt{ack: true, seq: selISN + 1, ackn: srvISN + 1, payload: []byte(req)}, selBit)
	if tcp := decode(t, out); len(tcp.Payload) != 0 || st.Get(SelReset) != 1 {
		t.Errorf("a flow whose entry is gone must be reset: payload %q select-reset %d", tcp.Payload, st.Get(SelReset))
	}

	// In the handshake, the second ask is the last.
	h, st = selHandler(t, false)
	handle(t, h, pkt{syn: true, seq: selISN, mss: 1460})
	if !h.ForgetFlow(key, cliPort, no, false) || h.ForgetFlow(key, cliPort, no, true) {
		t.Fatal("want ask again, then final")
	}
	if st.Get(FlowsEvicted) != 1 {
		t.Errorf("flows-evicted %d, want 1", st.Get(FlowsEvicted))
	}
}
