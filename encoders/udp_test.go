package encoders

import (
	"bytes"
	"encoding/binary"
	"math/rand/v2"
	"testing"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
)

// fixUDP sets the UDP Length to the rest of the IPv4 datagram and
// recomputes the UDP checksum with gopacket's RFC 1071 code (a computed 0
// sent as 0xffff, RFC 768), when the headers allow it.
func fixUDP(pkt []byte) {
	if len(pkt) < 20 || pkt[0]>>4 != 4 {
		return
	}
	hl := int(pkt[0]&0x0f) * 4
	tot := int(binary.BigEndian.Uint16(pkt[2:4]))
	if hl < 20 || pkt[9] != 17 || binary.BigEndian.Uint16(pkt[6:8])&0x3fff != 0 || tot < hl+8 || tot > len(pkt) {
		return
	}
	seg := pkt[hl:tot]
	binary.BigEndian.PutUint16(seg[4:], uint16(len(seg)))
	seg[6], seg[7] = 0, 0
	ph := append(append([]byte{}, pkt[12:20]...), 0, 17, byte(len(seg)>>8), byte(len(seg)))
	c := gopacket.FoldChecksum(gopacket.ComputeChecksum(seg, gopacket.ComputeChecksum(ph, 0)))
	if c == 0 {
		c = 0xffff
	}
	binary.BigEndian.PutUint16(seg[6:], c)
}

func TestParseUDP(t *testing.T) {
	pkt := mkIP(t, kUDP, nil, []byte("hello"))
	ip, res := ParseIPv4(pkt)
	if res != Unchanged {
		t.Fatal(res)
	}
	u, res := ParseUDP(pkt, ip)
	if want := (UDP{SrcPort: 40000, DstPort: 9999, Len: 13, PayloadLen: 5}); res != Unchanged || u != want {
		t.Errorf("%v %+v, want %+v", res, u, want)
	}
	// After IP options, and with bytes past Total Length.
	pkt = append(mkIP(t, kUDP, ipOpts(ioRA(), ioRR(2)), make([]byte, 1000)), 1, 2, 3)
	ip, _ = ParseIPv4(pkt)
	if u, res := ParseUDP(pkt, ip); res != Unchanged || u.Len != 1008 || u.PayloadLen != 1000 || ip.HdrLen != 36 {
		t.Errorf("with options: %v %+v", res, u)
	}
	// UDP Length shorter than the IPv4 payload: the surplus is not data.
	pkt = mkIP(t, kUDP, nil, []byte("hello world"))
	binary.BigEndian.PutUint16(pkt[24:], 8+5)
	ip, _ = ParseIPv4(pkt)
	if u, res := ParseUDP(pkt, ip); res != Unchanged || u.Len != 13 || u.PayloadLen != 5 {
		t.Errorf("surplus: %v %+v", res, u)
	}
	// Fields land where gopacket puts them.
	r := rand.New(rand.NewPCG(3, 4))
	for range 100 {
		sp, dp, n := uint16(r.Uint32()), uint16(r.Uint32()), r.IntN(200)
		ipl := ipHdr()
		ipl.Protocol = layers.IPProtocolUDP
		udp := &layers.UDP{SrcPort: layers.UDPPort(sp), DstPort: layers.UDPPort(dp)}
		_ = udp.SetNetworkLayerForChecksum(ipl)
		sb := gopacket.NewSerializeBuffer()
		if err := gopacket.SerializeLayers(sb, gopacket.SerializeOptions{FixLengths: true, ComputeChecksums: true}, ipl, udp, gopacket.Payload(make([]byte, n))); err != nil {
			t.Fatal(err)
		}
		p := sb.Bytes()
		ip, _ := ParseIPv4(p)
		u, res := ParseUDP(p, ip)
		if res != Unchanged || u.SrcPort != sp || u.DstPort != dp || u.Len != int(udp.Length) || u.PayloadLen != n {
			t.Fatalf("%v %+v, gopacket %+v", res, u, udp)
		}
		if !UDPChecksumOK(p) {
			t.Fatalf("checksum of %x", p)
		}
	}
}

