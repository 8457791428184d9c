package encoders

import (
	"bytes"
	"encoding/binary"
	"math/rand/v2"
	"testing"

	"github.com/gopacket/gopacket/layers"
)

func TestAddHostIDOption(t *testing.T) {
	payload := func(n int) []byte {
		r := rand.New(rand.NewPCG(1, uint64(n)))
		b := make([]byte, n)
		for i := range b {
			b[i] = byte(r.Uint32())
		}
		return b
	}
	tests := []struct {
		name     string
		tcp      *layers.TCP
		payload  []byte
		idLen    int
		optBytes int // option bytes after the rewrite
		stripped bool
	}{
		{"plain SYN, 2-byte id", synHdr(), nil, 2, 8, false},
		{"plain SYN, 4-byte id", synHdr(), nil, 4, 8, false},
		{"Linux SYN, 2-byte id", synHdr(linuxSYN()...), nil, 2, 28, false},
		{"Linux SYN, 4-byte id", synHdr(linuxSYN()...), nil, 4, 28, false},
		{"forged 2-byte HOST_ID replaced", synHdr(append(linuxSYN(), oNOP(), oNOP(), oHostID(0xbe, 0xef))...), nil, 4, 28, true},
		{"forged 4-byte HOST_ID replaced", synHdr(append(linuxSYN(), oHostID(1, 2, 3, 4))...), nil, 2, 28, true},
		{"forged HOST_ID first", synHdr(append([]layers.TCPOption{oHostID(1, 2, 3, 4)}, linuxSYN()...)...), nil, 4, 28, true},
		{"two forged HOST_IDs", synHdr(oHostID(9, 9), oMSS(1400), oHostID(8, 8, 8, 8)), nil, 4, 12, true},
		{"forged ExID-only HOST_ID (length 4)", synHdr(oMSS(1400), oHostID()), nil, 4, 12, true},
		{"other experimental option kept", synHdr(oMSS(1400), layers.TCPOption{OptionType: 253, OptionData: []byte{0x03, 0x49, 1, 2}}), nil, 2, 16, false},
		{"EOL in the middle, forged option after it", synHdr(oMSS(1400), oEOL(), oHostID(1, 2, 3, 4)), nil, 4, 12, false},
		{"exactly 40 bytes after insertion", synHdr(append(linuxSYN(), oTFO(10))...), nil, 4, 40, false},
		{"40 bytes full, forged 4-byte inside", synHdr(append(linuxSYN(), oTFO(10), oHostID(1, 2, 3, 4))...), nil, 4, 40, true},
		{"40 bytes full, NOP-aligned forged 2-byte inside", synHdr(append(linuxSYN(), oTFO(10), oNOP(), oNOP(), oHostID(1, 2))...), nil, 4, 40, true},
		{"data segment with payload", dataHdr(oNOP(), oNOP(), oTS()), payload(1000), 4, 20, false},
		{"data segment, odd payload", dataHdr(oNOP(), oNOP(), oTS()), payload(1001), 2, 20, false},
		{"data segment, forged HOST_ID", dataHdr(oNOP(), oNOP(), oTS(), oHostID(7, 7)), payload(333), 2, 20, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			const id = 0xa1b2c3d4
			pkt := build(t, ipHdr(), tc.tcp, tc.payload)
			before := clone(pkt)
			n, res, stripped := AddHostIDOption(pv(pkt, len(pkt)), pkt, id, tc.idLen, 1500)
			if res != Written || stripped != tc.stripped {
				t.Fatalf("got %v stripped=%v, want written stripped=%v", res, stripped, tc.stripped)
			}
			after := pkt[:n]
			a := checkRewritten(t, before, after, wantHostID(id, tc.idLen))
			if got := int(a.tcp.DataOffset)*4 - 20; got != tc.optBytes {
				t.Errorf("option bytes %d, want %d", got, tc.optBytes)
			}
			gotID, gotLen, ok := HostIDOption(after)
			if !ok || gotLen != tc.idLen || gotID != id&(1<<(8*tc.idLen)-1) {
				t.Errorf("HostIDOption = %#x, %d, %v", gotID, gotLen, ok)
			}
			// Idempotent: a second pass (a retransmission queued again) changes nothing.
			again := clone(after)
			if n2, res, _ := AddHostIDOption(pv(again, len(again)), again, id, tc.idLen, 1500); res != Unchanged || n2 != n || !bytes.Equal(again, after) {
				t.Errorf("second pass: %v", res)
			}
			// Stripping gives back a packet without HOST_ID and the original options.
			if n3, res := StripHostIDOption(pv(again, len(again)), again); res != Written {
				t.Errorf("strip: %v", res)
			} else {
				checkRewritten(t, before, again[:n3], nil)
			}
		})
	}
}

