package encoders

import (
	"bytes"
	"encoding/binary"
	"slices"
	"testing"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"

	"github.com/natreveal/natreveal/method/ipid"
)

// seeds adds the edge cases every fuzzer starts from; each is also mutated
// by the fuzzing engine. add receives the packet bytes.
func seeds(f *testing.F, add func(pkt []byte)) {
	b := func(tcp *layers.TCP, payload []byte) []byte { return build(f, ipHdr(), tcp, payload) }
	// Plain SYN, no options.
	add(b(synHdr(), nil))
	// Linux SYN: MSS, SACK-permitted, TS, NOP, WS (20 option bytes).
	add(b(synHdr(linuxSYN()...), nil))
	// Forged 2-byte HOST_ID, NOP aligned.
	add(b(synHdr(append(linuxSYN(), oNOP(), oNOP(), oHostID(1, 2))...), nil))
	// Forged 4-byte HOST_ID first.
	add(b(synHdr(append([]layers.TCPOption{oHostID(1, 2, 3, 4)}, linuxSYN()...)...), nil))
	// Options fill 40 bytes, no HOST_ID.
	add(b(synHdr(append(linuxSYN(), oTFO(16), oNOP(), oNOP())...), nil))
	// Options fill 40 bytes with a forged HOST_ID inside.
	add(b(synHdr(append(linuxSYN(), oTFO(12), oHostID(1, 2))...), nil))
	// ExID-only HOST_ID (length 4) and an IPv6-sized one (length 12).
	add(b(synHdr(oMSS(1400), oHostID(), oHostID(1, 2, 3, 4, 5, 6, 7, 8)), nil))
	// EOL in the middle, forged HOST_ID after it.
	add(b(synHdr(oMSS(1400), oEOL(), oHostID(1, 2, 3, 4)), nil))
	// MSS at an odd offset.
	add(b(synHdr(oNOP(), oMSS(1460), oWS(7)), nil))
	// Data segment with odd-length payload.
	add(b(dataHdr(oNOP(), oNOP(), oTS()), []byte("GET / HTTP/1.1\r\nHost: x\r\n\r\n!")))
	// 1500-byte data segment.
	add(b(dataHdr(oNOP(), oNOP(), oTS()), make([]byte, 1448)))
	// Malformed option length 1.
	add(patched(f, synHdr(layers.TCPOption{OptionType: 30, OptionData: []byte{0, 0}}, oHostID(1, 2)), func(o []byte) { o[1] = 1 }))
	// IP options (IHL 6).
	ip := ipHdr()
	ip.Options = []layers.IPv4Option{{OptionType: 1}, {OptionType: 1}, {OptionType: 1}, {OptionType: 0}}
	add(build(f, ip, synHdr(linuxSYN()...), nil))
	// Not atomic (DF clear), and a first fragment.
	ip = ipHdr()
	ip.Flags = 0
	add(build(f, ip, synHdr(oMSS(1400)), nil))
	ip.Flags = layers.IPv4MoreFragments
	add(build(f, ip, synHdr(oMSS(1400)), nil))
	// Garbage and truncation.
	add(nil)
	add([]byte{0x45})
	add(bytes.Repeat([]byte{0x4f}, 60))
	add(b(synHdr(linuxSYN()...), nil)[:45])
}

// prepare copies data into a buffer with Headroom and, when fix is set,
// makes Total Length match and recomputes checksums (with gopacket) so that
// the fuzzer reaches the deep paths.
func prepare(data []byte, fix bool) []byte {
	pkt := make([]byte, len(data), len(data)+Headroom)
	copy(pkt, data)
	if fix && len(pkt) >= 20 && len(pkt) <= 0xffff {
		binary.BigEndian.PutUint16(pkt[2:], uint16(len(pkt)))
		fixChecksums(pkt)
	}
	return pkt
}

func checksumsOK(pkt []byte) bool { return IPv4ChecksumOK(pkt) && TCPChecksumOK(pkt) }

