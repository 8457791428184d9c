package ipoption

import (
	"bytes"
	"encoding/binary"
	"testing"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
	"github.com/natreveal/natreveal/internal/packettest"
	"github.com/natreveal/natreveal/packet"
	. "github.com/natreveal/natreveal/packet"
)

// ipOthers lists the options gopacket found up to EOL that are neither NOP
// nor of an RFC 4727 experimental type (t is one: natreveal strips them all).
func ipOthers(ip *layers.IPv4, t byte) []layers.IPv4Option {
	var out []layers.IPv4Option
	for _, o := range ip.Options {
		if o.OptionType == 0 {
			break
		}
		if o.OptionType != 1 && !IPOptionTypeValid(o.OptionType) {
			out = append(out, o)
		}
	}
	return out
}

// ipOfType lists the options of an RFC 4727 experimental type (t is one)
// up to EOL.
func ipOfType(ip *layers.IPv4, t byte) []layers.IPv4Option {
	var out []layers.IPv4Option
	for _, o := range ip.Options {
		if o.OptionType == 0 {
			break
		}
		if IPOptionTypeValid(o.OptionType) {
			out = append(out, o)
		}
	}
	return out
}

// wantIPHostID is the option data for id in idLen bytes, big endian.
func wantIPHostID(id uint32, idLen int) []byte {
	if idLen == 2 {
		return binary.BigEndian.AppendUint16(nil, uint16(id))
	}
	return binary.BigEndian.AppendUint32(nil, id)
}

// checkIPRewritten compares before and after with gopacket: same IPv4
// fields but for IHL, length and checksum; the same other options in the
// same order; the upper layer byte for byte (so its checksum, which does
// not cover IP options, is untouched and still verifies); the options of
// type t given by want (nil: none), followed only by zero padding.
func checkIPRewritten(tb testing.TB, before, after []byte, t byte, want []byte) *layers.IPv4 {
	tb.Helper()
	b, _ := packettest.DecodeIP(tb, before)
	a, _ := packettest.DecodeIP(tb, after)
	bo, ao := ipOthers(b, t), ipOthers(a, t)
	if len(bo) != len(ao) {
		tb.Fatalf("options changed:\n before %v\n after  %v", b.Options, a.Options)
	}
	for i := range bo {
		if bo[i].OptionType != ao[i].OptionType || !bytes.Equal(bo[i].OptionData, ao[i].OptionData) {
			tb.Errorf("option %d changed: %v -> %v", i, bo[i], ao[i])
		}
	}
	ours := ipOfType(a, t)
	switch {
	case want == nil && len(ours) != 0:
		tb.Errorf("options of type %d left: %v", t, ours)
	case want != nil && (len(ours) != 1 || ours[0].OptionType != t || !bytes.Equal(ours[0].OptionData, want) || int(ours[0].OptionLength) != 2+len(want)):
		tb.Errorf("options of type %d: %v, want exactly one with data %x", t, ours, want)
	}
	// Padding after the last option is EOL and zeros (RFC 791 §3.1).
	opts := after[20 : a.IHL*4]
	end := 0
	for i := 0; i < len(opts); {
		l := OptLen(opts, i)
		if l <= 0 {
			break
		}
		i += l
		end = i
	}
	if !bytes.Equal(opts[end:], make([]byte, len(opts)-end)) {
		tb.Errorf("padding not zero: %x", opts)
	}
	if len(opts)-end >= 4 {
		tb.Errorf("%d padding bytes: a whole word too many", len(opts)-end)
	}
	if !bytes.Equal(b.Payload, a.Payload) {
		tb.Errorf("upper layer changed (%d -> %d bytes)", len(b.Payload), len(a.Payload))
	}
	if b.Version != a.Version || b.TOS != a.TOS || b.Id != a.Id || b.Flags != a.Flags || b.FragOffset != a.FragOffset ||
		b.TTL != a.TTL || b.Protocol != a.Protocol || !b.SrcIP.Equal(a.SrcIP) || !b.DstIP.Equal(a.DstIP) {
		tb.Errorf("IP header fields changed")
	}
	if int(a.IHL)*4+len(a.Payload) != len(after) {
		tb.Errorf("IHL %d inconsistent with length %d", a.IHL, len(after))
	}
	return a
}

var ipOptionTypes = []byte{IPOptionExp, IPOptionExpClass2, IPOptionExpCopied, IPOptionExpCopiedClass2}

