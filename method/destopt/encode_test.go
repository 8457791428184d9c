package destopt

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"testing"

	"github.com/natreveal/natreveal/internal/packettest"
	. "github.com/natreveal/natreveal/packet"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"

	"github.com/natreveal/natreveal/packet"
)

// wantDestOpt is the option data of our HOST_ID Destination Option.
func wantDestOpt(id uint32, idLen int) []byte {
	if idLen == 2 {
		return binary.BigEndian.AppendUint16(nil, uint16(id))
	}
	return binary.BigEndian.AppendUint32(nil, id)
}

// placedOpt is a non-padding option and its offset in its header.
type placedOpt struct {
	off  int
	typ  uint8
	data string
}

// destOptions lists the non-padding options of h as gopacket decoded them,
// and checks the padding the way Linux does (net/ipv6/exthdrs.c
// ip6_parse_tlv; RFC 8504 §5.3): runs of at most 7 bytes, PadN data zero.
func destOptions(tb testing.TB, h *layers.IPv6Destination) []placedOpt {
	tb.Helper()
	var out []placedOpt
	off, run := 2, 0
	for _, o := range h.Options {
		switch o.OptionType {
		case 0, 1:
			run += o.ActualLength
			if run > 7 {
				tb.Errorf("padding run of %d bytes at %d", run, off)
			}
			if o.OptionType == 1 && !bytes.Equal(o.OptionData, make([]byte, len(o.OptionData))) {
				tb.Errorf("PadN with data %x", o.OptionData)
			}
		default:
			run = 0
			out = append(out, placedOpt{off, o.OptionType, string(o.OptionData)})
		}
		off += o.ActualLength
	}
	if off != h.ActualLength || off%8 != 0 {
		tb.Errorf("options end at %d, header %d bytes", off, h.ActualLength)
	}
	return out
}

// checkDestRewritten compares before and after with gopacket: same IPv6
// header but for Payload Length, same upper layer bytes (checksums valid),
// the same headers before the final Destination Options header (but the
// Next Header naming it), and in that header the same other options, in
// order, each at the same offset modulo 8, and exactly one option of
// optType with data want (nil: none).
func checkDestRewritten(tb testing.TB, before, after []byte, optType byte, want []byte) packettest.Decoded6 {
	tb.Helper()
	b, a := packettest.Decode6(tb, before), packettest.Decode6(tb, after)
	packettest.IPHeadersSame(tb, b.IP, a.IP)
	if len(b.Upper) == 0 || !bytes.Equal(b.Upper, a.Upper) {
		tb.Errorf("upper layer changed or missing (%d -> %d bytes)", len(b.Upper), len(a.Upper))
	}
	// Headers before the final Destination Options header, with the Next
	// Header field that names it or the upper layer masked.
	prefix := func(pkt []byte, d packettest.Decoded6) []byte {
		ip, res := ParseIPv6(pkt)
		if res != Unchanged {
			tb.Fatalf("ParseIPv6: %v", res)
		}
		end, field := len(pkt)-len(d.Upper), ip.ProtoField
		if fd := d.FinalDest(); fd != nil {
			end, field = end-fd.ActualLength, ip.DestField
		}
		p := bytes.Clone(pkt[:end])
		p[4], p[5], p[field] = 0, 0, 0
		return p
	}
	if !bytes.Equal(prefix(before, b), prefix(after, a)) {
		tb.Errorf("headers before the final Destination Options header changed")
	}

	var kb, ka []placedOpt
	if fd := b.FinalDest(); fd != nil {
		kb = destOptions(tb, fd)
	}
	var ours []placedOpt
	if fd := a.FinalDest(); fd != nil {
		for _, o := range destOptions(tb, fd) {
			if o.typ == optType {
				ours = append(ours, o)
			} else {
				ka = append(ka, o)
			}
		}
	}
	var others []placedOpt
	for _, o := range kb {
		if o.typ != optType {
			others = append(others, o)
		}
	}
	if len(others) != len(ka) {
		tb.Fatalf("other options %v -> %v", others, ka)
	}
	for i := range ka {
		if ka[i].typ != others[i].typ || ka[i].data != others[i].data || ka[i].off%8 != others[i].off%8 {
			tb.Errorf("other option %d: %+v -> %+v", i, others[i], ka[i])
		}
	}
	switch {
	case want == nil && len(ours) != 0:
		tb.Errorf("options of type %#x left: %v", optType, ours)
	case want != nil && (len(ours) != 1 || ours[0].data != string(want)):
		tb.Errorf("options of type %#x: %v, want one with data %x", optType, ours, want)
	case want != nil && (ours[0].off+2)%len(want) != 0:
		tb.Errorf("our option data at %d, not %d-aligned", ours[0].off+2, len(want))
	}
	if a.TCP != nil && !TCPChecksumOK6(after) && TCPChecksumOK6(before) {
		tb.Errorf("own TCP checksum verification fails where gopacket's passes")
	}
	return a
}

