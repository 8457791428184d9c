package destopt

import (
	"bytes"
	"encoding/binary"
	"slices"
	"testing"

	"github.com/natreveal/natreveal/internal/packettest"
	. "github.com/natreveal/natreveal/packet"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
)

// destPadOK checks a Destination Options header the way Linux does: no
// padding run over 7 bytes, PadN data zero (RFC 8504 §5.3); and counts
// options of optType.
func destPadOK(h []byte, optType byte) (ok bool, count int) {
	run := 0
	for i := 2; i < len(h); {
		l := 1
		if h[i] != optPad1 {
			if i+1 >= len(h) || i+2+int(h[i+1]) > len(h) {
				return false, count
			}
			l = 2 + int(h[i+1])
		}
		switch h[i] {
		case optPad1, optPadN:
			run += l
			if run > 7 || !bytes.Equal(h[i+min(l, 2):i+l], make([]byte, l-min(l, 2))) {
				return false, count
			}
		case optType:
			run = 0
			count++
		default:
			run = 0
		}
		i += l
	}
	return true, count
}

func FuzzAddDestOpt(f *testing.F) {
	packettest.Corpus6(f, func(p []byte) {
		f.Add(p, uint8(0), uint32(0xa1b2c3d4), true, uint16(1500), false)
		f.Add(p, uint8(5), uint32(0xbeef), false, uint16(0), true)
	})
	f.Fuzz(func(t *testing.T, data []byte, sel uint8, id uint32, long bool, mtu uint16, fix bool) {
		optType := packettest.Experimental[sel%8]
		pkt := packettest.Prepare6(data, fix)
		before := bytes.Clone(pkt)
		inOK := TCPChecksumOK6(pkt)
		gpOK := packettest.GopacketValid6(pkt)
		idLen := packettest.FuzzIDLen(long)
		view := packettest.PV(pkt, len(pkt))
		n, res, stripped := AddDestOpt(view, pkt, optType, id, idLen, int(mtu))
		packettest.CheckView(t, view, pkt)
		after, changed := packettest.CheckAdded(t, pkt, before, n, res, stripped, func(after []byte) bool {
			got, l, ok := DestOptHostID(after, optType)
			return ok && l == idLen && got == id&uint32(1<<(8*idLen)-1)
		})
		if !changed {
			return
		}
		checkDestFuzz(t, before, after, optType)
		switch {
		case inOK && !TCPChecksumOK6(after):
			t.Fatalf("checksum broken: %x -> %x", before, after)
		case gpOK && !packettest.GopacketValid6(after):
			t.Fatalf("gopacket accepted the input but rejects the output: %x -> %x", before, after)
		}
		if res != Written {
			if _, _, ok := DestOptHostID(after, optType); ok || n > len(before) {
				t.Fatalf("%v stripped: option left or grew %d -> %d", res, len(before), n)
			}
			return
		}
		if got, l, ok := DestOptHostID(after, optType); !ok || l != idLen || got != id&uint32(1<<(8*idLen)-1) {
			t.Fatalf("DestOptHostID = %#x %d %v", got, l, ok)
		}
		if n > len(before) && mtu > 0 && n > int(mtu) {
			t.Fatalf("grew to %d over mtu %d", n, mtu)
		}
		ip, _ := ParseIPv6(after)
		if ok, count := destPadOK(after[ip.DestOff:ip.Off], optType); !ok || count != 1 || ip.Off-ip.DestOff > maxExtHdrLen {
			t.Fatalf("header %x: padding ok %v, %d options of ours", after[ip.DestOff:ip.Off], ok, count)
		}
		again := bytes.Clone(after)
		if _, res, _ := AddDestOpt(packettest.PV(again, len(again)), again, optType, id, idLen, int(mtu)); res != Unchanged {
			t.Fatalf("second pass: %v", res)
		}
		view = packettest.PV(again, len(again))
		n2, res := StripDestOpt(view, again, optType)
		packettest.CheckView(t, view, again)
		if res != Written {
			t.Fatalf("strip: %v", res)
		}
		checkDestFuzz(t, after, again[:n2], optType)
		if _, _, ok := DestOptHostID(again[:n2], optType); ok || (inOK && !TCPChecksumOK6(again[:n2])) {
			t.Fatal("strip left an option or broke the checksum")
		}
	})
}

