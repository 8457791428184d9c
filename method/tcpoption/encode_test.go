package tcpoption

import (
	"bytes"
	"encoding/binary"
	"math/rand/v2"
	"testing"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
	"github.com/natreveal/natreveal/internal/packettest"
	"github.com/natreveal/natreveal/packet"
	. "github.com/natreveal/natreveal/packet"
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
		{"plain SYN, 2-byte id", packettest.SYNHdr(), nil, 2, 8, false},
		{"plain SYN, 4-byte id", packettest.SYNHdr(), nil, 4, 8, false},
		{"Linux SYN, 2-byte id", packettest.SYNHdr(packettest.LinuxSYN()...), nil, 2, 28, false},
		{"Linux SYN, 4-byte id", packettest.SYNHdr(packettest.LinuxSYN()...), nil, 4, 28, false},
		{"forged 2-byte HOST_ID replaced", packettest.SYNHdr(append(packettest.LinuxSYN(), packettest.ONOP(), packettest.ONOP(), packettest.OHostID(0xbe, 0xef))...), nil, 4, 28, true},
		{"forged 4-byte HOST_ID replaced", packettest.SYNHdr(append(packettest.LinuxSYN(), packettest.OHostID(1, 2, 3, 4))...), nil, 2, 28, true},
		{"forged HOST_ID first", packettest.SYNHdr(append([]layers.TCPOption{packettest.OHostID(1, 2, 3, 4)}, packettest.LinuxSYN()...)...), nil, 4, 28, true},
		{"two forged HOST_IDs", packettest.SYNHdr(packettest.OHostID(9, 9), packettest.OMSS(1400), packettest.OHostID(8, 8, 8, 8)), nil, 4, 12, true},
		{"forged ExID-only HOST_ID (length 4)", packettest.SYNHdr(packettest.OMSS(1400), packettest.OHostID()), nil, 4, 12, true},
		{"other packettest.Experimental option kept", packettest.SYNHdr(packettest.OMSS(1400), layers.TCPOption{OptionType: 253, OptionData: []byte{0x03, 0x49, 1, 2}}), nil, 2, 16, false},
		{"EOL in the middle, forged option after it", packettest.SYNHdr(packettest.OMSS(1400), packettest.OEOL(), packettest.OHostID(1, 2, 3, 4)), nil, 4, 12, false},
		{"exactly 40 bytes after insertion", packettest.SYNHdr(append(packettest.LinuxSYN(), packettest.OTFO(10))...), nil, 4, 40, false},
		{"40 bytes full, forged 4-byte inside", packettest.SYNHdr(append(packettest.LinuxSYN(), packettest.OTFO(10), packettest.OHostID(1, 2, 3, 4))...), nil, 4, 40, true},
		{"40 bytes full, NOP-aligned forged 2-byte inside", packettest.SYNHdr(append(packettest.LinuxSYN(), packettest.OTFO(10), packettest.ONOP(), packettest.ONOP(), packettest.OHostID(1, 2))...), nil, 4, 40, true},
		{"data packettest.Segment with payload", packettest.DataHdr(packettest.ONOP(), packettest.ONOP(), packettest.OTS()), payload(1000), 4, 20, false},
		{"data packettest.Segment, odd payload", packettest.DataHdr(packettest.ONOP(), packettest.ONOP(), packettest.OTS()), payload(1001), 2, 20, false},
		{"data packettest.Segment, forged HOST_ID", packettest.DataHdr(packettest.ONOP(), packettest.ONOP(), packettest.OTS(), packettest.OHostID(7, 7)), payload(333), 2, 20, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			const id = 0xa1b2c3d4
			pkt := packettest.Build(t, packettest.IPHdr(), tc.tcp, tc.payload)
			before := packettest.Clone(pkt)
			n, res, stripped := AddHostIDOption(packettest.PV(pkt, len(pkt)), pkt, id, tc.idLen, 1500)
			if res != Written || stripped != tc.stripped {
				t.Fatalf("got %v stripped=%v, want written stripped=%v", res, stripped, tc.stripped)
			}
			after := pkt[:n]
			a := packettest.CheckRewritten(t, before, after, packettest.WantHostID(id, tc.idLen))
			if got := int(a.TCP.DataOffset)*4 - 20; got != tc.optBytes {
				t.Errorf("option bytes %d, want %d", got, tc.optBytes)
			}
			gotID, gotLen, ok := HostIDOption(after)
			if !ok || gotLen != tc.idLen || gotID != id&(1<<(8*tc.idLen)-1) {
				t.Errorf("HostIDOption = %#x, %d, %v", gotID, gotLen, ok)
			}
			// Idempotent: a second pass (a retransmission queued again) changes nothing.
			again := packettest.Clone(after)
			if n2, res, _ := AddHostIDOption(packettest.PV(again, len(again)), again, id, tc.idLen, 1500); res != Unchanged || n2 != n || !bytes.Equal(again, after) {
				t.Errorf("second pass: %v", res)
			}
			// Stripping gives back a packet without HOST_ID and the original options.
			if n3, res := StripHostIDOption(packettest.PV(again, len(again)), again); res != Written {
				t.Errorf("strip: %v", res)
			} else {
				packettest.CheckRewritten(t, before, again[:n3], nil)
			}
		})
	}
}