// gopacketValid reports whether gopacket, the independent decoder, decodes
// pkt as IPv4/TCP without error and with both checksums valid.
func gopacketValid(pkt []byte) bool {
	p := gopacket.NewPacket(pkt, layers.LayerTypeIPv4, gopacket.DecodeOptions{})
	ip, _ := p.Layer(layers.LayerTypeIPv4).(*layers.IPv4)
	tcp, _ := p.Layer(layers.LayerTypeTCP).(*layers.TCP)
	if p.ErrorLayer() != nil || ip == nil || tcp == nil || int(ip.Length) != len(pkt) {
		return false
	}
	if tcp.SetNetworkLayerForChecksum(ip) != nil {
		return false
	}
	err, bad := p.VerifyChecksums()
	return err == nil && len(bad) == 0
}

// segment returns a parsed packet's options and payload.
func segment(t *testing.T, pkt []byte) (opts, payload []byte) {
	ip, tcp, res := ParseIPv4TCP(pkt)
	if res != Unchanged {
		t.Fatalf("does not parse: %v", res)
	}
	return pkt[tcp.Off+20 : tcp.Off+tcp.HdrLen], pkt[tcp.Off+tcp.HdrLen : ip.TotalLen]
}

// otherOpts lists the options up to EOL that are neither NOP nor HOST_ID.
func otherOpts(opts []byte) []string {
	var out []string
	for i := 0; i < len(opts); {
		l := optLen(opts, i)
		if l <= 0 {
			break
		}
		if o := opts[i : i+l]; o[0] != optNOP && !isHostID(o) {
			out = append(out, string(o))
		}
		i += l
	}
	return out
}

func countHostIDs(opts []byte) int {
	n := 0
	for i := 0; i < len(opts); {
		l := optLen(opts, i)
		if l <= 0 {
			break
		}
		if isHostID(opts[i : i+l]) {
			n++
		}
		i += l
	}
	return n
}

func FuzzParse(f *testing.F) {
	seeds(f, func(p []byte) { f.Add(p) })
	f.Fuzz(func(t *testing.T, data []byte) {
		ip, res := ParseIPv4(data)
		if res == Unchanged && (ip.HdrLen < 20 || ip.TotalLen < ip.HdrLen || ip.TotalLen > len(data)) {
			t.Fatalf("inconsistent %+v", ip)
		}
		if res == Unchanged {
			tcp, res := ParseTCP(data, ip)
			if res == Unchanged && (tcp.HdrLen < 20 || tcp.Off+tcp.HdrLen+tcp.PayloadLen != ip.TotalLen) {
				t.Fatalf("inconsistent %+v", tcp)
			}
		}
		HostIDOption(data)
		HostIDFromTCPHeader(data)
		ipid.IPID(data)
		TCPChecksumOK(data)
		IPv4ChecksumOK(data)
	})
}

func FuzzAddHostIDOption(f *testing.F) {
	seeds(f, func(p []byte) {
		f.Add(p, uint32(0xa1b2c3d4), true, uint16(1500), false)
		f.Add(p, uint32(0xbeef), false, uint16(0), true)
	})
	f.Fuzz(func(t *testing.T, data []byte, id uint32, long bool, mtu uint16, fix bool) {
		pkt := prepare(data, fix)
		before := bytes.Clone(pkt)
		inOK := checksumsOK(pkt)
		gpOK := gopacketValid(pkt)
		idLen := fuzzIDLen(long)
		view := pv(pkt, len(pkt))
		n, res, stripped := AddHostIDOption(view, pkt, id, idLen, int(mtu))
		checkView(t, view, pkt)
		after, changed := checkAdded(t, pkt, before, n, res, stripped, func(after []byte) bool {
			_, _, ok := HostIDOption(after)
			return ok
		})
		if !changed {
			return
		}
		oldOpts, oldPay := segment(t, before)
		newOpts, newPay := segment(t, after)
		if !bytes.Equal(oldPay, newPay) {
			t.Fatal("payload changed")
		}
		if !slices.Equal(otherOpts(oldOpts), otherOpts(newOpts)) {
			t.Fatalf("options changed: %x -> %x", oldOpts, newOpts)
		}
		if inOK && !checksumsOK(after) {
			t.Fatalf("checksums broken: %x -> %x", before, after)
		}
		if gpOK && !gopacketValid(after) {
			t.Fatalf("gopacket accepted the input but rejects the output: %x -> %x", before, after)
		}
		switch {
		case res == Written:
			got, gotLen, ok := HostIDOption(after)
			if !ok || gotLen != idLen || got != id&uint32(1<<(8*idLen)-1) || countHostIDs(newOpts) != 1 {
				t.Fatalf("HostIDOption = %#x %d %v, %d options", got, gotLen, ok, countHostIDs(newOpts))
			}
			ip, _ := ParseIPv4(before)
			if n > ip.TotalLen && mtu > 0 && n > int(mtu) {
				t.Fatalf("grew to %d over mtu %d", n, mtu)
			}
			if len(newOpts) > MaxTCPOptions || len(newOpts)%4 != 0 {
				t.Fatalf("option length %d", len(newOpts))
			}
			again := bytes.Clone(after)
			if _, res, _ := AddHostIDOption(pv(again, len(again)), again, id, idLen, int(mtu)); res != Unchanged {
				t.Fatalf("second pass: %v", res)
			}
		default: // stripped, ours not added
			if countHostIDs(newOpts) != 0 || n >= len(before) {
				t.Fatalf("%v stripped: %d HOST_ID left, %d -> %d bytes", res, countHostIDs(newOpts), len(before), n)
			}
		}
	})
}