func TestAddDestOpt(t *testing.T) {
	udp := func() *layers.UDP { return &layers.UDP{SrcPort: 5353, DstPort: 443} }
	pay := gopacket.Payload(bytes.Repeat([]byte("QUIC"), 300))
	syn := func() *layers.TCP { return packettest.SYNHdr(packettest.LinuxSYN()...) }
	L := func(ls ...gopacket.SerializableLayer) []gopacket.SerializableLayer { return ls }
	tests := []struct {
		name     string
		ls       []gopacket.SerializableLayer
		optType  byte
		idLen    int
		grow     int // bytes added
		stripped bool
	}{
		{"TCP SYN, 4-byte id", L(syn()), DestOptType, 4, 8, false},
		{"TCP SYN, 2-byte id", L(syn()), DestOptType, 2, 8, false},
		{"UDP", L(udp(), pay), DestOptType, 4, 8, false},
		{"TCP data", L(packettest.DataHdr(packettest.ONOP(), packettest.ONOP(), packettest.OTS()), pay), DestOptType, 4, 8, false},
		{"Hop-by-Hop", L(packettest.HBH6(), syn()), DestOptType, 4, 8, false},
		{"Hop-by-Hop, UDP", L(packettest.HBH6(), udp(), pay), 0xFE, 2, 8, false},
		{"Destination Options before a Routing header", L(packettest.Dest6(packettest.DOpt(0x11, []byte{1})), packettest.Routing6(2, 0, packettest.Mid6), syn()), DestOptType, 4, 8, false},
		{"Routing header with segments left", L(packettest.Routing6(2, 1, packettest.Mid6), syn()), DestOptType, 4, 8, false},
		{"Routing header, UDP", L(packettest.Routing6(4, 1, packettest.Mid6, packettest.Dst6), udp(), pay), DestOptType, 4, 8, false},
		{"existing header, room left", L(packettest.Dest6(packettest.DOpt(0x11, nil)), syn()), DestOptType, 2, 0, false},
		{"existing header, 2-byte id, grows", L(packettest.Dest6(packettest.DOpt(0x11, []byte{1, 2, 3})), syn()), DestOptType, 2, 8, false},
		{"existing header, grows", L(packettest.Dest6(packettest.DOpt(0x11, []byte{1, 2, 3})), syn()), DestOptType, 4, 8, false},
		{"existing Home Address (8n+6)", L(packettest.HBH6(), packettest.Dest6(packettest.HomeAddr()), syn()), DestOptType, 4, 8, false},
		{"other packettest.Experimental type kept", L(packettest.Dest6(packettest.DOpt(0x3E, []byte{1, 2, 3, 4})), udp(), pay), DestOptType, 4, 8, false},
		{"forged 2-byte HOST_ID replaced", L(packettest.Dest6(packettest.DOpt(DestOptType, []byte{0xbe, 0xef})), syn()), DestOptType, 4, 0, true},
		{"forged, same value, other length", L(packettest.Dest6(packettest.DOpt(DestOptType, []byte{0xa1, 0xb2, 0xc3, 0xd4})), syn()), DestOptType, 2, 0, true},
		{"forged among others", L(packettest.HBH6(), packettest.Dest6(packettest.HomeAddr(), packettest.DOpt(DestOptType, []byte{1, 2, 3, 4}), packettest.DOpt(0x11, []byte{9})), udp(), pay), DestOptType, 4, 0, true},
		{"two forged, odd lengths", L(packettest.Dest6(packettest.DOpt(DestOptType, nil), packettest.DOpt(0x11, []byte{1}), packettest.DOpt(DestOptType, []byte{1, 2, 3, 4, 5, 6, 7})), syn()), DestOptType, 4, 0, true},
		{"long padding between options", L(packettest.Dest6(packettest.DOpt(0x11, []byte{1}), packettest.DOpt(1, make([]byte, 5)), packettest.DOpt(0x12, []byte{2, 2}), packettest.DOpt(0, nil), packettest.DOpt(0x13, nil)), syn()), 0x9E, 4, 8, false},
		{"big forged option", L(packettest.Dest6(packettest.DOpt(0x11, []byte{1}), packettest.DOpt(DestOptType, make([]byte, 200)), packettest.DOpt(0x12, []byte{2, 2})), syn()), DestOptType, 4, -192, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			const id = 0xa1b2c3d4
			pkt := packettest.Build6(t, packettest.IP6Hdr(), tc.ls...)
			before := packettest.Clone(pkt)
			n, res, stripped := AddDestOpt(packettest.PV(pkt, len(pkt)), pkt, tc.optType, id, tc.idLen, 1500)
			if res != Written || stripped != tc.stripped {
				t.Fatalf("got %v stripped=%v, want written stripped=%v", res, stripped, tc.stripped)
			}
			if n-len(before) != tc.grow {
				t.Errorf("grew by %d, want %d", n-len(before), tc.grow)
			}
			after := pkt[:n]
			checkDestRewritten(t, before, after, tc.optType, wantDestOpt(id, tc.idLen))
			if got, gotLen, ok := DestOptHostID(after, tc.optType); !ok || gotLen != tc.idLen || got != id&(1<<(8*tc.idLen)-1) {
				t.Errorf("DestOptHostID = %#x, %d, %v", got, gotLen, ok)
			}
			// Idempotent.
			again := packettest.Clone(after)
			if n2, res, _ := AddDestOpt(packettest.PV(again, len(again)), again, tc.optType, id, tc.idLen, 1500); res != Unchanged || n2 != n || !bytes.Equal(again, after) {
				t.Errorf("second pass: %v", res)
			}
			// Stripping removes ours; a header we inserted goes entirely.
			n3, res := StripDestOpt(packettest.PV(again, len(again)), again, tc.optType)
			if res != Written {
				t.Fatalf("strip: %v", res)
			}
			checkDestRewritten(t, before, again[:n3], tc.optType, nil)
			if tc.grow == 8 && len(tc.ls) > 0 {
				if b := packettest.Decode6(t, before); b.FinalDest() == nil && !bytes.Equal(again[:n3], before) {
					t.Errorf("strip does not give the original back:\n%x\n%x", before, again[:n3])
				}
			}
			if _, _, ok := DestOptHostID(again[:n3], tc.optType); ok {
				t.Error("DestOptHostID after strip")
			}
		})
	}
}