func TestAddHostIDOptionNoSpace(t *testing.T) {
	t.Run("40 bytes full, no forged option: unchanged", func(t *testing.T) {
		pkt := packettest.Build(t, packettest.IPHdr(), packettest.SYNHdr(append(packettest.LinuxSYN(), packettest.OTFO(16), packettest.ONOP(), packettest.ONOP())...), nil)
		before := packettest.Clone(pkt)
		for _, idLen := range []int{2, 4} {
			n, res, stripped := AddHostIDOption(packettest.PV(pkt, len(pkt)), pkt, 42, idLen, 0)
			if res != NoOptionSpace || stripped || n != len(before) || !bytes.Equal(pkt, before) {
				t.Fatalf("idLen %d: %v stripped=%v n=%d, want no-option-space and no change", idLen, res, stripped, n)
			}
		}
	})
	t.Run("40 bytes full, forged option removed anyway", func(t *testing.T) {
		// 20 + TFO(12) + 2 = 34, forged 6: 40. Ours (8) does not fit in 40-34.
		pkt := packettest.Build(t, packettest.IPHdr(), packettest.SYNHdr(append(packettest.LinuxSYN(), packettest.OTFO(12), packettest.OHostID(0xde, 0xad))...), nil)
		before := packettest.Clone(pkt)
		n, res, stripped := AddHostIDOption(packettest.PV(pkt, len(pkt)), pkt, 42, 4, 0)
		if res != NoOptionSpace || !stripped {
			t.Fatalf("%v stripped=%v, want no-option-space, stripped", res, stripped)
		}
		a := packettest.CheckRewritten(t, before, pkt[:n], nil)
		if a.TCP.DataOffset*4 != 20+36 {
			t.Errorf("data offset %d", a.TCP.DataOffset)
		}
		// A 2-byte id still fits exactly in the same packet.
		pkt = packettest.Clone(before)
		if n, res, _ = AddHostIDOption(packettest.PV(pkt, len(pkt)), pkt, 42, 2, 0); res != Written {
			t.Fatalf("2-byte id: %v", res)
		}
		packettest.CheckRewritten(t, before, pkt[:n], packettest.WantHostID(42, 2))
	})
}

func TestAddHostIDOptionLimits(t *testing.T) {
	syn := packettest.Build(t, packettest.IPHdr(), packettest.SYNHdr(packettest.LinuxSYN()...), nil) // 60 bytes
	t.Run("MTU", func(t *testing.T) {
		for _, tc := range []struct {
			mtu  int
			want Result
		}{{59, OverMTU}, {60, OverMTU}, {67, OverMTU}, {68, Written}, {0, Written}, {-1, Written}} {
			pkt := packettest.Clone(syn)
			n, res, stripped := AddHostIDOption(packettest.PV(pkt, len(pkt)), pkt, 7, 4, tc.mtu)
			if res != tc.want || stripped {
				t.Errorf("mtu %d: %v stripped=%v, want %v", tc.mtu, res, stripped, tc.want)
			}
			if res != Written && (n != len(syn) || !bytes.Equal(pkt, syn)) {
				t.Errorf("mtu %d: packet changed", tc.mtu)
			}
		}
		full := packettest.Build(t, packettest.IPHdr(), packettest.DataHdr(packettest.ONOP(), packettest.ONOP(), packettest.OTS()), make([]byte, 1448)) // 1500 bytes
		pkt := packettest.Clone(full)
		if _, res, _ := AddHostIDOption(packettest.PV(pkt, len(pkt)), pkt, 7, 2, 1500); res != OverMTU || !bytes.Equal(pkt, full) {
			t.Errorf("1500-byte packettest.Segment at mtu 1500: %v", res)
		}
	})
	t.Run("MTU with forged option: still stripped", func(t *testing.T) {
		// A forged ExID-only option (4 bytes) replaced by ours (8) grows the header.
		orig := packettest.Build(t, packettest.IPHdr(), packettest.SYNHdr(packettest.OMSS(1400), packettest.OHostID()), nil)
		pkt := packettest.Clone(orig)
		n, res, stripped := AddHostIDOption(packettest.PV(pkt, len(pkt)), pkt, 7, 4, len(orig))
		if res != OverMTU || !stripped || n != len(orig)-4 {
			t.Fatalf("%v stripped=%v n=%d", res, stripped, n)
		}
		packettest.CheckRewritten(t, orig, pkt[:n], nil)
	})
	t.Run("buffer capacity", func(t *testing.T) {
		pkt := packettest.Clone(syn)[: len(syn) : len(syn)+7]
		if n, res, stripped := AddHostIDOption(packettest.PV(pkt, len(pkt)), pkt, 7, 4, 0); res != NoBufferRoom || stripped || n != len(syn) || !bytes.Equal(pkt, syn) {
			t.Errorf("cap+7: %v stripped=%v", res, stripped)
		}
		pkt = packettest.Clone(syn)[: len(syn) : len(syn)+8]
		if n, res, _ := AddHostIDOption(packettest.PV(pkt, len(pkt)), pkt, 7, 4, 0); res != Written {
			t.Errorf("cap+8: %v", res)
		} else {
			packettest.CheckRewritten(t, syn, pkt[:n], packettest.WantHostID(7, 4))
		}
		forged := packettest.Build(t, packettest.IPHdr(), packettest.SYNHdr(packettest.OMSS(1400), packettest.OHostID()), nil)
		pkt = packettest.Clone(forged)[:len(forged):len(forged)]
		n, res, stripped := AddHostIDOption(packettest.PV(pkt, len(pkt)), pkt, 7, 4, 0)
		if res != NoBufferRoom || !stripped {
			t.Fatalf("forged, no room: %v stripped=%v", res, stripped)
		}
		packettest.CheckRewritten(t, forged, pkt[:n], nil)
	})
	t.Run("n within capacity but beyond len", func(t *testing.T) {
		pkt := packettest.Clone(syn)
		short := pkt[:10]
		n, res, _ := AddHostIDOption(packettest.PV(short, len(syn)), short, 7, 4, 0)
		if res != Written {
			t.Fatalf("%v", res)
		}
		packettest.CheckRewritten(t, syn, short[:n], packettest.WantHostID(7, 4))
	})
	t.Run("trailing bytes past Total Length dropped", func(t *testing.T) {
		pkt := append(packettest.Clone(syn), 0xee, 0xee, 0xee, 0xee)
		n, res, _ := AddHostIDOption(packettest.PV(pkt, len(pkt)), pkt, 7, 4, 0)
		if res != Written || n != len(syn)+8 {
			t.Fatalf("%v n=%d", res, n)
		}
		packettest.CheckRewritten(t, syn, pkt[:n], packettest.WantHostID(7, 4))
	})
	t.Run("IP options", func(t *testing.T) {
		ip := packettest.IPHdr()
		ip.Options = []layers.IPv4Option{{OptionType: 1}, {OptionType: 1}, {OptionType: 1}, {OptionType: 0}}
		orig := packettest.Build(t, ip, packettest.DataHdr(packettest.ONOP(), packettest.ONOP(), packettest.OTS()), []byte("hello, world"))
		if orig[0]&0x0f != 6 {
			t.Fatalf("IHL %d", orig[0]&0x0f)
		}
		pkt := packettest.Clone(orig)
		n, res, _ := AddHostIDOption(packettest.PV(pkt, len(pkt)), pkt, 0xbeef, 2, 0)
		if res != Written {
			t.Fatalf("%v", res)
		}
		packettest.CheckRewritten(t, orig, pkt[:n], packettest.WantHostID(0xbeef, 2))
	})
}

