package destopt

import (
	"bytes"
	"encoding/binary"
	"slices"
	"testing"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
)

// experimental is the RFC 4727 list the fuzzers pick option types from.
var experimental = [8]byte{0x1E, 0x3E, 0x5E, 0x7E, 0x9E, 0xBE, 0xDE, 0xFE}

// seeds6 adds the IPv6 edge cases every IPv6 fuzzer starts from.
func seeds6(f *testing.F, add func(pkt []byte)) {
	b := func(ls ...gopacket.SerializableLayer) []byte { return build6(f, ip6Hdr(), ls...) }
	syn := func() *layers.TCP { return synHdr(linuxSYN()...) }
	udp := func() *layers.UDP { return &layers.UDP{SrcPort: 5353, DstPort: 443} }
	// Plain SYN; Linux SYN.
	add(b(synHdr()))
	add(b(syn()))
	// Hop-by-Hop; Hop-by-Hop and a final Destination Options header with
	// an 8n+6 aligned option.
	add(b(hbh6(), syn()))
	add(b(hbh6(), dest6(homeAddr()), syn()))
	// Forged HOST_ID TCP option; TCP options full.
	add(b(synHdr(append(linuxSYN(), oNOP(), oNOP(), oHostID(1, 2))...)))
	add(b(synHdr(append(linuxSYN(), oTFO(16), oNOP(), oNOP())...)))
	// Forged HOST_ID destination options, 2 and 4 bytes, among others.
	add(b(dest6(dOpt(DestOptType, []byte{1, 2})), syn()))
	add(b(hbh6(), dest6(dOpt(0x11, []byte{1}), dOpt(DestOptType, []byte{1, 2, 3, 4}), homeAddr()), udp(), gopacket.Payload("q")))
	// Eight options: no room for ours.
	var eight []*layers.IPv6DestinationOption
	for i := range 8 {
		eight = append(eight, dOpt(0x11+byte(i), []byte{byte(i)}))
	}
	add(b(dest6(eight...), synHdr()))
	// Destination Options before a Routing header with segments left
	// (type 2), and a type 4 (SRH) one.
	add(b(dest6(dOpt(0x11, nil)), routing6(2, 1, mid6), syn()))
	add(b(routing6(4, 1, mid6, dst6), udp(), gopacket.Payload("hello")))
	// First fragment, later fragment, atomic fragment.
	add(b(&layers.IPv6Fragment{MoreFragments: true, Identification: 9}, syn()))
	add(b(&layers.IPv6Fragment{FragmentOffset: 100, Identification: 9}, gopacket.Payload("tail")))
	add(b(&layers.IPv6Fragment{Identification: 9}, syn()))
	// AH.
	add(b(&ahHdr{icv: 12}, dest6(dOpt(DestOptType, []byte{1, 2})), syn()))
	// UDP; a 1500-byte TCP data segment with an odd-length payload before it.
	add(b(udp(), gopacket.Payload("GET / HTTP/1.1\r\n\r\n!")))
	add(b(dataHdr(oNOP(), oNOP(), oTS()), gopacket.Payload(make([]byte, 1428))))
	// No Next Header; jumbogram; malformed option length.
	p := b(synHdr())[:40]
	p[4], p[5], p[6] = 0, 0, 59
	add(p)
	p = b(hbh6(), synHdr())
	p[4], p[5] = 0, 0
	add(p)
	p = b(dest6(dOpt(0x11, []byte{1, 2, 3}), dOpt(DestOptType, []byte{1, 2})), synHdr())
	p[43] = 20
	add(p)
	// Our option, then one that overruns the header.
	p = b(dest6(dOpt(DestOptType, []byte{1, 2}), dOpt(0x11, []byte{1})), synHdr())
	p[47] = 20
	add(p)
	// Garbage and truncation.
	add(nil)
	add([]byte{0x60})
	add(bytes.Repeat([]byte{0x6f}, 80))
	add(b(syn())[:70])
}

// prepare6 copies data into a buffer with Headroom and, when fix is set,
// makes the Payload Length match and recomputes the TCP or UDP checksum
// with gopacket, so that the fuzzer reaches the deep paths.
func prepare6(data []byte, fix bool) []byte {
	pkt := make([]byte, len(data), len(data)+Headroom)
	copy(pkt, data)
	if fix && len(pkt) >= 40 && len(pkt)-40 <= 0xffff {
		binary.BigEndian.PutUint16(pkt[4:], uint16(len(pkt)-40))
		fixChecksum6(pkt)
	}
	return pkt
}

// tcp6 returns a parsed IPv6/TCP packet's extension headers, options and
// payload.
func tcp6(t *testing.T, pkt []byte) (ext, opts, payload []byte) {
	ip, tcp, res := parseIPv6TCP(pkt)
	if res != Unchanged {
		t.Fatalf("does not parse: %v", res)
	}
	return pkt[40:ip.Off], pkt[tcp.Off+20 : tcp.Off+tcp.HdrLen], pkt[tcp.Off+tcp.HdrLen : ip.TotalLen]
}

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
	seeds6(f, func(p []byte) {
		f.Add(p, uint8(0), uint32(0xa1b2c3d4), true, uint16(1500), false)
		f.Add(p, uint8(5), uint32(0xbeef), false, uint16(0), true)
	})
	f.Fuzz(func(t *testing.T, data []byte, sel uint8, id uint32, long bool, mtu uint16, fix bool) {
		optType := experimental[sel%8]
		pkt := prepare6(data, fix)
		before := bytes.Clone(pkt)
		inOK := TCPChecksumOK6(pkt)
		gpOK := gopacketValid6(pkt)
		idLen := fuzzIDLen(long)
		view := pv(pkt, len(pkt))
		n, res, stripped := AddDestOpt(view, pkt, optType, id, idLen, int(mtu))
		checkView(t, view, pkt)
		after, changed := checkAdded(t, pkt, before, n, res, stripped, func(after []byte) bool {
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
		case gpOK && !gopacketValid6(after):
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
		if _, res, _ := AddDestOpt(pv(again, len(again)), again, optType, id, idLen, int(mtu)); res != Unchanged {
			t.Fatalf("second pass: %v", res)
		}
		view = pv(again, len(again))
		n2, res := StripDestOpt(view, again, optType)
		checkView(t, view, again)
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
	seeds6(f, func(p []byte) { f.Add(p, uint8(DestOptType), false) })
	f.Fuzz(func(t *testing.T, data []byte, optType uint8, fix bool) {
		pkt := prepare6(data, fix)
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