func TestAddHostIDOptionNoSpace(t *testing.T) {
	t.Run("40 bytes full, no forged option: unchanged", func(t *testing.T) {
		pkt := build(t, ipHdr(), synHdr(append(linuxSYN(), oTFO(16), oNOP(), oNOP())...), nil)
		before := clone(pkt)
		for _, idLen := range []int{2, 4} {
			n, res, stripped := AddHostIDOption(pv(pkt, len(pkt)), pkt, 42, idLen, 0)
			if res != NoOptionSpace || stripped || n != len(before) || !bytes.Equal(pkt, before) {
				t.Fatalf("idLen %d: %v stripped=%v n=%d, want no-option-space and no change", idLen, res, stripped, n)
			}
		}
	})
	t.Run("40 bytes full, forged option removed anyway", func(t *testing.T) {
		// 20 + TFO(12) + 2 = 34, forged 6: 40. Ours (8) does not fit in 40-34.
		pkt := build(t, ipHdr(), synHdr(append(linuxSYN(), oTFO(12), oHostID(0xde, 0xad))...), nil)
		before := clone(pkt)
		n, res, stripped := AddHostIDOption(pv(pkt, len(pkt)), pkt, 42, 4, 0)
		if res != NoOptionSpace || !stripped {
			t.Fatalf("%v stripped=%v, want no-option-space, stripped", res, stripped)
		}
		a := checkRewritten(t, before, pkt[:n], nil)
		if a.tcp.DataOffset*4 != 20+36 {
			t.Errorf("data offset %d", a.tcp.DataOffset)
		}
		// A 2-byte id still fits exactly in the same packet.
		pkt = clone(before)
		if n, res, _ = AddHostIDOption(pv(pkt, len(pkt)), pkt, 42, 2, 0); res != Written {
			t.Fatalf("2-byte id: %v", res)
		}
		checkRewritten(t, before, pkt[:n], wantHostID(42, 2))
	})
}