// checkDestFuzz checks what AddDestOpt and StripDestOpt must keep: the
// fixed header but Payload Length, the headers before the final
// Destination Options header but the Next Header naming it, the upper
// layer bytes, and the other options of the final header in order.
func checkDestFuzz(t *testing.T, before, after []byte, optType byte) {
	t.Helper()
	bi, r1 := ParseIPv6(before)
	ai, r2 := ParseIPv6(after)
	if r1 != Unchanged || r2 != Unchanged || ai.Frag || ai.AH || ai.Proto != bi.Proto {
		t.Fatalf("re-parse: %v %v %+v", r1, r2, ai)
	}
	if !bytes.Equal(before[bi.Off:bi.TotalLen], after[ai.Off:ai.TotalLen]) {
		t.Fatal("upper layer changed")
	}
	prefix := func(pkt []byte, ip IPv6) []byte {
		end, field := ip.Off, ip.ProtoField
		if ip.DestOff != 0 {
			end, field = ip.DestOff, ip.DestField
		}
		p := bytes.Clone(pkt[:end])
		p[4], p[5], p[field] = 0, 0, 0
		return p
	}
	if !bytes.Equal(prefix(before, bi), prefix(after, ai)) {
		t.Fatalf("headers before the final Destination Options header changed: %x -> %x", before, after)
	}
	others := func(pkt []byte, ip IPv6) []string {
		if ip.DestOff == 0 {
			return nil
		}
		var out []string
		h := pkt[ip.DestOff:ip.Off]
		for i := 2; i < len(h); {
			if h[i] == optPad1 {
				i++
				continue
			}
			l := 2 + int(h[i+1])
			if h[i] != optPadN && h[i] != optType {
				out = append(out, string(rune(i%8))+string(h[i:i+l]))
			}
			i += l
		}
		return out
	}
	if b, a := others(before, bi), others(after, ai); !slices.Equal(b, a) {
		t.Fatalf("other options changed: %q -> %q", b, a)
	}
}

func FuzzDestOptHostID(f *testing.F) {
	packettest.Corpus6(f, func(p []byte) { f.Add(p, uint8(DestOptType), false) })
	f.Fuzz(func(t *testing.T, data []byte, optType uint8, fix bool) {
		pkt := packettest.Prepare6(data, fix)
		id, idLen, ok := DestOptHostID(pkt, optType)
		HostIDFromDestOpts(pkt, optType)
		if ok && idLen != 2 && idLen != 4 || !ok && (id != 0 || idLen != 0) {
			t.Fatalf("%#x %d %v", id, idLen, ok)
		}
		// gopacket, decoding the same header, finds the same first option.
		ip, res := ParseIPv6(pkt)
		if res != Unchanged || ip.DestOff == 0 || ip.Frag || optType <= optPadN {
			if ok {
				t.Fatal("ok without a final Destination Options header")
			}
			return
		}
		var dst layers.IPv6Destination
		if err := dst.DecodeFromBytes(pkt[ip.DestOff:ip.Off], gopacket.NilDecodeFeedback); err != nil {
			if ok {
				t.Fatalf("gopacket: %v, ours ok", err)
			}
			return
		}
		for _, o := range dst.Options {
			if o.OptionType != optType || o.ActualLength == 1 {
				continue
			}
			var want uint32
			switch len(o.OptionData) {
			case 2:
				want = uint32(binary.BigEndian.Uint16(o.OptionData))
			case 4:
				want = binary.BigEndian.Uint32(o.OptionData)
			default:
				if ok {
					t.Fatalf("gopacket: data %x, ours ok", o.OptionData)
				}
				return
			}
			if !ok || id != want || idLen != len(o.OptionData) {
				t.Fatalf("gopacket %#x, ours %#x %d %v", want, id, idLen, ok)
			}
			return
		}
		if ok {
			t.Fatal("gopacket finds no option, ours ok")
		}
	})
}