func TestIPOptionTypeValid(t *testing.T) {
	for v := 0; v < 256; v++ {
		want := v == 30 || v == 94 || v == 158 || v == 222
		if IPOptionTypeValid(byte(v)) != want {
			t.Errorf("%d: %v", v, !want)
		}
		// RFC 791 §3.1 fields: copied | class | number; number 30, class 0 or 2.
		if want && (v&0x1f != 30 || (v>>5)&3 != 0 && (v>>5)&3 != 2) {
			t.Errorf("%d: number %d class %d", v, v&0x1f, (v>>5)&3)
		}
	}
	if IPOptionExp != 30 || IPOptionExpCopied&0x80 == 0 || IPOptionExpClass2&0x80 != 0 {
		t.Error("constants")
	}
}

func TestAddIPOption(t *testing.T) {
	const T = IPOptionExp
	payload := bytes.Repeat([]byte("natreveal!"), 50)
	tests := []struct {
		name     string
		kind     int
		opts     []layers.IPv4Option
		payload  []byte
		typ      byte
		idLen    int
		optBytes int // option bytes after the rewrite
		stripped bool
	}{
		{"TCP SYN, no options, 2-byte id", packettest.KTCP, nil, nil, T, 2, 4, false},
		{"TCP SYN, no options, 4-byte id", packettest.KTCP, nil, nil, T, 4, 8, false},
		{"UDP, no options, 2-byte id", packettest.KUDP, nil, payload, T, 2, 4, false},
		{"UDP, no options, 4-byte id", packettest.KUDP, nil, payload[:101], T, 4, 8, false},
		{"UDP, empty payload", packettest.KUDP, nil, nil, T, 4, 8, false},
		{"ICMP echo", packettest.KICMP, nil, payload[:33], T, 4, 8, false},
		{"copied class 0", packettest.KTCP, nil, nil, IPOptionExpCopied, 4, 8, false},
		{"class 2", packettest.KUDP, nil, payload, IPOptionExpClass2, 2, 4, false},
		{"copied class 2", packettest.KUDP, nil, payload, IPOptionExpCopiedClass2, 4, 8, false},
		{"record route", packettest.KTCP, packettest.IPOpts(packettest.IORR(2)), nil, T, 4, 20, false},
		{"record route, NOP", packettest.KUDP, packettest.IPOpts(packettest.IORR(2), packettest.IONOP()), payload, T, 2, 16, false},
		{"NOPs and EOL", packettest.KTCP, packettest.IPOpts(packettest.IONOP(), packettest.IONOP(), packettest.IONOP(), packettest.IOEOL()), nil, T, 4, 8, false},
		{"timestamp, router alert", packettest.KUDP, packettest.IPOpts(packettest.IOTS(2), packettest.IORA()), payload, T, 4, 24, false},
		{"other packettest.Experimental types stripped (RFC 4727 §2.1)", packettest.KTCP, packettest.IPOpts(packettest.IOExp(94, 1, 2), packettest.IOExp(158, 3, 4, 5, 6), packettest.IOExp(222, 7, 8)), nil, T, 4, 8, true},
		{"forged 2-byte replaced", packettest.KTCP, packettest.IPOpts(packettest.IORA(), packettest.IOExp(T, 0xbe, 0xef)), nil, T, 4, 12, true},
		{"forged 4-byte replaced, UDP", packettest.KUDP, packettest.IPOpts(packettest.IOExp(T, 1, 2, 3, 4), packettest.IONOP(), packettest.IONOP()), payload, T, 2, 4, true},
		{"forged, NOP aligned, after RR", packettest.KUDP, packettest.IPOpts(packettest.IORR(1), packettest.IONOP(), packettest.IOExp(T, 9, 9)), payload, T, 2, 12, true},
		{"forged first, RR after", packettest.KTCP, packettest.IPOpts(packettest.IOExp(T, 1, 2, 3, 4), packettest.IORR(1), packettest.IOEOL()), nil, T, 4, 16, true},
		{"two forged", packettest.KTCP, packettest.IPOpts(packettest.IOExp(T, 1, 2), packettest.IORA(), packettest.IOExp(T, 1, 2, 3, 4)), nil, T, 4, 12, true},
		{"forged, empty (length 2)", packettest.KUDP, packettest.IPOpts(packettest.IOExp(T), packettest.IONOP(), packettest.IONOP()), payload, T, 4, 8, true},
		{"forged, long (length 10)", packettest.KUDP, packettest.IPOpts(packettest.IOExp(T, 1, 2, 3, 4, 5, 6, 7, 8), packettest.IONOP(), packettest.IONOP()), payload, T, 2, 4, true},
		{"forged copied type", packettest.KTCP, packettest.IPOpts(packettest.IOExp(IPOptionExpCopied, 1, 2)), nil, IPOptionExpCopied, 4, 8, true},
		{"EOL in the middle, forged option after it", packettest.KTCP, packettest.IPOpts(packettest.IORA(), packettest.IOEOL(), packettest.IOExp(T, 1, 2)), nil, T, 4, 12, false},
		{"exactly 40 bytes after insertion, 2-byte", packettest.KTCP, packettest.IPOpts(packettest.IOTS(8)), nil, T, 2, 40, false},
		{"exactly 40 bytes after insertion, 4-byte", packettest.KUDP, packettest.IPOpts(packettest.IORR(7), packettest.IONOP()), payload, T, 4, 40, false},
		{"40 bytes full, forged inside", packettest.KTCP, packettest.IPOpts(packettest.IOTS(7), packettest.IOExp(T, 1, 2, 3, 4), packettest.IONOP(), packettest.IONOP()), nil, T, 4, 40, true},
		{"40 bytes full, forged replaced by 2-byte", packettest.KUDP, packettest.IPOpts(packettest.IOTS(8), packettest.IOExp(T, 1, 2)), payload, T, 2, 40, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			const id = 0xa1b2c3d4
			pkt := packettest.MkIP(t, tc.kind, tc.opts, tc.payload)
			before := packettest.Clone(pkt)
			n, res, stripped := AddIPOption(packettest.PV(pkt, len(pkt)), pkt, tc.typ, id, tc.idLen, 1500)
			if res != Written || stripped != tc.stripped {
				t.Fatalf("got %v stripped=%v, want written stripped=%v", res, stripped, tc.stripped)
			}
			after := pkt[:n]
			a := checkIPRewritten(t, before, after, tc.typ, wantIPHostID(id, tc.idLen))
			if got := int(a.IHL)*4 - 20; got != tc.optBytes || n-len(before) != tc.optBytes-(int(before[0]&0x0f)*4-20) {
				t.Errorf("option bytes %d, want %d; length %d -> %d", got, tc.optBytes, len(before), n)
			}
			gotID, gotLen, ok := IPOptionHostID(after, tc.typ)
			if !ok || gotLen != tc.idLen || gotID != id&(1<<(8*tc.idLen)-1) {
				t.Errorf("IPOptionHostID = %#x, %d, %v", gotID, gotLen, ok)
			}
			// Idempotent: a second pass (a retransmission queued again) changes nothing.
			again := packettest.Clone(after)
			if n2, res, _ := AddIPOption(packettest.PV(again, len(again)), again, tc.typ, id, tc.idLen, 1500); res != Unchanged || n2 != n || !bytes.Equal(again, after) {
				t.Errorf("second pass: %v", res)
			}
			// Stripping gives back the original options without ours.
			if n3, res := StripIPOption(packettest.PV(again, len(again)), again, tc.typ); res != Written {
				t.Errorf("strip: %v", res)
			} else {
				checkIPRewritten(t, before, again[:n3], tc.typ, nil)
			}
		})
	}
}