func TestAddHostIDOptionLimits(t *testing.T) {
	syn := build(t, ipHdr(), synHdr(linuxSYN()...), nil) // 60 bytes
	t.Run("MTU", func(t *testing.T) {
		for _, tc := range []struct {
			mtu  int
			want Result
		}{{59, OverMTU}, {60, OverMTU}, {67, OverMTU}, {68, Written}, {0, Written}, {-1, Written}} {
			pkt := clone(syn)
			n, res, stripped := AddHostIDOption(pv(pkt, len(pkt)), pkt, 7, 4, tc.mtu)
			if res != tc.want || stripped {
				t.Errorf("mtu %d: %v stripped=%v, want %v", tc.mtu, res, stripped, tc.want)
			}
			if res != Written && (n != len(syn) || !bytes.Equal(pkt, syn)) {
				t.Errorf("mtu %d: packet changed", tc.mtu)
			}
		}
		full := build(t, ipHdr(), dataHdr(oNOP(), oNOP(), oTS()), make([]byte, 1448)) // 1500 bytes
		pkt := clone(full)
		if _, res, _ := AddHostIDOption(pv(pkt, len(pkt)), pkt, 7, 2, 1500); res != OverMTU || !bytes.Equal(pkt, full) {
			t.Errorf("1500-byte segment at mtu 1500: %v", res)
		}
	})
	t.Run("MTU with forged option: still stripped", func(t *testing.T) {
		// A forged ExID-only option (4 bytes) replaced by ours (8) grows the header.
		orig := build(t, ipHdr(), synHdr(oMSS(1400), oHostID()), nil)
		pkt := clone(orig)
		n, res, stripped := AddHostIDOption(pv(pkt, len(pkt)), pkt, 7, 4, len(orig))
		if res != OverMTU || !stripped || n != len(orig)-4 {
			t.Fatalf("%v stripped=%v n=%d", res, stripped, n)
		}
		checkRewritten(t, orig, pkt[:n], nil)
	})
	t.Run("buffer capacity", func(t *testing.T) {
		pkt := clone(syn)[: len(syn) : len(syn)+7]
		if n, res, stripped := AddHostIDOption(pv(pkt, len(pkt)), pkt, 7, 4, 0); res != NoBufferRoom || stripped || n != len(syn) || !bytes.Equal(pkt, syn) {
			t.Errorf("cap+7: %v stripped=%v", res, stripped)
		}
		pkt = clone(syn)[: len(syn) : len(syn)+8]
		if n, res, _ := AddHostIDOption(pv(pkt, len(pkt)), pkt, 7, 4, 0); res != Written {
			t.Errorf("cap+8: %v", res)
		} else {
			checkRewritten(t, syn, pkt[:n], wantHostID(7, 4))
		}
		forged := build(t, ipHdr(), synHdr(oMSS(1400), oHostID()), nil)
		pkt = clone(forged)[:len(forged):len(forged)]
		n, res, stripped := AddHostIDOption(pv(pkt, len(pkt)), pkt, 7, 4, 0)
		if res != NoBufferRoom || !stripped {
			t.Fatalf("forged, no room: %v stripped=%v", res, stripped)
		}
		checkRewritten(t, forged, pkt[:n], nil)
	})
	t.Run("n within capacity but beyond len", func(t *testing.T) {
		pkt := clone(syn)
		short := pkt[:10]
		n, res, _ := AddHostIDOption(pv(short, len(syn)), short, 7, 4, 0)
		if res != Written {
			t.Fatalf("%v", res)
		}
		checkRewritten(t, syn, short[:n], wantHostID(7, 4))
	})
	t.Run("trailing bytes past Total Length dropped", func(t *testing.T) {
		pkt := append(clone(syn), 0xee, 0xee, 0xee, 0xee)
		n, res, _ := AddHostIDOption(pv(pkt, len(pkt)), pkt, 7, 4, 0)
		if res != Written || n != len(syn)+8 {
			t.Fatalf("%v n=%d", res, n)
		}
		checkRewritten(t, syn, pkt[:n], wantHostID(7, 4))
	})
	t.Run("IP options", func(t *testing.T) {
		ip := ipHdr()
		ip.Options = []layers.IPv4Option{{OptionType: 1}, {OptionType: 1}, {OptionType: 1}, {OptionType: 0}}
		orig := build(t, ip, dataHdr(oNOP(), oNOP(), oTS()), []byte("hello, world"))
		if orig[0]&0x0f != 6 {
			t.Fatalf("IHL %d", orig[0]&0x0f)
		}
		pkt := clone(orig)
		n, res, _ := AddHostIDOption(pv(pkt, len(pkt)), pkt, 0xbeef, 2, 0)
		if res != Written {
			t.Fatalf("%v", res)
		}
		checkRewritten(t, orig, pkt[:n], wantHostID(0xbeef, 2))
	})
}