func FuzzStrip(f *testing.F) {
	seeds(f, func(p []byte) { f.Add(p, false); f.Add(p, true) })
	f.Fuzz(func(t *testing.T, data []byte, fix bool) {
		pkt := prepare(data, fix)
		before := bytes.Clone(pkt)
		inOK := checksumsOK(pkt)
		gpOK := gopacketValid(pkt)
		view := pv(pkt, len(pkt))
		n, res := StripHostIDOption(view, pkt)
		checkView(t, view, pkt)
		if res != Written {
			if n != len(before) || !bytes.Equal(pkt, before) {
				t.Fatalf("%v but packet changed", res)
			}
			if res == Unchanged {
				if opts, _ := segment(t, pkt); countHostIDs(opts) != 0 {
					t.Fatal("unchanged with a HOST_ID option")
				}
			}
			return
		}
		oldOpts, oldPay := segment(t, before)
		newOpts, newPay := segment(t, pkt[:n])
		switch {
		case !bytes.Equal(oldPay, newPay):
			t.Fatal("payload changed")
		case countHostIDs(newOpts) != 0 || n >= len(before):
			t.Fatalf("HOST_ID left or no shrink: %x", newOpts)
		case !slices.Equal(otherOpts(oldOpts), otherOpts(newOpts)):
			t.Fatalf("options changed: %x -> %x", oldOpts, newOpts)
		case inOK && !checksumsOK(pkt[:n]):
			t.Fatal("checksums broken")
		case gpOK && !gopacketValid(pkt[:n]):
			t.Fatal("gopacket accepted the input but rejects the output")
		}
	})
}

func FuzzLowerMSS(f *testing.F) {
	seeds(f, func(p []byte) { f.Add(p, uint16(40), false); f.Add(p, uint16(1000), true) })
	f.Fuzz(func(t *testing.T, data []byte, delta uint16, fix bool) {
		pkt := prepare(data, fix)
		before := bytes.Clone(pkt)
		inOK := checksumsOK(pkt)
		view := pv(pkt, len(pkt))
		res := LowerMSS(view, pkt, delta)
		checkView(t, view, pkt)
		if res != Written {
			if !bytes.Equal(pkt, before) {
				t.Fatalf("%v but packet changed", res)
			}
			return
		}
		ip, _ := ParseIPv4(before)
		oldTCP, _ := ParseTCP(before, ip)
		newTCP, r := ParseTCP(pkt, ip)
		if r != Unchanged || newTCP.MSS >= oldTCP.MSS || newTCP.MSS < MinMSS || oldTCP.Flags&FlagSYN == 0 {
			t.Fatalf("MSS %d -> %d (%v)", oldTCP.MSS, newTCP.MSS, r)
		}
		diff := 0
		for i := range pkt {
			if pkt[i] != before[i] && i != oldTCP.Off+16 && i != oldTCP.Off+17 {
				diff++
			}
		}
		if diff > 2 {
			t.Fatalf("%d bytes besides the checksum changed", diff)
		}
		if inOK && !checksumsOK(pkt) {
			t.Fatal("checksum broken")
		}
	})
}
