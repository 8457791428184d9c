package ipid

import (
	"bytes"
	"encoding/binary"
	"testing"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
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

func FuzzSetIPID(f *testing.F) {
	seeds(f, func(p []byte) { f.Add(p, uint16(0), false); f.Add(p, uint16(0xfffe), true) })
	f.Fuzz(func(t *testing.T, data []byte, id uint16, fix bool) {
		pkt := prepare(data, fix)
		before := bytes.Clone(pkt)
		ipOK := IPv4ChecksumOK(pkt)
		view := pv(pkt, len(pkt))
		res := SetIPID(view, pkt, id)
		checkView(t, view, pkt)
		if res != Written {
			if !bytes.Equal(pkt, before) {
				t.Fatalf("%v but packet changed", res)
			}
			return
		}
		got, atomic, ok := IPID(pkt)
		if got != id || !atomic || !ok {
			t.Fatalf("IPID = %#x %v %v", got, atomic, ok)
		}
		for i := range pkt {
			if pkt[i] != before[i] && i != 4 && i != 5 && i != 10 && i != 11 {
				t.Fatalf("byte %d changed", i)
			}
		}
		if ipOK && !IPv4ChecksumOK(pkt) {
			t.Fatal("checksum broken")
		}
	})
}