func TestAddHostIDOptionRejects(t *testing.T) {
	syn := packettest.Build(t, packettest.IPHdr(), packettest.SYNHdr(packettest.LinuxSYN()...), nil)
	udp := packettest.Clone(syn)
	udp[9] = 17
	mf := packettest.Clone(syn)
	mf[6] |= 0x20
	off := packettest.Clone(syn)
	off[7] = 1
	ihl := packettest.Clone(syn)
	ihl[0] = 0x44
	v6 := packettest.Clone(syn)
	v6[0] = 0x65
	doff := packettest.Clone(syn)
	doff[20+12] = 4 << 4
	bigDoff := packettest.Clone(syn)
	bigDoff[20+12] = 15 << 4
	totShort := packettest.Clone(syn)
	binary.BigEndian.PutUint16(totShort[2:], 30)
	exp := func() *layers.TCP { // MSS, then kind 30 with 2 data bytes, then NOP NOP
		return packettest.SYNHdr(packettest.OMSS(1400), layers.TCPOption{OptionType: 30, OptionData: []byte{1, 2}}, packettest.ONOP(), packettest.ONOP())
	}
	optLen0 := packettest.Patched(t, exp(), func(o []byte) { o[5] = 0 })
	optLen1 := packettest.Patched(t, exp(), func(o []byte) { o[5] = 1 })
	optOver := packettest.Patched(t, exp(), func(o []byte) { o[5] = 9 })
	// The last byte is a kind whose length byte would be past the option space.
	optLenAtEnd := packettest.Patched(t, packettest.SYNHdr(packettest.OMSS(1400), packettest.ONOP(), packettest.ONOP(), packettest.ONOP(), packettest.ONOP()), func(o []byte) { o[7] = 30 })
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
		{"data offset past packettest.Segment", bigDoff, len(bigDoff), 4, Truncated},
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
			before := packettest.Clone(tc.pkt)
			n, res, stripped := AddHostIDOption(packettest.PV(tc.pkt, tc.n), tc.pkt, 1, tc.idLen, 0)
			if res != tc.want || stripped || n != tc.n || !bytes.Equal(tc.pkt, before) {
				t.Errorf("got %v stripped=%v n=%d, want %v, unchanged", res, stripped, n, tc.want)
			}
			if tc.idLen == 4 {
				if _, res := StripHostIDOption(packettest.PV(tc.pkt, tc.n), tc.pkt); res != tc.want && !(res == Unchanged && tc.want == BadHeader) {
					t.Errorf("strip: %v", res)
				}
			}
		})
	}
}

func TestStripHostIDOption(t *testing.T) {
	t.Run("none", func(t *testing.T) {
		pkt := packettest.Build(t, packettest.IPHdr(), packettest.SYNHdr(packettest.LinuxSYN()...), nil)
		before := packettest.Clone(pkt)
		if n, res := StripHostIDOption(packettest.PV(pkt, len(pkt)), pkt); res != Unchanged || n != len(before) || !bytes.Equal(pkt, before) {
			t.Errorf("%v", res)
		}
	})
	for _, tc := range []struct {
		name     string
		tcp      *layers.TCP
		payload  []byte
		optBytes int
	}{
		{"only option", packettest.SYNHdr(packettest.OHostID(1, 2)), nil, 0},
		{"after Linux options", packettest.SYNHdr(append(packettest.LinuxSYN(), packettest.ONOP(), packettest.ONOP(), packettest.OHostID(1, 2))...), nil, 20},
		{"before Linux options", packettest.SYNHdr(append([]layers.TCPOption{packettest.OHostID(1, 2, 3, 4)}, packettest.LinuxSYN()...)...), nil, 20},
		{"data", packettest.DataHdr(packettest.ONOP(), packettest.ONOP(), packettest.OTS(), packettest.OHostID(1, 2, 3, 4)), []byte("GET / HTTP/1.1\r\n"), 12},
		{"long HOST_ID (IPv6 /64)", packettest.DataHdr(packettest.OHostID(1, 2, 3, 4, 5, 6, 7, 8)), []byte("x"), 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			pkt := packettest.Build(t, packettest.IPHdr(), tc.tcp, tc.payload)
			before := packettest.Clone(pkt)
			n, res := StripHostIDOption(packettest.PV(pkt, len(pkt)), pkt)
			if res != Written {
				t.Fatalf("%v", res)
			}
			a := packettest.CheckRewritten(t, before, pkt[:n], nil)
			if got := int(a.TCP.DataOffset)*4 - 20; got != tc.optBytes {
				t.Errorf("option bytes %d, want %d", got, tc.optBytes)
			}
		})
	}
}