func TestAddDestOptLimits(t *testing.T) {
	syn := packettest.Build6(t, packettest.IP6Hdr(), packettest.SYNHdr(packettest.LinuxSYN()...)) // 80 bytes
	t.Run("MTU", func(t *testing.T) {
		for _, tc := range []struct {
			mtu  int
			want Result
		}{{80, OverMTU}, {87, OverMTU}, {88, Written}, {0, Written}, {-1, Written}} {
			pkt := packettest.Clone(syn)
			n, res, stripped := AddDestOpt(packettest.PV(pkt, len(pkt)), pkt, DestOptType, 7, 4, tc.mtu)
			if res != tc.want || stripped {
				t.Errorf("mtu %d: %v stripped=%v, want %v", tc.mtu, res, stripped, tc.want)
			}
			if res != Written && (n != len(syn) || !bytes.Equal(pkt, syn)) {
				t.Errorf("mtu %d: packet changed", tc.mtu)
			}
		}
	})
	t.Run("Payload Length limit", func(t *testing.T) {
		for _, tc := range []struct {
			extra int
			want  Result
		}{{7, OverMTU}, {8, Written}} {
			big := packettest.Build6(t, packettest.IP6Hdr(), &layers.UDP{SrcPort: 1, DstPort: 2}, gopacket.Payload(make([]byte, 0xffff-8-tc.extra)))
			pkt := packettest.Clone(big)
			n, res, _ := AddDestOpt(packettest.PV(pkt, len(pkt)), pkt, DestOptType, 7, 4, 0)
			if res != tc.want {
				t.Fatalf("room %d: %v", tc.extra, res)
			}
			if res == Written {
				checkDestRewritten(t, big, pkt[:n], DestOptType, wantDestOpt(7, 4))
			} else if !bytes.Equal(pkt, big) {
				t.Error("packet changed")
			}
		}
	})
	t.Run("buffer capacity", func(t *testing.T) {
		pkt := packettest.Clone(syn)[: len(syn) : len(syn)+7]
		if n, res, stripped := AddDestOpt(packettest.PV(pkt, len(pkt)), pkt, DestOptType, 7, 4, 0); res != NoBufferRoom || stripped || n != len(syn) || !bytes.Equal(pkt, syn) {
			t.Errorf("cap+7: %v stripped=%v", res, stripped)
		}
		pkt = packettest.Clone(syn)[: len(syn) : len(syn)+8]
		if n, res, _ := AddDestOpt(packettest.PV(pkt, len(pkt)), pkt, DestOptType, 7, 4, 0); res != Written {
			t.Errorf("cap+8: %v", res)
		} else {
			checkDestRewritten(t, syn, pkt[:n], DestOptType, wantDestOpt(7, 4))
		}
		// Merging into a header that must grow.
		grow := packettest.Build6(t, packettest.IP6Hdr(), packettest.Dest6(packettest.DOpt(0x11, []byte{1, 2, 3})), packettest.SYNHdr())
		pkt = packettest.Clone(grow)[:len(grow):len(grow)]
		if n, res, stripped := AddDestOpt(packettest.PV(pkt, len(pkt)), pkt, DestOptType, 7, 4, 0); res != NoBufferRoom || stripped || n != len(grow) || !bytes.Equal(pkt, grow) {
			t.Errorf("merge: %v stripped=%v", res, stripped)
		}
	})
	t.Run("forged option still stripped", func(t *testing.T) {
		// 0x11 (2 bytes) at 2, the forged option (2 bytes) at 4, padding:
		// 8 bytes. Ours at 6 (4n+2) ends at 12: the header would grow to 16.
		orig := packettest.Build6(t, packettest.IP6Hdr(), packettest.Dest6(packettest.DOpt(0x11, nil), packettest.DOpt(DestOptType, nil)), packettest.SYNHdr())
		if ip, _ := ParseIPv6(orig); ip.Off-ip.DestOff != 8 {
			t.Fatalf("header %d bytes", ip.Off-ip.DestOff)
		}
		for _, tc := range []struct {
			mtu, room int
			want      Result
		}{{len(orig) + 7, 8, OverMTU}, {0, 7, NoBufferRoom}} {
			pkt := packettest.Clone(orig)[: len(orig) : len(orig)+tc.room]
			n, res, stripped := AddDestOpt(packettest.PV(pkt, len(pkt)), pkt, DestOptType, 7, 4, tc.mtu)
			if res != tc.want || !stripped || n != len(orig) {
				t.Fatalf("%v stripped=%v n=%d, want %v", res, stripped, n, tc.want)
			}
			checkDestRewritten(t, orig, pkt[:n], DestOptType, nil)
		}
		// A 2-byte id fits in place (at 4).
		pkt := packettest.Clone(orig)[:len(orig):len(orig)]
		if n, res, stripped := AddDestOpt(packettest.PV(pkt, len(pkt)), pkt, DestOptType, 7, 2, 0); res != Written || !stripped || n != len(orig) {
			t.Fatalf("2-byte id: %v stripped=%v", res, stripped)
		}
		checkDestRewritten(t, orig, pkt, DestOptType, wantDestOpt(7, 2))
		// No growth: an MTU below the packet does not matter.
		orig = packettest.Build6(t, packettest.IP6Hdr(), packettest.Dest6(packettest.DOpt(0x11, make([]byte, 10)), packettest.DOpt(DestOptType, make([]byte, 6))), packettest.SYNHdr())
		pkt = packettest.Clone(orig)[:len(orig):len(orig)]
		n, res, stripped := AddDestOpt(packettest.PV(pkt, len(pkt)), pkt, DestOptType, 7, 4, len(orig)-8)
		if res != Written || !stripped || n != len(orig) { // 2+12+8 -> 24; 2+12+6 -> 24
			t.Fatalf("%v stripped=%v n=%d", res, stripped, n)
		}
		checkDestRewritten(t, orig, pkt[:n], DestOptType, wantDestOpt(7, 4))
		// Only the forged option: ours takes its place; stripping removes
		// the header and gives the packet without it.
		udp := func() *layers.UDP { return &layers.UDP{SrcPort: 1, DstPort: 2} }
		orig = packettest.Build6(t, packettest.IP6Hdr(), packettest.HBH6(), packettest.Dest6(packettest.DOpt(DestOptType, []byte{1, 2})), udp(), gopacket.Payload("hi"))
		want := packettest.Build6(t, packettest.IP6Hdr(), packettest.HBH6(), udp(), gopacket.Payload("hi"))
		pkt = packettest.Clone(orig)[:len(orig):len(orig)]
		if n, res, stripped = AddDestOpt(packettest.PV(pkt, len(pkt)), pkt, DestOptType, 7, 4, 0); res != Written || !stripped || n != len(orig) {
			t.Errorf("in place: %v stripped=%v n=%d", res, stripped, n)
		}
		checkDestRewritten(t, orig, pkt[:n], DestOptType, wantDestOpt(7, 4))
		pkt = packettest.Clone(orig)
		if n, res = StripDestOpt(packettest.PV(pkt, len(pkt)), pkt, DestOptType); res != Written || !bytes.Equal(pkt[:n], want) {
			t.Errorf("strip: %v\n%x\n%x", res, pkt[:n], want)
		}
		// A long forged option: the header shrinks.
		orig = packettest.Build6(t, packettest.IP6Hdr(), packettest.Dest6(packettest.DOpt(DestOptType, []byte{1, 2, 3, 4, 5, 6, 7})), udp(), gopacket.Payload("hi"))
		pkt = packettest.Clone(orig)
		n, res, stripped = AddDestOpt(packettest.PV(pkt, len(pkt)), pkt, DestOptType, 7, 2, 0)
		if res != Written || !stripped || n != len(orig)-8 {
			t.Fatalf("shrinks: %v stripped=%v n=%d", res, stripped, n)
		}
		checkDestRewritten(t, orig, pkt[:n], DestOptType, wantDestOpt(7, 2))
	})
	t.Run("eight options", func(t *testing.T) {
		var opts []*layers.IPv6DestinationOption
		for i := range 8 {
			opts = append(opts, packettest.DOpt(0x11+byte(i), []byte{byte(i)}))
		}
		full := packettest.Build6(t, packettest.IP6Hdr(), packettest.Dest6(opts...), packettest.SYNHdr())
		pkt := packettest.Clone(full)
		if n, res, stripped := AddDestOpt(packettest.PV(pkt, len(pkt)), pkt, DestOptType, 7, 4, 0); res != NoOptionSpace || stripped || n != len(full) || !bytes.Equal(pkt, full) {
			t.Errorf("%v stripped=%v", res, stripped)
		}
		forged := packettest.Build6(t, packettest.IP6Hdr(), packettest.Dest6(append(opts, packettest.DOpt(DestOptType, []byte{1, 2}))...), packettest.SYNHdr())
		pkt = packettest.Clone(forged)
		n, res, stripped := AddDestOpt(packettest.PV(pkt, len(pkt)), pkt, DestOptType, 7, 4, 0)
		if res != NoOptionSpace || !stripped {
			t.Fatalf("forged: %v stripped=%v", res, stripped)
		}
		checkDestRewritten(t, forged, pkt[:n], DestOptType, nil)
		// Seven fit.
		seven := packettest.Build6(t, packettest.IP6Hdr(), packettest.Dest6(opts[:7]...), packettest.SYNHdr())
		pkt = packettest.Clone(seven)
		if n, res, _ := AddDestOpt(packettest.PV(pkt, len(pkt)), pkt, DestOptType, 7, 4, 0); res != Written {
			t.Errorf("seven: %v", res)
		} else {
			checkDestRewritten(t, seven, pkt[:n], DestOptType, wantDestOpt(7, 4))
		}
	})
	t.Run("2048-byte header", func(t *testing.T) {
		var opts []*layers.IPv6DestinationOption
		for i := range 7 {
			opts = append(opts, packettest.DOpt(0x11+byte(i), bytes.Repeat([]byte{byte(i)}, 255)))
		}
		opts = append(opts, packettest.DOpt(0x19, make([]byte, 2046-2-7*257-2))) // header: exactly 2048 bytes
		big := packettest.Build6(t, packettest.IP6Hdr(), packettest.Dest6(opts...), packettest.SYNHdr())
		if ip, _ := ParseIPv6(big); ip.Off-ip.DestOff != 2048 {
			t.Fatalf("header %d bytes", ip.Off-ip.DestOff)
		}
		pkt := packettest.Clone(big)
		if _, res, _ := AddDestOpt(packettest.PV(pkt, len(pkt)), pkt, DestOptType, 7, 2, 0); res != NoOptionSpace || !bytes.Equal(pkt, big) {
			t.Errorf("%v", res)
		}
		// One option less: ours fits, the header still below 2048 bytes.
		big = packettest.Build6(t, packettest.IP6Hdr(), packettest.Dest6(opts[:7]...), packettest.SYNHdr())
		pkt = make([]byte, len(big), len(big)+100)
		copy(pkt, big)
		n, res, _ := AddDestOpt(packettest.PV(pkt, len(pkt)), pkt, DestOptType, 7, 2, 0)
		if res != Written {
			t.Fatalf("%v", res)
		}
		checkDestRewritten(t, big, pkt[:n], DestOptType, wantDestOpt(7, 2))
	})
	t.Run("trailing bytes dropped", func(t *testing.T) {
		pkt := append(packettest.Clone(syn), 0xee, 0xee, 0xee)
		n, res, _ := AddDestOpt(packettest.PV(pkt, len(pkt)), pkt, DestOptType, 7, 4, 0)
		if res != Written || n != len(syn)+8 {
			t.Fatalf("%v n=%d", res, n)
		}
		checkDestRewritten(t, syn, pkt[:n], DestOptType, wantDestOpt(7, 4))
	})
	t.Run("n within capacity but beyond len", func(t *testing.T) {
		pkt := packettest.Clone(syn)
		n, res, _ := AddDestOpt(packettest.PV(pkt[:10], len(syn)), pkt[:10], DestOptType, 7, 4, 0)
		if res != Written {
			t.Fatalf("%v", res)
		}
		checkDestRewritten(t, syn, pkt[:n], DestOptType, wantDestOpt(7, 4))
	})
}