func TestAddHostIDOptionRejects(t *testing.T) {
	syn := build(t, ipHdr(), synHdr(linuxSYN()...), nil)
	udp := clone(syn)
	udp[9] = 17
	mf := clone(syn)
	mf[6] |= 0x20
	off := clone(syn)
	off[7] = 1
	ihl := clone(syn)
	ihl[0] = 0x44
	v6 := clone(syn)
	v6[0] = 0x65
	doff := clone(syn)
	doff[20+12] = 4 << 4
	bigDoff := clone(syn)
	bigDoff[20+12] = 15 << 4
	totShort := clone(syn)
	binary.BigEndian.PutUint16(totShort[2:], 30)
	exp := func() *layers.TCP { // MSS, then kind 30 with 2 data bytes, then NOP NOP
		return synHdr(oMSS(1400), layers.TCPOption{OptionType: 30, OptionData: []byte{1, 2}}, oNOP(), oNOP())
	}
	optLen0 := patched(t, exp(), func(o []byte) { o[5] = 0 })
	optLen1 := patched(t, exp(), func(o []byte) { o[5] = 1 })
	optOver := patched(t, exp(), func(o []byte) { o[5] = 9 })
	// The last byte is a kind whose length byte would be past the option space.
	optLenAtEnd := patched(t, synHdr(oMSS(1400), oNOP(), oNOP(), oNOP(), oNOP()), func(o []byte) { o[7] = 30 })
	tests := []struct {
		name  string
		pkt   []byte
		n     int
		idLen int
		want  Result
	}{
		{"UDP", udp, len(udp), 4, NotTCP},
		{"MF set", mf, len(mf), 4, Fragment},
		{"offset set", off, len(off), 4, Fragment},
		{"IHL 4", ihl, len(ihl), 4, BadHeader},
		{"version 6", v6, len(v6), 4, BadHeader},
		{"data offset 4", doff, len(doff), 4, BadHeader},
		{"data offset past segment", bigDoff, len(bigDoff), 4, Truncated},
		{"total length < headers", totShort, len(totShort), 4, Truncated},
		{"option length 0", optLen0, len(optLen0), 4, BadHeader},
		{"option length 1", optLen1, len(optLen1), 4, BadHeader},
		{"option overruns", optOver, len(optOver), 4, BadHeader},
		{"option length byte zero at end", optLenAtEnd, len(optLenAtEnd), 4, BadHeader},
		{"truncated packet", syn[:50], 50, 4, Truncated},
		{"truncated IP header", syn[:19], 19, 4, Truncated},
		{"empty", nil, 0, 4, Truncated},
		{"negative n", syn, -1, 4, Truncated},
		{"n > cap", syn[:10:10], 60, 4, Truncated},
		{"id length 3", syn, len(syn), 3, BadHeader},
		{"id length 0", syn, len(syn), 0, BadHeader},
		{"garbage", bytes.Repeat([]byte{0x45, 0xff}, 40), 80, 4, Truncated},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			before := clone(tc.pkt)
			n, res, stripped := AddHostIDOption(pv(tc.pkt, tc.n), tc.pkt, 1, tc.idLen, 0)
			if res != tc.want || stripped || n != tc.n || !bytes.Equal(tc.pkt, before) {
				t.Errorf("got %v stripped=%v n=%d, want %v, unchanged", res, stripped, n, tc.want)
			}
			if tc.idLen == 4 {
				if _, res := StripHostIDOption(pv(tc.pkt, tc.n), tc.pkt); res != tc.want && !(res == Unchanged && tc.want == BadHeader) {
					t.Errorf("strip: %v", res)
				}
			}
		})
	}
}