func TestAddIPOptionNoSpace(t *testing.T) {
	const T = IPOptionExp
	t.Run("40 bytes full, nothing forged: unchanged", func(t *testing.T) {
		for _, opts := range [][]layers.IPv4Option{
			{packettest.IOTS(9)},
			{packettest.IORR(9), packettest.IONOP()},
			{packettest.IORR(8), packettest.IORA(), packettest.IONOP()},
			{packettest.IORR(8), packettest.IONOP(), packettest.IORA()},
		} {
			pkt := packettest.MkIP(t, packettest.KUDP, opts, []byte("x"))
			before := packettest.Clone(pkt)
			for _, idLen := range []int{2, 4} {
				n, res, stripped := AddIPOption(packettest.PV(pkt, len(pkt)), pkt, T, 42, idLen, 0)
				if res != NoOptionSpace || stripped || n != len(before) || !bytes.Equal(pkt, before) {
					t.Fatalf("%v idLen %d: %v stripped=%v n=%d, want no-option-space and no change", opts, idLen, res, stripped, n)
				}
			}
		}
	})
	t.Run("trailing NOPs are padding: room after all", func(t *testing.T) {
		orig := packettest.MkIP(t, packettest.KUDP, packettest.IPOpts(packettest.IOTS(8), packettest.IONOP(), packettest.IONOP(), packettest.IONOP(), packettest.IOEOL()), []byte("x"))
		pkt := packettest.Clone(orig)
		n, res, _ := AddIPOption(packettest.PV(pkt, len(pkt)), pkt, T, 42, 2, 0)
		if res != Written || n != len(orig) {
			t.Fatalf("%v n=%d", res, n)
		}
		checkIPRewritten(t, orig, pkt[:n], T, wantIPHostID(42, 2))
	})
	t.Run("40 bytes full, forged option removed anyway", func(t *testing.T) {
		// Timestamp (36) + forged (4) = 40; ours (6) does not fit after 36.
		orig := packettest.MkIP(t, packettest.KTCP, packettest.IPOpts(packettest.IOTS(8), packettest.IOExp(T, 0xde, 0xad)), nil)
		pkt := packettest.Clone(orig)
		n, res, stripped := AddIPOption(packettest.PV(pkt, len(pkt)), pkt, T, 42, 4, 0)
		if res != NoOptionSpace || !stripped || n != len(orig)-4 {
			t.Fatalf("%v stripped=%v n=%d, want no-option-space, stripped, 4 bytes shorter", res, stripped, n)
		}
		checkIPRewritten(t, orig, pkt[:n], T, nil)
		// A 2-byte id still fits exactly in the same packet.
		pkt = packettest.Clone(orig)
		if n, res, _ = AddIPOption(packettest.PV(pkt, len(pkt)), pkt, T, 42, 2, 0); res != Written || n != len(orig) {
			t.Fatalf("2-byte id: %v", res)
		}
		checkIPRewritten(t, orig, pkt[:n], T, wantIPHostID(42, 2))
	})
}