func TestAddDestOptRejects(t *testing.T) {
	syn := packettest.Build6(t, packettest.IP6Hdr(), packettest.SYNHdr(packettest.LinuxSYN()...))
	frag := packettest.Build6(t, packettest.IP6Hdr(), &layers.IPv6Fragment{MoreFragments: true, Identification: 1}, packettest.SYNHdr(packettest.LinuxSYN()...))
	later := packettest.Build6(t, packettest.IP6Hdr(), &layers.IPv6Fragment{FragmentOffset: 10, Identification: 1}, gopacket.Payload("rest of it"))
	atomic := packettest.Build6(t, packettest.IP6Hdr(), packettest.Dest6(packettest.DOpt(0x11, nil)), &layers.IPv6Fragment{Identification: 1}, packettest.SYNHdr(packettest.LinuxSYN()...))
	ah := packettest.Build6(t, packettest.IP6Hdr(), &packettest.AHHdr{ICV: 12}, packettest.Dest6(packettest.DOpt(DestOptType, []byte{1, 2})), packettest.SYNHdr(packettest.LinuxSYN()...))
	// Option length byte too big: 0x11 with 3 data bytes claims 9.
	overrun := packettest.Build6(t, packettest.IP6Hdr(), packettest.Dest6(packettest.DOpt(0x11, []byte{1, 2, 3}), packettest.DOpt(DestOptType, []byte{1, 2})), packettest.SYNHdr())
	overrun[43] = 20
	// The last byte of the header starts an option with no length byte.
	noLen := packettest.Build6(t, packettest.IP6Hdr(), packettest.Dest6(packettest.DOpt(0x11, []byte{1, 2, 3})), packettest.SYNHdr())
	noLen[47] = 0x11
	v4 := packettest.Build(t, packettest.IPHdr(), packettest.SYNHdr(packettest.LinuxSYN()...), nil)
	for _, tc := range []struct {
		name    string
		pkt     []byte
		n       int
		optType byte
		idLen   int
		want    Result
	}{
		{"first fragment", frag, len(frag), DestOptType, 4, Fragment},
		{"later fragment", later, len(later), DestOptType, 4, Fragment},
		{"atomic fragment", atomic, len(atomic), DestOptType, 4, Fragment},
		{"AH", ah, len(ah), DestOptType, 4, NotTCP},
		{"option overruns the header", overrun, len(overrun), DestOptType, 4, BadHeader},
		{"option without length byte", noLen, len(noLen), DestOptType, 4, BadHeader},
		{"IPv4", v4, len(v4), DestOptType, 4, BadHeader},
		{"option type 0x1F", syn, len(syn), 0x1f, 4, BadHeader},
		{"option type Pad1", syn, len(syn), 0, 4, BadHeader},
		{"option type PadN", syn, len(syn), 1, 4, BadHeader},
		{"id length 3", syn, len(syn), DestOptType, 3, BadHeader},
		{"id length 0", syn, len(syn), DestOptType, 0, BadHeader},
		{"truncated", syn[:70], 70, DestOptType, 4, Truncated},
		{"negative n", syn, -1, DestOptType, 4, Truncated},
		{"n > cap", syn[:10:10], 80, DestOptType, 4, Truncated},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := packettest.Clone(tc.pkt)
			n, res, stripped := AddDestOpt(packettest.PV(tc.pkt, tc.n), tc.pkt, tc.optType, 1, tc.idLen, 0)
			if res != tc.want || stripped || n != tc.n || !bytes.Equal(tc.pkt, before) {
				t.Errorf("got %v stripped=%v n=%d, want %v, unchanged", res, stripped, n, tc.want)
			}
			if tc.idLen == 4 {
				if n, res := StripDestOpt(packettest.PV(tc.pkt, tc.n), tc.pkt, tc.optType); res != tc.want || n != tc.n || !bytes.Equal(tc.pkt, before) {
					t.Errorf("strip: %v", res)
				}
			}
		})
	}
	// Nothing to strip.
	for _, p := range [][]byte{syn, packettest.Build6(t, packettest.IP6Hdr(), packettest.Dest6(packettest.DOpt(0x3E, []byte{1, 2})), packettest.SYNHdr())} {
		pkt := packettest.Clone(p)
		if n, res := StripDestOpt(packettest.PV(pkt, len(pkt)), pkt, DestOptType); res != Unchanged || n != len(p) || !bytes.Equal(pkt, p) {
			t.Errorf("strip without option: %v", res)
		}
	}
}