func TestKeepReceivedHostID(t *testing.T) {
	// RFC 7974 §4.3 propagate-forward mode: the received option stays, ours follows.
	orig := packettest.Build(t, packettest.IPHdr(), packettest.SYNHdr(append(packettest.LinuxSYN(), packettest.ONOP(), packettest.ONOP(), packettest.OHostID(0xbe, 0xef))...), nil)
	pkt := packettest.Clone(orig)
	n, res, stripped := rewriteHostID(packettest.PV(pkt, len(pkt)), pkt, 0x01020304, 4, 0, addHostID|keepHostID)
	if res != Written || stripped {
		t.Fatalf("%v %v", res, stripped)
	}
	a := packettest.Decode(t, pkt[:n])
	ids := packettest.HostIDs(a.TCP)
	if len(ids) != 2 || !bytes.Equal(ids[0].OptionData, packettest.WantHostID(0xbeef, 2)) || !bytes.Equal(ids[1].OptionData, packettest.WantHostID(0x01020304, 4)) {
		t.Errorf("options %v", a.TCP.Options)
	}
	if _, res, _ := rewriteHostID(packettest.PV(pkt, n), pkt, 0x01020304, 4, 0, addHostID|keepHostID); res != Unchanged {
		t.Errorf("second pass %v", res)
	}
}

func TestHostIDFromTCPHeader(t *testing.T) {
	pkt := packettest.Build(t, packettest.IPHdr(), packettest.SYNHdr(packettest.OMSS(1400), packettest.ONOP(), packettest.ONOP(), packettest.OHostID(0x12, 0x34)), nil)
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
		{"none", packettest.Build(t, packettest.IPHdr(), packettest.SYNHdr(packettest.LinuxSYN()...), nil)},
		{"after EOL", packettest.Build(t, packettest.IPHdr(), packettest.SYNHdr(packettest.OEOL(), packettest.ONOP(), packettest.ONOP(), packettest.ONOP(), packettest.OHostID(1, 2)), nil)},
		{"ExID only", packettest.Build(t, packettest.IPHdr(), packettest.SYNHdr(packettest.OHostID()), nil)},
		{"length 7", packettest.Build(t, packettest.IPHdr(), packettest.SYNHdr(packettest.OHostID(1, 2, 3)), nil)},
		{"other ExID", packettest.Build(t, packettest.IPHdr(), packettest.SYNHdr(layers.TCPOption{OptionType: 253, OptionData: []byte{0x03, 0x49, 1, 2}}), nil)},
		{"malformed before", packettest.Patched(t, packettest.SYNHdr(layers.TCPOption{OptionType: 30, OptionData: []byte{0, 0}}, packettest.ONOP(), packettest.ONOP(), packettest.OHostID(1, 2)), func(o []byte) { o[1] = 1 })},
	} {
		if id, l, ok := HostIDOption(tc.pkt); ok {
			t.Errorf("%s: got %#x %d", tc.name, id, l)
		}
	}
	if _, _, ok := HostIDOption(nil); ok {
		t.Error("nil: ok")
	}
}