func TestAddIPOptionLimits(t *testing.T) {
	const T = IPOptionExp
	syn := packettest.MkIP(t, packettest.KTCP, nil, nil) // 60 bytes
	t.Run("MTU", func(t *testing.T) {
		for _, tc := range []struct {
			mtu  int
			want Result
		}{{59, OverMTU}, {60, OverMTU}, {67, OverMTU}, {68, Written}, {0, Written}, {-1, Written}} {
			pkt := packettest.Clone(syn)
			n, res, stripped := AddIPOption(packettest.PV(pkt, len(pkt)), pkt, T, 7, 4, tc.mtu)
			if res != tc.want || stripped {
				t.Errorf("mtu %d: %v stripped=%v, want %v", tc.mtu, res, stripped, tc.want)
			}
			if res != Written && (n != len(syn) || !bytes.Equal(pkt, syn)) {
				t.Errorf("mtu %d: packet changed", tc.mtu)
			}
		}
		full := packettest.MkIP(t, packettest.KUDP, nil, make([]byte, 1472)) // 1500 bytes
		pkt := packettest.Clone(full)
		if _, res, _ := AddIPOption(packettest.PV(pkt, len(pkt)), pkt, T, 7, 2, 1500); res != OverMTU || !bytes.Equal(pkt, full) {
			t.Errorf("1500-byte datagram at mtu 1500: %v", res)
		}
		big := packettest.MkIP(t, packettest.KUDP, nil, make([]byte, 0xffff-28))
		pkt = packettest.Clone(big)
		if _, res, _ := AddIPOption(packettest.PV(pkt, len(pkt)), pkt, T, 7, 2, 0); res != OverMTU || !bytes.Equal(pkt, big) {
			t.Errorf("65535-byte datagram, no mtu: %v", res)
		}
	})
	t.Run("MTU with forged option: still stripped", func(t *testing.T) {
		// A forged 2-byte option (4) replaced by ours (6, padded to 8) grows the header.
		orig := packettest.MkIP(t, packettest.KUDP, packettest.IPOpts(packettest.IOExp(T, 1, 2)), []byte("hello"))
		pkt := packettest.Clone(orig)
		n, res, stripped := AddIPOption(packettest.PV(pkt, len(pkt)), pkt, T, 7, 4, len(orig))
		if res != OverMTU || !stripped || n != len(orig)-4 {
			t.Fatalf("%v stripped=%v n=%d", res, stripped, n)
		}
		checkIPRewritten(t, orig, pkt[:n], T, nil)
	})
	t.Run("MTU, forged option of length 2: stripped, same length", func(t *testing.T) {
		// RA (4) + an option of another type (6; 25 is not experimental) +
		// forged (2) = 12; without it 10, still 12 with padding.
		orig := packettest.MkIP(t, packettest.KTCP, packettest.IPOpts(packettest.IORA(), packettest.IOExp(25, 1, 2, 3, 4), packettest.IOExp(T)), nil)
		pkt := packettest.Clone(orig)
		n, res, stripped := AddIPOption(packettest.PV(pkt, len(pkt)), pkt, T, 7, 2, len(orig))
		if res != OverMTU || !stripped || n != len(orig) {
			t.Fatalf("%v stripped=%v n=%d", res, stripped, n)
		}
		checkIPRewritten(t, orig, pkt[:n], T, nil)
	})
	t.Run("buffer capacity", func(t *testing.T) {
		pkt := packettest.Clone(syn)[: len(syn) : len(syn)+7]
		if n, res, stripped := AddIPOption(packettest.PV(pkt, len(pkt)), pkt, T, 7, 4, 0); res != NoBufferRoom || stripped || n != len(syn) || !bytes.Equal(pkt, syn) {
			t.Errorf("cap+7: %v stripped=%v", res, stripped)
		}
		pkt = packettest.Clone(syn)[: len(syn) : len(syn)+8]
		if n, res, _ := AddIPOption(packettest.PV(pkt, len(pkt)), pkt, T, 7, 4, 0); res != Written {
			t.Errorf("cap+8: %v", res)
		} else {
			checkIPRewritten(t, syn, pkt[:n], T, wantIPHostID(7, 4))
		}
		forged := packettest.MkIP(t, packettest.KUDP, packettest.IPOpts(packettest.IOExp(T, 1, 2)), []byte("hello"))
		pkt = packettest.Clone(forged)[:len(forged):len(forged)]
		n, res, stripped := AddIPOption(packettest.PV(pkt, len(pkt)), pkt, T, 7, 4, 0)
		if res != NoBufferRoom || !stripped {
			t.Fatalf("forged, no room: %v stripped=%v", res, stripped)
		}
		checkIPRewritten(t, forged, pkt[:n], T, nil)
		// Replacing a forged option by one of the same size needs no room.
		pkt = packettest.Clone(forged)[:len(forged):len(forged)]
		if n, res, _ := AddIPOption(packettest.PV(pkt, len(pkt)), pkt, T, 7, 2, 0); res != Written {
			t.Errorf("same size, no room: %v", res)
		} else {
			checkIPRewritten(t, forged, pkt[:n], T, wantIPHostID(7, 2))
		}
	})
	t.Run("n within capacity but beyond len", func(t *testing.T) {
		pkt := packettest.Clone(syn)
		short := pkt[:10]
		n, res, _ := AddIPOption(packettest.PV(short, len(syn)), short, T, 7, 4, 0)
		if res != Written {
			t.Fatalf("%v", res)
		}
		checkIPRewritten(t, syn, short[:n], T, wantIPHostID(7, 4))
	})
	t.Run("trailing bytes past Total Length dropped", func(t *testing.T) {
		pkt := append(packettest.Clone(syn), 0xee, 0xee, 0xee, 0xee)
		n, res, _ := AddIPOption(packettest.PV(pkt, len(pkt)), pkt, T, 7, 4, 0)
		if res != Written || n != len(syn)+8 {
			t.Fatalf("%v n=%d", res, n)
		}
		checkIPRewritten(t, syn, pkt[:n], T, wantIPHostID(7, 4))
	})
	t.Run("wrong checksum stays wrong by the same amount", func(t *testing.T) {
		for _, opts := range [][]layers.IPv4Option{nil, {packettest.IORA(), packettest.IOExp(T, 1, 2, 3, 4)}} {
			pkt := packettest.MkIP(t, packettest.KUDP, opts, []byte("x"))
			pkt[11] += 3
			hl := int(pkt[0]&0x0f) * 4
			errBefore := packet.Fold(packet.Sum(pkt[:hl], 0))
			n, res, _ := AddIPOption(packettest.PV(pkt, len(pkt)), pkt, T, 0x0102, 2, 0)
			if res != Written {
				t.Fatalf("%v", res)
			}
			hl = int(pkt[0]&0x0f) * 4
			if errAfter := packet.Fold(packet.Sum(pkt[:hl], 0)); errAfter != errBefore || IPv4ChecksumOK(pkt[:n]) {
				t.Errorf("receiver sum %#04x -> %#04x", errBefore, errAfter)
			}
		}
	})
}