func TestDestOptHostID(t *testing.T) {
	tcp := packettest.SYNHdr()
	for _, tc := range []struct {
		name  string
		pkt   []byte
		id    uint32
		idLen int
	}{
		{"2 bytes", packettest.Build6(t, packettest.IP6Hdr(), packettest.Dest6(packettest.DOpt(DestOptType, []byte{0x12, 0x34})), tcp), 0x1234, 2},
		{"4 bytes after padding and others", packettest.Build6(t, packettest.IP6Hdr(), packettest.HBH6(), packettest.Dest6(packettest.DOpt(0, nil), packettest.HomeAddr(), packettest.DOpt(1, []byte{0, 0}), packettest.DOpt(DestOptType, []byte{1, 2, 3, 4})), tcp), 0x01020304, 4},
		{"first of two", packettest.Build6(t, packettest.IP6Hdr(), packettest.Dest6(packettest.DOpt(DestOptType, []byte{0, 1}), packettest.DOpt(DestOptType, []byte{0, 2})), tcp), 1, 2},
		{"none", packettest.Build6(t, packettest.IP6Hdr(), packettest.Dest6(packettest.DOpt(0x11, []byte{0, 1})), tcp), 0, 0},
		{"no header", packettest.Build6(t, packettest.IP6Hdr(), tcp), 0, 0},
		{"length 3", packettest.Build6(t, packettest.IP6Hdr(), packettest.Dest6(packettest.DOpt(DestOptType, []byte{1, 2, 3})), tcp), 0, 0},
		{"other type", packettest.Build6(t, packettest.IP6Hdr(), packettest.Dest6(packettest.DOpt(0x3E, []byte{1, 2})), tcp), 0, 0},
		{"not the final header", packettest.Build6(t, packettest.IP6Hdr(), packettest.Dest6(packettest.DOpt(DestOptType, []byte{1, 2})), packettest.Routing6(2, 0, packettest.Mid6), tcp), 0, 0},
		{"fragment", packettest.Build6(t, packettest.IP6Hdr(), &layers.IPv6Fragment{Identification: 1}, packettest.Dest6(packettest.DOpt(DestOptType, []byte{1, 2})), tcp), 0, 0},
	} {
		id, idLen, ok := DestOptHostID(tc.pkt, DestOptType)
		if ok != (tc.idLen != 0) || id != tc.id || idLen != tc.idLen {
			t.Errorf("%s: %#x %d %v", tc.name, id, idLen, ok)
		}
	}
	// From the header alone (IPV6_DSTOPTS ancillary data).
	pkt := packettest.Build6(t, packettest.IP6Hdr(), packettest.Dest6(packettest.DOpt(0x11, []byte{9}), packettest.DOpt(0xBE, []byte{0xca, 0xfe})), tcp)
	hdr := pkt[40:56]
	if id, l, ok := HostIDFromDestOpts(hdr, 0xBE); !ok || l != 2 || id != 0xcafe {
		t.Errorf("HostIDFromDestOpts: %#x %d %v", id, l, ok)
	}
	for i := range len(hdr) {
		if _, _, ok := HostIDFromDestOpts(hdr[:i], 0xBE); ok {
			t.Errorf("cut at %d: ok", i)
		}
	}
	bad := bytes.Clone(hdr)
	bad[3] = 6 // 0x11 runs over 0xBE
	if _, _, ok := HostIDFromDestOpts(bad, 0xBE); ok {
		t.Error("malformed before: ok")
	}
	bad = bytes.Clone(hdr)
	bad[10] = 9 // the PadN after 0xBE overruns the header
	if _, _, ok := HostIDFromDestOpts(bad, 0xBE); ok {
		t.Error("malformed after: ok")
	}
	if _, _, ok := DestOptHostID(nil, DestOptType); ok {
		t.Error("nil: ok")
	}
}