func TestAddHostIDOption6(t *testing.T) {
	pay := bytes.Repeat([]byte("natreveal"), 111) // 999 bytes
	tests := []struct {
		name     string
		ls       []gopacket.SerializableLayer
		idLen    int
		optBytes int
		stripped bool
	}{
		{"plain SYN, 2-byte id", []gopacket.SerializableLayer{packettest.SYNHdr()}, 2, 8, false},
		{"plain SYN, 4-byte id", []gopacket.SerializableLayer{packettest.SYNHdr()}, 4, 8, false},
		{"Linux SYN", []gopacket.SerializableLayer{packettest.SYNHdr(packettest.LinuxSYN()...)}, 4, 28, false},
		{"Hop-by-Hop", []gopacket.SerializableLayer{packettest.HBH6(), packettest.SYNHdr(packettest.LinuxSYN()...)}, 4, 28, false},
		{"Destination Options", []gopacket.SerializableLayer{packettest.HBH6(), packettest.Dest6(packettest.HomeAddr()), packettest.SYNHdr(packettest.LinuxSYN()...)}, 2, 28, false},
		{"Routing, segments left", []gopacket.SerializableLayer{packettest.Routing6(2, 1, packettest.Mid6), packettest.SYNHdr(packettest.LinuxSYN()...)}, 4, 28, false},
		{"forged HOST_ID", []gopacket.SerializableLayer{packettest.HBH6(), packettest.SYNHdr(append(packettest.LinuxSYN(), packettest.ONOP(), packettest.ONOP(), packettest.OHostID(0xbe, 0xef))...)}, 4, 28, true},
		{"two forged HOST_IDs", []gopacket.SerializableLayer{packettest.SYNHdr(packettest.OHostID(9, 9), packettest.OMSS(1400), packettest.OHostID(8, 8, 8, 8))}, 4, 12, true},
		{"exactly 40 bytes after insertion", []gopacket.SerializableLayer{packettest.SYNHdr(append(packettest.LinuxSYN(), packettest.OTFO(10))...)}, 4, 40, false},
		{"40 bytes full, forged inside", []gopacket.SerializableLayer{packettest.SYNHdr(append(packettest.LinuxSYN(), packettest.OTFO(10), packettest.OHostID(1, 2, 3, 4))...)}, 4, 40, true},
		{"data packettest.Segment", []gopacket.SerializableLayer{packettest.Dest6(packettest.DOpt(0x11, []byte{1})), packettest.DataHdr(packettest.ONOP(), packettest.ONOP(), packettest.OTS()), gopacket.Payload(pay)}, 4, 20, false},
		{"data packettest.Segment, odd payload, forged", []gopacket.SerializableLayer{packettest.DataHdr(packettest.ONOP(), packettest.ONOP(), packettest.OTS(), packettest.OHostID(7, 7)), gopacket.Payload(pay[:333])}, 2, 20, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			const id = 0xa1b2c3d4
			pkt := packettest.Build6(t, packettest.IP6Hdr(), tc.ls...)
			before := packettest.Clone(pkt)
			n, res, stripped := AddHostIDOption6(packettest.PV(pkt, len(pkt)), pkt, id, tc.idLen, 1500)
			if res != Written || stripped != tc.stripped {
				t.Fatalf("got %v stripped=%v, want written stripped=%v", res, stripped, tc.stripped)
			}
			after := pkt[:n]
			a := packettest.CheckRewritten6(t, before, after, packettest.WantHostID(id, tc.idLen))
			if got := int(a.TCP.DataOffset)*4 - 20; got != tc.optBytes {
				t.Errorf("option bytes %d, want %d", got, tc.optBytes)
			}
			if gotID, gotLen, ok := HostIDOption6(after); !ok || gotLen != tc.idLen || gotID != id&(1<<(8*tc.idLen)-1) {
				t.Errorf("HostIDOption6 = %#x, %d, %v", gotID, gotLen, ok)
			}
			again := packettest.Clone(after)
			if n2, res, _ := AddHostIDOption6(packettest.PV(again, len(again)), again, id, tc.idLen, 1500); res != Unchanged || n2 != n || !bytes.Equal(again, after) {
				t.Errorf("second pass: %v", res)
			}
			if n3, res := StripHostIDOption6(packettest.PV(again, len(again)), again); res != Written {
				t.Errorf("strip: %v", res)
			} else {
				packettest.CheckRewritten6(t, before, again[:n3], nil)
			}
		})
	}
}