func TestAddIPOptionRejects(t *testing.T) {
	const T = IPOptionExp
	syn := packettest.MkIP(t, packettest.KTCP, packettest.IPOpts(packettest.IORA()), nil)
	mod := func(f func(b []byte)) []byte { b := packettest.Clone(syn); f(b); packettest.FixChecksums(b); return b }
	frag := func(flags layers.IPv4Flag, off uint16, opts ...layers.IPv4Option) []byte {
		ip := packettest.IPHdr()
		ip.Flags, ip.FragOffset, ip.Options, ip.Protocol = flags, off, opts, layers.IPProtocolUDP
		sb := gopacket.NewSerializeBuffer()
		if err := gopacket.SerializeLayers(sb, gopacket.SerializeOptions{FixLengths: true, ComputeChecksums: true}, ip, gopacket.Payload(make([]byte, 64))); err != nil {
			t.Fatal(err)
		}
		return packettest.Clone(sb.Bytes())
	}
	// RA (4 bytes), then a kind 7 option whose length byte is edited.
	rr := func(l byte) []byte {
		return packettest.PatchedIP(t, packettest.IPOpts(packettest.IORA(), packettest.IORR(1)), func(o []byte) { o[5] = l })
	}
	lenAtEnd := packettest.PatchedIP(t, packettest.IPOpts(packettest.IORA(), packettest.IONOP(), packettest.IONOP(), packettest.IONOP(), packettest.IONOP()), func(o []byte) { o[7] = 7 })
	tests := []struct {
		name  string
		pkt   []byte
		n     int
		typ   byte
		idLen int
		want  Result
	}{
		{"MF set", frag(layers.IPv4MoreFragments, 0), -2, T, 4, Fragment},
		{"offset set", frag(0, 8), -2, T, 4, Fragment},
		{"first fragment with forged option", frag(layers.IPv4MoreFragments, 0, packettest.IOExp(T, 1, 2)), -2, T, 4, Fragment},
		{"IHL 4", mod(func(b []byte) { b[0] = 0x44 }), -2, T, 4, BadHeader},
		{"version 6", mod(func(b []byte) { b[0] = 0x66 }), -2, T, 4, BadHeader},
		{"total length < IHL", mod(func(b []byte) { binary.BigEndian.PutUint16(b[2:], 23) }), -2, T, 4, BadHeader},
		{"total length > packet", mod(func(b []byte) { binary.BigEndian.PutUint16(b[2:], 200) }), -2, T, 4, Truncated},
		{"option length 0", rr(0), -2, T, 4, BadHeader},
		{"option length 1", rr(1), -2, T, 4, BadHeader},
		{"option overruns the header", rr(9), -2, T, 4, BadHeader},
		{"length byte missing at the end", lenAtEnd, -2, T, 4, BadHeader},
		{"truncated packet", syn[:50], 50, T, 4, Truncated},
		{"truncated IP header", syn[:19], 19, T, 4, Truncated},
		{"empty", nil, 0, T, 4, Truncated},
		{"negative n", syn, -1, T, 4, Truncated},
		{"n > cap", syn[:10:10], 64, T, 4, Truncated},
		{"id length 3", syn, -2, T, 3, BadHeader},
		{"id length 0", syn, -2, T, 0, BadHeader},
		{"type 31", syn, -2, 31, 4, BadHeader},
		{"type 148 (router alert)", syn, -2, 148, 4, BadHeader},
		{"type 0 (EOL)", syn, -2, 0, 4, BadHeader},
		{"type 1 (NOP)", syn, -2, 1, 4, BadHeader},
		{"garbage", bytes.Repeat([]byte{0x4f, 0xff}, 40), -2, T, 4, Truncated},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if tc.n == -2 {
				tc.n = len(tc.pkt)
			}
			before := packettest.Clone(tc.pkt)
			n, res, stripped := AddIPOption(packettest.PV(tc.pkt, tc.n), tc.pkt, tc.typ, 1, tc.idLen, 0)
			if res != tc.want || stripped || n != tc.n || !bytes.Equal(tc.pkt, before) {
				t.Errorf("got %v stripped=%v n=%d, want %v, unchanged", res, stripped, n, tc.want)
			}
			if tc.idLen == 4 {
				if _, res := StripIPOption(packettest.PV(tc.pkt, tc.n), tc.pkt, tc.typ); res != tc.want || !bytes.Equal(tc.pkt, before) {
					t.Errorf("strip: %v", res)
				}
			}
		})
	}
	// The decoder reads a forged option in a fragment, so callers can drop it.
	if id, l, ok := IPOptionHostID(tests[2].pkt, T); !ok || id != 0x0102 || l != 2 {
		t.Errorf("forged option in fragment: %#x %d %v", id, l, ok)
	}
}