// TestLayoutDestOptsAlignment lays out headers whose options sit at every
// offset modulo 8 and checks the Linux padding rules and alignment.
func TestLayoutDestOptsAlignment(t *testing.T) {
	for lead := range 8 {
		for dataLen := range 10 {
			for _, idLen := range []int{2, 4} {
				t.Run(fmt.Sprintf("lead%d/data%d/id%d", lead, dataLen, idLen), func(t *testing.T) {
					var opts []*layers.IPv6DestinationOption
					switch lead {
					case 0:
					case 1:
						opts = append(opts, packettest.DOpt(0, nil))
					default:
						opts = append(opts, packettest.DOpt(1, make([]byte, lead-2)))
					}
					opts = append(opts, packettest.DOpt(0x11, bytes.Repeat([]byte{0xaa}, dataLen)), packettest.DOpt(DestOptType, []byte{1, 2}), packettest.DOpt(0x12, []byte{3}))
					orig := packettest.Build6(t, packettest.IP6Hdr(), packettest.Dest6(opts...), packettest.SYNHdr())
					pkt := packettest.Clone(orig)
					n, res, _ := AddDestOpt(packettest.PV(pkt, len(pkt)), pkt, DestOptType, 0xfedcba98, idLen, 0)
					if res != Written {
						t.Fatalf("%v", res)
					}
					checkDestRewritten(t, orig, pkt[:n], DestOptType, wantDestOpt(0xfedcba98, idLen))
				})
			}
		}
	}
}

