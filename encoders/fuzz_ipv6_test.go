package encoders

import (
	"bytes"
	"encoding/binary"
	"slices"
	"testing"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"

	"github.com/natreveal/natreveal/method/destopt"
	"github.com/natreveal/natreveal/packet"
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
	add(b(dest6(dOpt(destOptType, []byte{1, 2})), syn()))
	add(b(hbh6(), dest6(dOpt(0x11, []byte{1}), dOpt(destOptType, []byte{1, 2, 3, 4}), homeAddr()), udp(), gopacket.Payload("q")))
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
	add(b(&ahHdr{icv: 12}, dest6(dOpt(destOptType, []byte{1, 2})), syn()))
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
	p = b(dest6(dOpt(0x11, []byte{1, 2, 3}), dOpt(destOptType, []byte{1, 2})), synHdr())
	p[43] = 20
	add(p)
	// Our option, then one that overruns the header.
	p = b(dest6(dOpt(destOptType, []byte{1, 2}), dOpt(0x11, []byte{1})), synHdr())
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

func FuzzParseIPv6(f *testing.F) {
	seeds6(f, func(p []byte) { f.Add(p, false) })
	f.Fuzz(func(t *testing.T, data []byte, fix bool) {
		pkt := prepare6(data, fix)
		ip, res := ParseIPv6(pkt)
		if res == Unchanged {
			switch {
			case ip.TotalLen != 40+ip.PayloadLen || ip.TotalLen > len(pkt) || ip.Off < 40 || ip.Off > ip.TotalLen:
				t.Fatalf("lengths %+v", ip)
			case ip.ProtoField >= ip.Off || pkt[ip.ProtoField] != ip.Proto:
				t.Fatalf("Proto field %+v", ip)
			case ip.DestOff != 0 && (pkt[ip.DestField] != packet.ProtoDstOpts || ip.DestOff+extLen(pkt[ip.DestOff+1]) != ip.Off || ip.ProtoField != ip.DestOff):
				t.Fatalf("final Destination Options %+v", ip)
			case ip.RoutingOff != 0 && (ip.RoutingOff >= ip.Off || pkt[ip.RoutingOff+3] == 0):
				t.Fatalf("Routing %+v", ip)
			}
			if tcp, r := ParseTCP6(pkt, ip); r == Unchanged {
				if tcp.Off != ip.Off || tcp.Off+tcp.HdrLen+tcp.PayloadLen != ip.TotalLen {
					t.Fatalf("inconsistent %+v", tcp)
				}
				// gopacket puts TCP where we do.
				if d, err := gopacketDecode6(pkt[:ip.TotalLen]); err == "" && d.tcp != nil && len(d.upper) != ip.TotalLen-ip.Off {
					t.Fatalf("TCP at %d, gopacket at %d", ip.Off, ip.TotalLen-len(d.upper))
				}
			}
		}
		HostIDOption6(pkt)
		TCPChecksumOK6(pkt)
		destopt.DestOptHostID(pkt, destOptType)
		destopt.HostIDFromDestOpts(pkt, destOptType)
		b := bytes.Clone(pkt)
		LowerMSS6(pv(b, len(b)), b, 40)
	})
}

func FuzzAddHostIDOption6(f *testing.F) {
	seeds6(f, func(p []byte) {
		f.Add(p, uint32(0xa1b2c3d4), true, uint16(1500), false)
		f.Add(p, uint32(0xbeef), false, uint16(0), true)
	})
	f.Fuzz(func(t *testing.T, data []byte, id uint32, long bool, mtu uint16, fix bool) {
		pkt := prepare6(data, fix)
		before := bytes.Clone(pkt)
		inOK := TCPChecksumOK6(pkt)
		gpOK := gopacketValid6(pkt)
		idLen := fuzzIDLen(long)
		view := pv(pkt, len(pkt))
		n, res, stripped := AddHostIDOption6(view, pkt, id, idLen, int(mtu))
		checkView(t, view, pkt)
		after, changed := checkAdded(t, pkt, before, n, res, stripped, func(after []byte) bool {
			_, _, ok := HostIDOption6(after)
			return ok
		})
		if !changed {
			return
		}
		oldExt, oldOpts, oldPay := tcp6(t, before)
		newExt, newOpts, newPay := tcp6(t, after)
		switch {
		case !bytes.Equal(oldPay, newPay):
			t.Fatal("payload changed")
		case !bytes.Equal(oldExt, newExt) || !bytes.Equal(before[:4], after[:4]) || !bytes.Equal(before[6:40], after[6:40]):
			t.Fatal("IPv6 headers changed")
		case !slices.Equal(otherOpts(oldOpts), otherOpts(newOpts)):
			t.Fatalf("options changed: %x -> %x", oldOpts, newOpts)
		case inOK && !TCPChecksumOK6(after):
			t.Fatalf("checksum broken: %x -> %x", before, after)
		case gpOK && !gopacketValid6(after):
			t.Fatalf("gopacket accepted the input but rejects the output: %x -> %x", before, after)
		}
		if res == Written {
			got, gotLen, ok := HostIDOption6(after)
			if !ok || gotLen != idLen || got != id&uint32(1<<(8*idLen)-1) || countHostIDs(newOpts) != 1 {
				t.Fatalf("HostIDOption6 = %#x %d %v, %d options", got, gotLen, ok, countHostIDs(newOpts))
			}
			if n > len(before) && mtu > 0 && n > int(mtu) {
				t.Fatalf("grew to %d over mtu %d", n, mtu)
			}
			if len(newOpts) > MaxTCPOptions || len(newOpts)%4 != 0 {
				t.Fatalf("option length %d", len(newOpts))
			}
			again := bytes.Clone(after)
			if _, res, _ := AddHostIDOption6(pv(again, len(again)), again, id, idLen, int(mtu)); res != Unchanged {
				t.Fatalf("second pass: %v", res)
			}
		} else if countHostIDs(newOpts) != 0 || n >= len(before) {
			t.Fatalf("%v stripped: %d HOST_ID left, %d -> %d bytes", res, countHostIDs(newOpts), len(before), n)
		}
	})
}

// destOptType is dest-opt's option type (RFC 4727 §2.6, method/destopt):
// the seeds carry Destination Options of it.
const destOptType = 0x1E