func TestStripIPOption(t *testing.T) {
	const T = IPOptionExp
	t.Run("none", func(t *testing.T) {
		for _, opts := range [][]layers.IPv4Option{nil, {packettest.IORA()}, {packettest.IORA(), packettest.IOEOL(), packettest.IOExp(T, 1, 2)}} {
			pkt := packettest.MkIP(t, packettest.KUDP, opts, []byte("x"))
			before := packettest.Clone(pkt)
			if n, res := StripIPOption(packettest.PV(pkt, len(pkt)), pkt, T); res != Unchanged || n != len(before) || !bytes.Equal(pkt, before) {
				t.Errorf("%v: %v", opts, res)
			}
		}
	})
	for _, tc := range []struct {
		name     string
		kind     int
		opts     []layers.IPv4Option
		typ      byte
		optBytes int
	}{
		{"only option", packettest.KTCP, packettest.IPOpts(packettest.IOExp(T, 1, 2)), T, 0},
		{"only option, 4-byte", packettest.KUDP, packettest.IPOpts(packettest.IOExp(T, 1, 2, 3, 4), packettest.IONOP(), packettest.IONOP()), T, 0},
		{"after RR, NOP aligned", packettest.KUDP, packettest.IPOpts(packettest.IORR(2), packettest.IONOP(), packettest.IOExp(T, 1, 2)), T, 12},
		{"before timestamp, NOPs aligning it kept", packettest.KTCP, packettest.IPOpts(packettest.IOExp(T, 1, 2, 3, 4), packettest.IONOP(), packettest.IONOP(), packettest.IOTS(2)), T, 16},
		{"copied class 2, among others: every packettest.Experimental type goes", packettest.KICMP, packettest.IPOpts(packettest.IOExp(222, 1, 2), packettest.IOExp(30, 1, 2), packettest.IOExp(222, 3, 4)), 222, 0},
		{"the other packettest.Experimental types (RFC 4727 §2.1)", packettest.KUDP, packettest.IPOpts(packettest.IOExp(94, 1, 2), packettest.IOExp(158, 1, 2), packettest.IOExp(222, 1, 2)), T, 0},
		{"40 bytes", packettest.KUDP, packettest.IPOpts(packettest.IOTS(7), packettest.IOExp(T, 1, 2, 3, 4), packettest.IONOP(), packettest.IONOP()), T, 32},
	} {
		t.Run(tc.name, func(t *testing.T) {
			pkt := packettest.MkIP(t, tc.kind, tc.opts, []byte("payload"))
			before := packettest.Clone(pkt)
			n, res := StripIPOption(packettest.PV(pkt, len(pkt)), pkt, tc.typ)
			if res != Written {
				t.Fatalf("%v", res)
			}
			a := checkIPRewritten(t, before, pkt[:n], tc.typ, nil)
			if got := int(a.IHL)*4 - 20; got != tc.optBytes {
				t.Errorf("option bytes %d, want %d", got, tc.optBytes)
			}
		})
	}
}