func TestAddHostIDOption6Limits(t *testing.T) {
	syn := packettest.Build6(t, packettest.IP6Hdr(), packettest.HBH6(), packettest.SYNHdr(packettest.LinuxSYN()...)) // 88 bytes
	t.Run("MTU", func(t *testing.T) {
		for _, tc := range []struct {
			mtu  int
			want Result
		}{{88, OverMTU}, {95, OverMTU}, {96, Written}, {0, Written}, {-1, Written}} {
			pkt := packettest.Clone(syn)
			n, res, stripped := AddHostIDOption6(packettest.PV(pkt, len(pkt)), pkt, 7, 4, tc.mtu)
			if res != tc.want || stripped {
				t.Errorf("mtu %d: %v stripped=%v, want %v", tc.mtu, res, stripped, tc.want)
			}
			if res != Written && (n != len(syn) || !bytes.Equal(pkt, syn)) {
				t.Errorf("mtu %d: packet changed", tc.mtu)
			}
		}
	})
	t.Run("Payload Length limit", func(t *testing.T) {
		big := packettest.Build6(t, packettest.IP6Hdr(), packettest.DataHdr(), gopacket.Payload(make([]byte, 0xffff-20-4)))
		pkt := packettest.Clone(big)
		if _, res, _ := AddHostIDOption6(packettest.PV(pkt, len(pkt)), pkt, 7, 4, 0); res != OverMTU || !bytes.Equal(pkt, big) {
			t.Errorf("%v", res)
		}
		big = packettest.Build6(t, packettest.IP6Hdr(), packettest.DataHdr(), gopacket.Payload(make([]byte, 0xffff-20-8)))
		pkt = packettest.Clone(big)
		if n, res, _ := AddHostIDOption6(packettest.PV(pkt, len(pkt)), pkt, 7, 4, 0); res != Written || n != 0xffff+40 {
			t.Errorf("to the limit: %v %d", res, n)
		} else {
			packettest.CheckRewritten6(t, big, pkt[:n], packettest.WantHostID(7, 4))
		}
	})
	t.Run("MTU with forged option: still stripped", func(t *testing.T) {
		orig := packettest.Build6(t, packettest.IP6Hdr(), packettest.SYNHdr(packettest.OMSS(1400), packettest.OHostID()))
		pkt := packettest.Clone(orig)
		n, res, stripped := AddHostIDOption6(packettest.PV(pkt, len(pkt)), pkt, 7, 4, len(orig))
		if res != OverMTU || !stripped || n != len(orig)-4 {
			t.Fatalf("%v stripped=%v n=%d", res, stripped, n)
		}
		packettest.CheckRewritten6(t, orig, pkt[:n], nil)
	})
	t.Run("buffer capacity", func(t *testing.T) {
		pkt := packettest.Clone(syn)[: len(syn) : len(syn)+7]
		if n, res, stripped := AddHostIDOption6(packettest.PV(pkt, len(pkt)), pkt, 7, 4, 0); res != NoBufferRoom || stripped || n != len(syn) || !bytes.Equal(pkt, syn) {
			t.Errorf("cap+7: %v stripped=%v", res, stripped)
		}
		pkt = packettest.Clone(syn)[: len(syn) : len(syn)+8]
		if n, res, _ := AddHostIDOption6(packettest.PV(pkt, len(pkt)), pkt, 7, 4, 0); res != Written {
			t.Errorf("cap+8: %v", res)
		} else {
			packettest.CheckRewritten6(t, syn, pkt[:n], packettest.WantHostID(7, 4))
		}
	})
	t.Run("buffer capacity with forged option: still stripped", func(t *testing.T) {
		orig := packettest.Build6(t, packettest.IP6Hdr(), packettest.HBH6(), packettest.SYNHdr(append(packettest.LinuxSYN(), packettest.OHostID())...))
		pkt := packettest.Clone(orig)[:len(orig):len(orig)] // ours needs 4 more bytes
		n, res, stripped := AddHostIDOption6(packettest.PV(pkt, len(pkt)), pkt, 7, 4, 0)
		if res != NoBufferRoom || !stripped || n != len(orig)-4 {
			t.Fatalf("%v stripped=%v n=%d", res, stripped, n)
		}
		packettest.CheckRewritten6(t, orig, pkt[:n], nil)
	})
	t.Run("option space full", func(t *testing.T) {
		full := packettest.Build6(t, packettest.IP6Hdr(), packettest.SYNHdr(append(packettest.LinuxSYN(), packettest.OTFO(16), packettest.ONOP(), packettest.ONOP())...))
		pkt := packettest.Clone(full)
		if n, res, stripped := AddHostIDOption6(packettest.PV(pkt, len(pkt)), pkt, 7, 2, 0); res != NoOptionSpace || stripped || n != len(full) || !bytes.Equal(pkt, full) {
			t.Errorf("%v stripped=%v", res, stripped)
		}
		forged := packettest.Build6(t, packettest.IP6Hdr(), packettest.SYNHdr(append(packettest.LinuxSYN(), packettest.OTFO(12), packettest.OHostID(0xde, 0xad))...))
		pkt = packettest.Clone(forged)
		n, res, stripped := AddHostIDOption6(packettest.PV(pkt, len(pkt)), pkt, 7, 4, 0)
		if res != NoOptionSpace || !stripped {
			t.Fatalf("forged: %v stripped=%v", res, stripped)
		}
		packettest.CheckRewritten6(t, forged, pkt[:n], nil)
	})
	t.Run("trailing bytes dropped", func(t *testing.T) {
		pkt := append(packettest.Clone(syn), 0xee, 0xee, 0xee)
		n, res, _ := AddHostIDOption6(packettest.PV(pkt, len(pkt)), pkt, 7, 4, 0)
		if res != Written || n != len(syn)+8 {
			t.Fatalf("%v n=%d", res, n)
		}
		packettest.CheckRewritten6(t, syn, pkt[:n], packettest.WantHostID(7, 4))
	})
}

func TestAddHostIDOption6Rejects(t *testing.T) {
	syn := packettest.Build6(t, packettest.IP6Hdr(), packettest.SYNHdr(packettest.LinuxSYN()...))
	frag := packettest.Build6(t, packettest.IP6Hdr(), &layers.IPv6Fragment{MoreFragments: true, Identification: 1}, packettest.SYNHdr(packettest.LinuxSYN()...))
	atomic := packettest.Build6(t, packettest.IP6Hdr(), &layers.IPv6Fragment{Identification: 1}, packettest.SYNHdr(packettest.LinuxSYN()...))
	ah := packettest.Build6(t, packettest.IP6Hdr(), &packettest.AHHdr{ICV: 12}, packettest.SYNHdr(packettest.LinuxSYN()...))
	udp := packettest.Build6(t, packettest.IP6Hdr(), &layers.UDP{SrcPort: 1, DstPort: 2}, gopacket.Payload("hello"))
	v4 := packettest.Build(t, packettest.IPHdr(), packettest.SYNHdr(packettest.LinuxSYN()...), nil)
	for _, tc := range []struct {
		name  string
		pkt   []byte
		n     int
		idLen int
		want  Result
	}{
		{"fragment", frag, len(frag), 4, Fragment},
		{"atomic fragment", atomic, len(atomic), 4, Fragment},
		{"AH", ah, len(ah), 4, NotTCP},
		{"UDP", udp, len(udp), 4, NotTCP},
		{"IPv4", v4, len(v4), 4, BadHeader},
		{"truncated", syn[:70], 70, 4, Truncated},
		{"negative n", syn, -1, 4, Truncated},
		{"n > cap", syn[:10:10], 80, 4, Truncated},
		{"id length 3", syn, len(syn), 3, BadHeader},
	} {
		before := packettest.Clone(tc.pkt)
		n, res, stripped := AddHostIDOption6(packettest.PV(tc.pkt, tc.n), tc.pkt, 1, tc.idLen, 0)
		if res != tc.want || stripped || n != tc.n || !bytes.Equal(tc.pkt, before) {
			t.Errorf("%s: got %v stripped=%v n=%d, want %v, unchanged", tc.name, res, stripped, n, tc.want)
		}
		if res := LowerMSS6(packettest.PV(tc.pkt, len(tc.pkt)), tc.pkt, 8); tc.n == len(tc.pkt) && tc.idLen == 4 && res != tc.want {
			t.Errorf("%s: LowerMSS6 %v", tc.name, res)
		}
	}
	if _, _, ok := HostIDOption6(frag); ok {
		t.Error("HostIDOption6 on a fragment")
	}
	if _, _, ok := HostIDOption6(udp); ok {
		t.Error("HostIDOption6 on UDP")
	}
}

