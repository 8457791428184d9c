package queue

import (
	"bytes"
	"encoding/binary"
	"testing"
)

// packetMsg builds an NFQNL_MSG_PACKET as nfqnl_build_packet_message does:
// packet header, marks and interfaces, then the payload.
func packetMsg(id, mark, in, out uint32, payload []byte, capLen bool) []byte {
	b := appendMsgHdr(nil, nfqnlMsgPkt, 0, 0, 7)
	b = appendAttr(b, nfqaPacketHdr, byte(id>>24), byte(id>>16), byte(id>>8), byte(id), 0x08, 0x00, 4)
	b = appendAttrU32(b, nfqaInDev, in)
	b = appendAttrU32(b, nfqaOutDev, out)
	b = appendAttrU32(b, nfqaMark, mark)
	if capLen {
		b = appendAttrU32(b, nfqaCapLen, 20000)
	}
	b = appendAttr(b, nfqaPayload, payload...)
	finishMsg(b, 0)
	return b
}

func TestParsePacket(t *testing.T) {
	payload := []byte{0x45, 0, 0, 20, 1, 2, 3}
	msg := packetMsg(0x01020304, 0x10000, 3, 4, payload, false)
	msg = append(msg, packetMsg(9, 0, 0, 0, nil, true)...)
	typ, body, rest, ok := nextMsg(msg)
	if !ok || typ != nfqnlMsgPkt {
		t.Fatalf("nextMsg: %v %#x", ok, typ)
	}
	p, ok := parsePacket(body)
	if !ok || p.id != 0x01020304 || p.meta != (Meta{Mark: 0x10000, InIf: 3, OutIf: 4}) || p.truncated {
		t.Fatalf("parsePacket: %+v %v", p, ok)
	}
	if got := body[p.off : p.off+p.n]; !bytes.Equal(got, payload) {
		t.Fatalf("payload %x, want %x", got, payload)
	}
	_, body, rest, ok = nextMsg(rest)
	if !ok || rest != nil {
		t.Fatalf("second message: %v, rest %d bytes", ok, len(rest))
	}
	if p, ok = parsePacket(body); !ok || p.id != 9 || !p.truncated {
		t.Fatalf("NFQA_CAP_LEN: %+v %v", p, ok)
	}
	// An attribute running past the message: the id is still answered.
	cut := packetMsg(5, 0, 0, 0, payload, false)
	_, body, _, _ = nextMsg(cut)
	body = body[:len(body)-4]
	if p, ok = parsePacket(body); !ok || p.id != 5 || !p.truncated {
		t.Fatalf("cut message: %+v %v", p, ok)
	}
	if _, _, _, ok := nextMsg(cut[:10]); ok {
		t.Fatal("nextMsg took a short buffer")
	}
}

// A verdict with mark and packet, byte for byte (struct nlmsghdr, nfgenmsg,
// NFQA_VERDICT_HDR, NFQA_MARK, NFQA_PAYLOAD padded to 4 bytes).
func TestAppendVerdict(t *testing.T) {
	got := appendVerdict(nil, 7, 0x0a0b0c0d, nfAccept, true, 0x20000, []byte{0x45, 1, 2, 3, 4})
	var want []byte
	ne := binary.NativeEndian
	want = ne.AppendUint32(want, 16+4+12+8+12)
	want = ne.AppendUint16(want, 3<<8|1)
	want = ne.AppendUint16(want, 1)
	want = append(want, make([]byte, 8)...)
	want = append(want, 0, 0, 0, 7)
	want = ne.AppendUint16(want, 12)
	want = ne.AppendUint16(want, 2)
	want = append(want, 0, 0, 0, 1, 0x0a, 0x0b, 0x0c, 0x0d)
	want = ne.AppendUint16(want, 8)
	want = ne.AppendUint16(want, 3)
	want = append(want, 0, 2, 0, 0)
	want = ne.AppendUint16(want, 9)
	want = ne.AppendUint16(want, 10)
	want = append(want, 0x45, 1, 2, 3, 4, 0, 0, 0)
	if !bytes.Equal(got, want) {
		t.Fatalf("verdict\n got %x\nwant %x", got, want)
	}
	// A plain accept: header and verdict only.
	if got := appendVerdict(nil, 7, 1, nfAccept, false, 0, nil); len(got) != 32 {
		t.Fatalf("plain accept is %d bytes, want 32", len(got))
	}
}

func BenchmarkParseAndVerdict(b *testing.B) {
	msg := packetMsg(1, 0, 2, 3, make([]byte, 60), false)
	out := make([]byte, 0, 4096)
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		_, body, _, _ := nextMsg(msg)
		p, _ := parsePacket(body)
		out = appendVerdict(out[:0], 0, p.id, nfAccept, true, p.meta.Mark, body[p.off:p.off+p.n])
	}
}

// A verdict whose payload is gathered from its job buffer (appendVerdictRef
// plus the pieces verdicts.send writes) is byte for byte the verdict that
// copies it (appendVerdict), padding included, between other messages.
func TestVerdictRefGathersSameBytes(t *testing.T) {
	for _, n := range []int{2048, 2049, 2050, 2051, 65000} {
		pkt := make([]byte, n)
		for i := range pkt {
			pkt[i] = byte(i * 7)
		}
		want := appendVerdict(nil, 3, 1, nfAccept, false, 0, nil)
		want = appendVerdict(want, 3, 2, nfAccept, true, 0x10000, pkt)
		want = appendVerdict(want, 3, 3, nfDrop, false, 0, nil)

		out := appendVerdict(nil, 3, 1, nfAccept, false, 0, nil)
		out = appendVerdictRef(out, 3, 2, true, 0x10000, n)
		at := len(out)
		out = appendVerdict(out, 3, 3, nfDrop, false, 0, nil)
		got := append(append(append([]byte{}, out[:at]...), pkt...), zeroPad[:align4(n)-n]...)
		got = append(got, out[at:]...)
		if !bytes.Equal(got, want) {
			t.Fatalf("payload %d bytes: gathered verdicts differ from the copied ones", n)
		}
	}
}