func TestParseUDPRejects(t *testing.T) {
	udp := mkIP(t, kUDP, nil, []byte("hello"))
	mod := func(f func(b []byte)) []byte { b := bytes.Clone(udp); f(b); return b }
	for _, tc := range []struct {
		name string
		pkt  []byte
		want Result
	}{
		{"TCP", mkIP(t, kTCP, nil, nil), NotTCP},
		{"ICMP", mkIP(t, kICMP, nil, nil), NotTCP},
		{"MF", mod(func(b []byte) { b[6] |= 0x20 }), Fragment},
		{"offset", mod(func(b []byte) { b[7] = 1 }), Fragment},
		{"IPv4 payload < 8", mod(func(b []byte) { binary.BigEndian.PutUint16(b[2:], 27) }), Truncated},
		{"IPv4 payload empty", mod(func(b []byte) { binary.BigEndian.PutUint16(b[2:], 20) }), Truncated},
		{"UDP Length 7", mod(func(b []byte) { binary.BigEndian.PutUint16(b[24:], 7) }), BadHeader},
		{"UDP Length 0 (IPv6 jumbogram only)", mod(func(b []byte) { binary.BigEndian.PutUint16(b[24:], 0) }), BadHeader},
		{"UDP Length past the datagram", mod(func(b []byte) { binary.BigEndian.PutUint16(b[24:], 14) }), Truncated},
	} {
		ip, res := ParseIPv4(tc.pkt)
		if res != Unchanged {
			t.Fatalf("%s: ParseIPv4 %v", tc.name, res)
		}
		if u, res := ParseUDP(tc.pkt, ip); res != tc.want {
			t.Errorf("%s: %v %+v, want %v", tc.name, res, u, tc.want)
		}
		if UDPChecksumOK(tc.pkt) {
			t.Errorf("%s: checksum OK", tc.name)
		}
	}
	// A hand-made IPv4 value must not make ParseUDP panic.
	if _, res := ParseUDP(udp, IPv4{Proto: 17, HdrLen: 20, TotalLen: 1000}); res != BadHeader {
		t.Errorf("bogus IPv4 value: %v", res)
	}
	if _, res := ParseUDP(udp, IPv4{Proto: 17, HdrLen: 4, TotalLen: 33}); res != BadHeader {
		t.Errorf("bogus IPv4 value: %v", res)
	}
}

func TestUDPChecksumOK(t *testing.T) {
	pkt := mkIP(t, kUDP, ipOpts(ioRA()), []byte("odd"))
	if !UDPChecksumOK(pkt) {
		t.Fatal("gopacket-built datagram does not verify")
	}
	for i := range pkt {
		bad := clone(pkt)
		bad[i] ^= 0x10
		// Only the addresses (pseudo-header) and the UDP datagram are
		// covered; the protocol, flags/offset and length bytes make it
		// not UDP, a fragment or malformed.
		covered := i >= 12 && i < 20 || i >= 24 || i == 2 || i == 3 || i == 6 || i == 7 || i == 9 || i < 1
		if got := UDPChecksumOK(bad); got == covered {
			t.Errorf("byte %d flipped: OK = %v", i, got)
		}
	}
	// No checksum (RFC 768): zero is OK whatever the data.
	none := clone(pkt)
	none[24+6], none[24+7] = 0, 0
	none[len(none)-1] ^= 0xff
	if !UDPChecksumOK(none) {
		t.Error("zero checksum not OK")
	}
	if err, res := decodeUDPLayer(t, none).VerifyChecksum(); err != nil || !res.Valid {
		t.Error("gopacket disagrees on a zero checksum")
	}
	// A computed checksum of zero is sent as 0xffff (RFC 768): choose the
	// last two payload bytes so that the sum is all ones.
	p := mkIP(t, kUDP, nil, []byte{0, 0})
	c := binary.BigEndian.Uint16(p[26:28])
	p = mkIP(t, kUDP, nil, []byte{byte(c >> 8), byte(c)})
	if binary.BigEndian.Uint16(p[26:28]) != 0xffff || !UDPChecksumOK(p) {
		t.Errorf("0xffff checksum: %#04x OK=%v", binary.BigEndian.Uint16(p[26:28]), UDPChecksumOK(p))
	}
	if UDPChecksumOK(nil) || UDPChecksumOK(pkt[:30]) || UDPChecksumOK(mkIP(t, kTCP, nil, nil)) {
		t.Error("short or TCP input OK")
	}
	// Agreement with gopacket on random datagrams, some corrupted.
	r := rand.New(rand.NewPCG(5, 6))
	for i := range 500 {
		pl := make([]byte, r.IntN(64))
		for j := range pl {
			pl[j] = byte(r.Uint32())
		}
		p := mkIP(t, kUDP, nil, pl)
		if i%2 == 1 {
			p[20+r.IntN(len(p)-20)] ^= byte(1 + r.IntN(255))
			if binary.BigEndian.Uint16(p[24:26]) != uint16(len(p)-20) {
				continue // length changed: gopacket truncates silently
			}
		}
		_, res := decodeUDPLayer(t, p).VerifyChecksum()
		if got := UDPChecksumOK(p); got != res.Valid {
			t.Fatalf("%x: ours %v, gopacket %v", p, got, res.Valid)
		}
	}
}

// decodeUDPLayer decodes the IPv4 and UDP layers of pkt with gopacket,
// ready for VerifyChecksum.
func decodeUDPLayer(tb testing.TB, pkt []byte) *layers.UDP {
	tb.Helper()
	var ip layers.IPv4
	var u layers.UDP
	if err := ip.DecodeFromBytes(pkt, gopacket.NilDecodeFeedback); err != nil {
		tb.Fatal(err)
	}
	if err := u.DecodeFromBytes(ip.Payload, gopacket.NilDecodeFeedback); err != nil {
		tb.Fatal(err)
	}
	if err := u.SetNetworkLayerForChecksum(&ip); err != nil {
		tb.Fatal(err)
	}
	return &u
}