// TestAddHostIDOption6BadOptions pins which result wins for malformed TCP
// options (RFC 9293 §3.1), before or after MSS, with and without AH: the
// checks ParseTCP6 makes come before AH's NotTCP; it walks the whole list.
func TestAddHostIDOption6BadOptions(t *testing.T) {
	exp := func() *layers.TCP { // MSS, then kind 30 with 2 data bytes, then NOP NOP
		return packettest.SYNHdr(packettest.OMSS(1400), layers.TCPOption{OptionType: 30, OptionData: []byte{1, 2}}, packettest.ONOP(), packettest.ONOP())
	}
	expFirst := func() *layers.TCP { // kind 30 with 2 data bytes, then MSS
		return packettest.SYNHdr(layers.TCPOption{OptionType: 30, OptionData: []byte{1, 2}}, packettest.OMSS(1400))
	}
	// patched6 builds ls and applies edit to the TCP header's bytes.
	patched6 := func(edit func(tcp []byte), ls ...gopacket.SerializableLayer) []byte {
		pkt := packettest.Build6(t, packettest.IP6Hdr(), ls...)
		ip, res := ParseIPv6(pkt)
		if res != Unchanged {
			t.Fatal(res)
		}
		edit(pkt[ip.Off:])
		return pkt
	}
	ah := func() *packettest.AHHdr { return &packettest.AHHdr{Next: layers.IPProtocolTCP, ICV: 12} }
	for _, tc := range []struct {
		name string
		pkt  []byte
		want Result
	}{
		{"length 1 before MSS", patched6(func(b []byte) { b[21] = 1 }, expFirst()), BadHeader},
		{"length 1 after MSS", patched6(func(b []byte) { b[25] = 1 }, exp()), BadHeader},
		{"overrun after MSS", patched6(func(b []byte) { b[25] = 9 }, exp()), BadHeader},
		{"Hop-by-Hop, length 0 after MSS", patched6(func(b []byte) { b[25] = 0 }, packettest.HBH6(), exp()), BadHeader},
		{"AH, length 1 before MSS", patched6(func(b []byte) { b[21] = 1 }, ah(), expFirst()), BadHeader},
		{"AH, length 1 after MSS", patched6(func(b []byte) { b[25] = 1 }, ah(), exp()), BadHeader},
		{"AH, data offset 4", patched6(func(b []byte) { b[12] = 4 << 4 }, ah(), exp()), BadHeader},
		{"AH, data offset past packettest.Segment", patched6(func(b []byte) { b[12] = 15 << 4 }, ah(), exp()), Truncated},
		{"AH, UDP", packettest.Build6(t, packettest.IP6Hdr(), &packettest.AHHdr{Next: layers.IPProtocolUDP, ICV: 4}, &layers.UDP{SrcPort: 1, DstPort: 2}), NotTCP},
		{"AH, fragment", packettest.Build6(t, packettest.IP6Hdr(), &packettest.AHHdr{Next: layers.IPProtocolIPv6Fragment, ICV: 4}, &layers.IPv6Fragment{MoreFragments: true, Identification: 1}, exp()), Fragment},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := packettest.Clone(tc.pkt)
			n, res, stripped := AddHostIDOption6(packettest.PV(tc.pkt, len(tc.pkt)), tc.pkt, 1, 4, 0)
			if res != tc.want || stripped || n != len(before) || !bytes.Equal(tc.pkt, before) {
				t.Errorf("got %v stripped=%v n=%d, want %v, unchanged", res, stripped, n, tc.want)
			}
			if n, res := StripHostIDOption6(packettest.PV(tc.pkt, len(tc.pkt)), tc.pkt); res != tc.want || n != len(before) || !bytes.Equal(tc.pkt, before) {
				t.Errorf("strip: got %v n=%d, want %v, unchanged", res, n, tc.want)
			}
		})
	}
}

func BenchmarkAddHostIDOption6(b *testing.B) {
	var view packet.View // on the stack: a caller keeps its view there
	orig := packettest.Build6(b, packettest.IP6Hdr(), packettest.SYNHdr(packettest.LinuxSYN()...))
	buf := make([]byte, len(orig), len(orig)+Headroom)
	b.ReportAllocs()
	for b.Loop() {
		copy(buf[:len(orig)], orig)
		if _, res, _ := AddHostIDOption6(packettest.PVAt(&view, buf, len(orig)), buf, 0xa1b2c3d4, 4, 1500); res != Written {
			b.Fatal(res)
		}
	}
}

func BenchmarkAddHostIDOption6Data(b *testing.B) {
	var view packet.View                                                                                                                                                // on the stack: a caller keeps its view there
	orig := packettest.Build6(b, packettest.IP6Hdr(), packettest.DataHdr(packettest.ONOP(), packettest.ONOP(), packettest.OTS()), gopacket.Payload(make([]byte, 1420))) // 1500 after
	buf := make([]byte, len(orig), len(orig)+Headroom)
	b.ReportAllocs()
	b.SetBytes(int64(len(orig)))
	for b.Loop() {
		copy(buf[:len(orig)], orig)
		if _, res, _ := AddHostIDOption6(packettest.PVAt(&view, buf, len(orig)), buf, 0xa1b2c3d4, 4, 1500); res != Written {
			b.Fatal(res)
		}
	}
}