func TestIPOptionHostID(t *testing.T) {
	const T = IPOptionExp
	pkt := packettest.MkIP(t, packettest.KUDP, packettest.IPOpts(packettest.IORA(), packettest.IOExp(T, 0x12, 0x34)), []byte("x"))
	if id, l, ok := IPOptionHostID(pkt, T); !ok || l != 2 || id != 0x1234 {
		t.Errorf("got %#x %d %v", id, l, ok)
	}
	// Only the header is needed.
	if id, l, ok := IPOptionHostID(pkt[:28], T); !ok || l != 2 || id != 0x1234 {
		t.Errorf("header only: %#x %d %v", id, l, ok)
	}
	if id, l, ok := HostIDFromIPOptions(pkt[20:28], T); !ok || l != 2 || id != 0x1234 {
		t.Errorf("options only: %#x %d %v", id, l, ok)
	}
	// The first one counts.
	first := packettest.MkIP(t, packettest.KTCP, packettest.IPOpts(packettest.IOExp(158, 9, 9, 9, 9), packettest.IOExp(158, 1, 2, 3, 4)), nil)
	if id, l, ok := IPOptionHostID(first, 158); !ok || l != 4 || id != 0x09090909 {
		t.Errorf("first: %#x %d %v", id, l, ok)
	}
	for _, tc := range []struct {
		name string
		pkt  []byte
	}{
		{"no options", packettest.MkIP(t, packettest.KTCP, nil, nil)},
		{"other type", packettest.MkIP(t, packettest.KTCP, packettest.IPOpts(packettest.IOExp(94, 1, 2)), nil)},
		{"after EOL", packettest.MkIP(t, packettest.KTCP, packettest.IPOpts(packettest.IOEOL(), packettest.IONOP(), packettest.IONOP(), packettest.IONOP(), packettest.IOExp(T, 1, 2)), nil)},
		{"length 2", packettest.MkIP(t, packettest.KTCP, packettest.IPOpts(packettest.IOExp(T)), nil)},
		{"length 5", packettest.MkIP(t, packettest.KTCP, packettest.IPOpts(packettest.IOExp(T, 1, 2, 3)), nil)},
		{"length 10", packettest.MkIP(t, packettest.KTCP, packettest.IPOpts(packettest.IOExp(T, 1, 2, 3, 4, 5, 6, 7, 8)), nil)},
		{"malformed before", packettest.PatchedIP(t, packettest.IPOpts(packettest.IORA(), packettest.IOExp(T, 1, 2)), func(o []byte) { o[1] = 1 })},
		{"IHL past the data", pkt[:23]},
		{"IHL 4", func() []byte { b := packettest.Clone(pkt); b[0] = 0x44; return b }()},
		{"IPv6", func() []byte { b := packettest.Clone(pkt); b[0] = 0x66; return b }()},
		{"short", pkt[:19]},
		{"nil", nil},
	} {
		if id, l, ok := IPOptionHostID(tc.pkt, T); ok {
			t.Errorf("%s: got %#x %d", tc.name, id, l)
		}
	}
	if _, _, ok := IPOptionHostID(pkt, 31); ok {
		t.Error("invalid type accepted")
	}
	if _, _, ok := HostIDFromIPOptions([]byte{30}, T); ok {
		t.Error("lone type byte accepted")
	}
}