func BenchmarkAddDestOpt(b *testing.B) {
	orig := packettest.Build6(b, packettest.IP6Hdr(), packettest.SYNHdr(packettest.LinuxSYN()...))
	benchAddDestOpt(b, orig)
}

func BenchmarkAddDestOptData(b *testing.B) {
	orig := packettest.Build6(b, packettest.IP6Hdr(), &layers.UDP{SrcPort: 5353, DstPort: 443}, gopacket.Payload(make([]byte, 1200)))
	b.SetBytes(int64(len(orig)))
	benchAddDestOpt(b, orig)
}

func BenchmarkAddDestOptMerge(b *testing.B) {
	orig := packettest.Build6(b, packettest.IP6Hdr(), packettest.HBH6(), packettest.Dest6(packettest.HomeAddr(), packettest.DOpt(DestOptType, []byte{1, 2})), packettest.SYNHdr(packettest.LinuxSYN()...))
	benchAddDestOpt(b, orig)
}

func BenchmarkDestOptHostID(b *testing.B) {
	pkt := packettest.Build6(b, packettest.IP6Hdr(), packettest.HBH6(), packettest.Dest6(packettest.HomeAddr(), packettest.DOpt(DestOptType, []byte{1, 2, 3, 4})), packettest.SYNHdr(packettest.LinuxSYN()...))
	b.ReportAllocs()
	for b.Loop() {
		if _, _, ok := DestOptHostID(pkt, DestOptType); !ok {
			b.Fatal("no option")
		}
	}
}