func TestStripHostIDOption(t *testing.T) {
	t.Run("none", func(t *testing.T) {
		pkt := build(t, ipHdr(), synHdr(linuxSYN()...), nil)
		before := clone(pkt)
		if n, res := StripHostIDOption(pv(pkt, len(pkt)), pkt); res != Unchanged || n != len(before) || !bytes.Equal(pkt, before) {
			t.Errorf("%v", res)
		}
	})
	for _, tc := range []struct {
		name     string
		tcp      *layers.TCP
		payload  []byte
		optBytes int
	}{
		{"only option", synHdr(oHostID(1, 2)), nil, 0},
		{"after Linux options", synHdr(append(linuxSYN(), oNOP(), oNOP(), oHostID(1, 2))...), nil, 20},
		{"before Linux options", synHdr(append([]layers.TCPOption{oHostID(1, 2, 3, 4)}, linuxSYN()...)...), nil, 20},
		{"data", dataHdr(oNOP(), oNOP(), oTS(), oHostID(1, 2, 3, 4)), []byte("GET / HTTP/1.1\r\n"), 12},
		{"long HOST_ID (IPv6 /64)", dataHdr(oHostID(1, 2, 3, 4, 5, 6, 7, 8)), []byte("x"), 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			pkt := build(t, ipHdr(), tc.tcp, tc.payload)
			before := clone(pkt)
			n, res := StripHostIDOption(pv(pkt, len(pkt)), pkt)
			if res != Written {
				t.Fatalf("%v", res)
			}
			a := checkRewritten(t, before, pkt[:n], nil)
			if got := int(a.tcp.DataOffset)*4 - 20; got != tc.optBytes {
				t.Errorf("option bytes %d, want %d", got, tc.optBytes)
			}
		})
	}
}

func TestKeepReceivedHostID(t *testing.T) {
	// RFC 7974 §4.3 propagate-forward mode: the received option stays, ours follows.
	orig := build(t, ipHdr(), synHdr(append(linuxSYN(), oNOP(), oNOP(), oHostID(0xbe, 0xef))...), nil)
	pkt := clone(orig)
	n, res, stripped := rewriteHostID(pv(pkt, len(pkt)), pkt, 0x01020304, 4, 0, addHostID|keepHostID)
	if res != Written || stripped {
		t.Fatalf("%v %v", res, stripped)
	}
	a := decode(t, pkt[:n])
	ids := hostIDs(a.tcp)
	if len(ids) != 2 || !bytes.Equal(ids[0].OptionData, wantHostID(0xbeef, 2)) || !bytes.Equal(ids[1].OptionData, wantHostID(0x01020304, 4)) {
		t.Errorf("options %v", a.tcp.Options)
	}
	if _, res, _ := rewriteHostID(pv(pkt, n), pkt, 0x01020304, 4, 0, addHostID|keepHostID); res != Unchanged {
		t.Errorf("second pass %v", res)
	}
}

func TestHostIDFromTCPHeader(t *testing.T) {
	pkt := build(t, ipHdr(), synHdr(oMSS(1400), oNOP(), oNOP(), oHostID(0x12, 0x34)), nil)
	hdr := pkt[20:]
	if id, l, ok := HostIDFromTCPHeader(hdr); !ok || l != 2 || id != 0x1234 {
		t.Errorf("got %#x %d %v", id, l, ok)
	}
	if _, _, ok := HostIDFromTCPHeader(hdr[:20]); ok {
		t.Error("header cut before options: ok")
	}
	for _, tc := range []struct {
		name string
		pkt  []byte
	}{
		{"none", build(t, ipHdr(), synHdr(linuxSYN()...), nil)},
		{"after EOL", build(t, ipHdr(), synHdr(oEOL(), oNOP(), oNOP(), oNOP(), oHostID(1, 2)), nil)},
		{"ExID only", build(t, ipHdr(), synHdr(oHostID()), nil)},
		{"length 7", build(t, ipHdr(), synHdr(oHostID(1, 2, 3)), nil)},
		{"other ExID", build(t, ipHdr(), synHdr(layers.TCPOption{OptionType: 253, OptionData: []byte{0x03, 0x49, 1, 2}}), nil)},
		{"malformed before", patched(t, synHdr(layers.TCPOption{OptionType: 30, OptionData: []byte{0, 0}}, oNOP(), oNOP(), oHostID(1, 2)), func(o []byte) { o[1] = 1 })},
	} {
		if id, l, ok := HostIDOption(tc.pkt); ok {
			t.Errorf("%s: got %#x %d", tc.name, id, l)
		}
	}
	if _, _, ok := HostIDOption(nil); ok {
		t.Error("nil: ok")
	}
}