func BenchmarkAddHostIDOption(b *testing.B) {
	var view packet.View // on the stack: a caller keeps its view there
	orig := packettest.Build(b, packettest.IPHdr(), packettest.SYNHdr(packettest.LinuxSYN()...), nil)
	buf := make([]byte, len(orig), len(orig)+Headroom)
	b.ReportAllocs()
	for b.Loop() {
		copy(buf[:len(orig)], orig)
		if _, res, _ := AddHostIDOption(packettest.PVAt(&view, buf, len(orig)), buf, 0xa1b2c3d4, 4, 1500); res != Written {
			b.Fatal(res)
		}
	}
}

func BenchmarkAddHostIDOptionData(b *testing.B) {
	var view packet.View // on the stack: a caller keeps its view there
	orig := packettest.Build(b, packettest.IPHdr(), packettest.DataHdr(packettest.ONOP(), packettest.ONOP(), packettest.OTS()), make([]byte, 1400))
	buf := make([]byte, len(orig), len(orig)+Headroom)
	b.ReportAllocs()
	b.SetBytes(int64(len(orig)))
	for b.Loop() {
		copy(buf[:len(orig)], orig)
		if _, res, _ := AddHostIDOption(packettest.PVAt(&view, buf, len(orig)), buf, 0xa1b2c3d4, 4, 1500); res != Written {
			b.Fatal(res)
		}
	}
}

func BenchmarkHostIDOption(b *testing.B) {
	pkt := packettest.Build(b, packettest.IPHdr(), packettest.SYNHdr(append(packettest.LinuxSYN(), packettest.OHostID(1, 2, 3, 4))...), nil)
	b.ReportAllocs()
	for b.Loop() {
		if _, _, ok := HostIDOption(pkt); !ok {
			b.Fatal("no option")
		}
	}
}

// TestZeroAllocs asserts that no hot function allocates.
func TestZeroAllocs(t *testing.T) {
	var view packet.View // on the stack: a caller keeps its view there
	syn := packettest.Build(t, packettest.IPHdr(), packettest.SYNHdr(append(packettest.LinuxSYN(), packettest.OHostID(9, 9))...), nil)
	data := packettest.Build(t, packettest.IPHdr(), packettest.DataHdr(packettest.ONOP(), packettest.ONOP(), packettest.OTS()), make([]byte, 1400))
	buf := make([]byte, 0, 2000)
	for name, f := range map[string]func(){
		"AddHostIDOption": func() {
			buf = append(buf[:0], syn...)
			AddHostIDOption(packettest.PVAt(&view, buf, len(buf)), buf, 0x01020304, 4, 1500)
		},
		"AddHostIDOption data": func() {
			buf = append(buf[:0], data...)
			AddHostIDOption(packettest.PVAt(&view, buf, len(buf)), buf, 0x0102, 2, 0)
		},
		"AddHostIDOption no room": func() {
			buf = append(buf[:0], data...)
			AddHostIDOption(packettest.PVAt(&view, buf[:len(data):len(data)], len(data)), buf[:len(data):len(data)], 0x0102, 2, 0)
		},
		"StripHostIDOption": func() {
			buf = append(buf[:0], syn...)
			StripHostIDOption(packettest.PVAt(&view, buf, len(buf)), buf)
		},
		"HostIDOption":        func() { HostIDOption(syn) },
		"HostIDFromTCPHeader": func() { HostIDFromTCPHeader(syn[20:]) },
	} {
		if a := testing.AllocsPerRun(100, f); a != 0 {
			t.Errorf("%s: %v allocs/op", name, a)
		}
	}
}

// TestZeroAllocs6 asserts that no IPv6 hot function allocates.
func TestZeroAllocs6(t *testing.T) {
	var view packet.View // on the stack: a caller keeps its view there
	syn := packettest.Build6(t, packettest.IP6Hdr(), packettest.HBH6(), packettest.SYNHdr(append(packettest.LinuxSYN(), packettest.OHostID(9, 9))...))
	data := packettest.Build6(t, packettest.IP6Hdr(), packettest.DataHdr(packettest.ONOP(), packettest.ONOP(), packettest.OTS()), gopacket.Payload(make([]byte, 1400)))
	buf := make([]byte, 0, 2000)
	for name, f := range map[string]func(){
		"AddHostIDOption6": func() {
			buf = append(buf[:0], syn...)
			AddHostIDOption6(packettest.PVAt(&view, buf, len(buf)), buf, 0x01020304, 4, 1500)
		},
		"AddHostIDOption6 no room": func() {
			buf = append(buf[:0], data...)
			AddHostIDOption6(packettest.PVAt(&view, buf[:len(data):len(data)], len(data)), buf[:len(data):len(data)], 0x0102, 2, 0)
		},
		"StripHostIDOption6": func() {
			buf = append(buf[:0], syn...)
			StripHostIDOption6(packettest.PVAt(&view, buf, len(buf)), buf)
		},
		"HostIDOption6": func() { HostIDOption6(syn) },
	} {
		if a := testing.AllocsPerRun(100, f); a != 0 {
			t.Errorf("%s: %v allocs/op", name, a)
		}
	}
}