// TestZeroAllocs asserts that no dest-opt hot function allocates.
func TestZeroAllocs(t *testing.T) {
	var view packet.View // on the stack: a caller keeps its view there
	data := packettest.Build6(t, packettest.IP6Hdr(), packettest.DataHdr(packettest.ONOP(), packettest.ONOP(), packettest.OTS()), gopacket.Payload(make([]byte, 1400)))
	merge := packettest.Build6(t, packettest.IP6Hdr(), packettest.Dest6(packettest.HomeAddr(), packettest.DOpt(DestOptType, []byte{1, 2})), packettest.SYNHdr(packettest.LinuxSYN()...))
	buf := make([]byte, 0, 2000)
	for name, f := range map[string]func(){
		"AddDestOpt insert": func() {
			buf = append(buf[:0], data...)
			AddDestOpt(packettest.PVAt(&view, buf, len(buf)), buf, DestOptType, 0x01020304, 4, 0)
		},
		"AddDestOpt merge": func() {
			buf = append(buf[:0], merge...)
			AddDestOpt(packettest.PVAt(&view, buf, len(buf)), buf, DestOptType, 0x01020304, 4, 0)
		},
		"StripDestOpt": func() {
			buf = append(buf[:0], merge...)
			StripDestOpt(packettest.PVAt(&view, buf, len(buf)), buf, DestOptType)
		},
		"DestOptHostID": func() { DestOptHostID(merge, DestOptType) },
	} {
		if a := testing.AllocsPerRun(100, f); a != 0 {
			t.Errorf("%s: %v allocs/op", name, a)
		}
	}
}

// benchAddDestOpt times AddDestOpt adding a 4-byte id to a fresh copy of
// orig at MTU 1500.
func benchAddDestOpt(b *testing.B, orig []byte) {
	var view packet.View // on the stack: a caller keeps its view there
	buf := make([]byte, len(orig), len(orig)+Headroom)
	b.ReportAllocs()
	for b.Loop() {
		copy(buf[:len(orig)], orig)
		if _, res, _ := AddDestOpt(packettest.PVAt(&view, buf, len(orig)), buf, DestOptType, 0xa1b2c3d4, 4, 1500); res != Written {
			b.Fatal(res)
		}
	}
}