func BenchmarkAddIPOption(b *testing.B) {
	var view packet.View // on the stack: a caller keeps its view there
	orig := packettest.MkIP(b, packettest.KTCP, nil, nil)
	buf := make([]byte, len(orig), len(orig)+Headroom)
	b.ReportAllocs()
	for b.Loop() {
		copy(buf[:len(orig)], orig)
		if _, res, _ := AddIPOption(packettest.PVAt(&view, buf, len(orig)), buf, IPOptionExp, 0xa1b2c3d4, 4, 1500); res != Written {
			b.Fatal(res)
		}
	}
}

func BenchmarkAddIPOptionUDP(b *testing.B) {
	var view packet.View // on the stack: a caller keeps its view there
	orig := packettest.MkIP(b, packettest.KUDP, packettest.IPOpts(packettest.IORA(), packettest.IOExp(IPOptionExp, 1, 2)), make([]byte, 1400))
	buf := make([]byte, len(orig), len(orig)+Headroom)
	b.ReportAllocs()
	b.SetBytes(int64(len(orig)))
	for b.Loop() {
		copy(buf[:len(orig)], orig)
		if _, res, _ := AddIPOption(packettest.PVAt(&view, buf, len(orig)), buf, IPOptionExp, 0xa1b2c3d4, 4, 1500); res != Written {
			b.Fatal(res)
		}
	}
}

func BenchmarkIPOptionHostID(b *testing.B) {
	pkt := packettest.MkIP(b, packettest.KTCP, packettest.IPOpts(packettest.IORA(), packettest.IOExp(IPOptionExp, 1, 2, 3, 4)), nil)
	b.ReportAllocs()
	for b.Loop() {
		if _, _, ok := IPOptionHostID(pkt, IPOptionExp); !ok {
			b.Fatal("no option")
		}
	}
}

// TestZeroAllocs asserts that the new hot functions never allocate.
func TestZeroAllocs(t *testing.T) {
	var view packet.View // on the stack: a caller keeps its view there
	const T = IPOptionExp
	syn := packettest.MkIP(t, packettest.KTCP, nil, nil)
	forged := packettest.MkIP(t, packettest.KUDP, packettest.IPOpts(packettest.IORA(), packettest.IOExp(T, 1, 2)), make([]byte, 1400))
	buf := make([]byte, 0, 2000)
	for name, f := range map[string]func(){
		"AddIPOption": func() {
			buf = append(buf[:0], syn...)
			AddIPOption(packettest.PVAt(&view, buf, len(buf)), buf, T, 0x01020304, 4, 1500)
		},
		"AddIPOption forged": func() {
			buf = append(buf[:0], forged...)
			AddIPOption(packettest.PVAt(&view, buf, len(buf)), buf, T, 0x01020304, 4, 0)
		},
		"AddIPOption no room": func() {
			buf = append(buf[:0], forged...)
			AddIPOption(packettest.PVAt(&view, buf[:len(forged):len(forged)], len(forged)), buf[:len(forged):len(forged)], T, 0x01020304, 4, 0)
		},
		"StripIPOption": func() {
			buf = append(buf[:0], forged...)
			StripIPOption(packettest.PVAt(&view, buf, len(buf)), buf, T)
		},
		"IPOptionHostID":      func() { IPOptionHostID(forged, T) },
		"HostIDFromIPOptions": func() { HostIDFromIPOptions(forged[20:28], T) },
		"IPOptionTypeValid":   func() { IPOptionTypeValid(T) },
	} {
		if a := testing.AllocsPerRun(100, f); a != 0 {
			t.Errorf("%s: %v allocs/op", name, a)
		}
	}
}
