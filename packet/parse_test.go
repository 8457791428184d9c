package packet_test

import (
	"bytes"
	"encoding/binary"
	"math/rand/v2"
	"testing"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
	"github.com/natreveal/natreveal/internal/packettest"
	"github.com/natreveal/natreveal/method/destopt"
	"github.com/natreveal/natreveal/method/ipid"
	"github.com/natreveal/natreveal/method/tcpoption"
	"github.com/natreveal/natreveal/packet"
	. "github.com/natreveal/natreveal/packet"
)

func TestParse(t *testing.T) {
	pkt := packettest.Build(t, packettest.IPHdr(), packettest.SYNHdr(packettest.LinuxSYN()...), nil)
	ip, res := ParseIPv4(pkt)
	if res != Unchanged {
		t.Fatalf("ParseIPv4: %v", res)
	}
	want := IPv4{HdrLen: 20, TotalLen: 60, Proto: 6, ID: 0x1234, DF: true, Src: [4]byte{100, 64, 0, 7}, Dst: [4]byte{198, 51, 100, 10}}
	if ip != want {
		t.Errorf("IPv4 = %+v, want %+v", ip, want)
	}
	tcp, res := ParseTCP(pkt, ip)
	if res != Unchanged {
		t.Fatalf("ParseTCP: %v", res)
	}
	wantTCP := TCP{Off: 20, HdrLen: 40, SrcPort: 40000, DstPort: 443, Seq: 0x01020304, Flags: FlagSYN, MSS: 1460}
	if tcp != wantTCP {
		t.Errorf("TCP = %+v, want %+v", tcp, wantTCP)
	}

	data := packettest.Build(t, packettest.IPHdr(), packettest.DataHdr(packettest.ONOP(), packettest.ONOP(), packettest.OTS()), []byte("hello"))
	data = append(data, 0, 0, 0) // trailing bytes past Total Length are ignored
	ip, _ = ParseIPv4(data)
	tcp, res = ParseTCP(data, ip)
	if res != Unchanged || tcp.PayloadLen != 5 || tcp.MSS != 0 || tcp.Flags != FlagACK|FlagPSH || tcp.Ack != 0xa0b0c0d0 || ip.TotalLen != len(data)-3 {
		t.Errorf("data packettest.Segment: %v %+v %+v", res, ip, tcp)
	}

	// Each flag bit lands where gopacket puts it.
	for bit, set := range map[uint8]func(*layers.TCP){
		FlagFIN: func(h *layers.TCP) { h.FIN = true }, FlagSYN: func(h *layers.TCP) { h.SYN = true },
		FlagRST: func(h *layers.TCP) { h.RST = true }, FlagPSH: func(h *layers.TCP) { h.PSH = true },
		FlagACK: func(h *layers.TCP) { h.ACK = true }, FlagURG: func(h *layers.TCP) { h.URG = true },
		FlagECE: func(h *layers.TCP) { h.ECE = true }, FlagCWR: func(h *layers.TCP) { h.CWR = true },
	} {
		h := &layers.TCP{SrcPort: 1, DstPort: 2}
		set(h)
		p := packettest.Build(t, packettest.IPHdr(), h, nil)
		ip, _ := ParseIPv4(p)
		if tcp, _ := ParseTCP(p, ip); tcp.Flags != bit {
			t.Errorf("flag %#x parsed as %#x", bit, tcp.Flags)
		}
	}
}

func TestParseRejects(t *testing.T) {
	syn := packettest.Build(t, packettest.IPHdr(), packettest.SYNHdr(packettest.LinuxSYN()...), nil)
	mod := func(f func(b []byte)) []byte { b := bytes.Clone(syn); f(b); return b }
	for _, tc := range []struct {
		name    string
		pkt     []byte
		ipRes   Result
		tcpRes  Result
		isFrag  bool
		noParse bool
	}{
		{"empty", nil, Truncated, 0, false, true},
		{"19 bytes", syn[:19], Truncated, 0, false, true},
		{"version 6", mod(func(b []byte) { b[0] = 0x65 }), BadHeader, 0, false, true},
		{"IHL 4", mod(func(b []byte) { b[0] = 0x44 }), BadHeader, 0, false, true},
		{"IHL 15 > total", mod(func(b []byte) { b[0] = 0x4f; binary.BigEndian.PutUint16(b[2:], 40) }), BadHeader, 0, false, true},
		{"total < IHL", mod(func(b []byte) { binary.BigEndian.PutUint16(b[2:], 19) }), BadHeader, 0, false, true},
		{"total > len", mod(func(b []byte) { binary.BigEndian.PutUint16(b[2:], 61) }), Truncated, 0, false, true},
		{"UDP", mod(func(b []byte) { b[9] = 17 }), Unchanged, NotTCP, false, false},
		{"MF", mod(func(b []byte) { b[6] |= 0x20 }), Unchanged, Fragment, true, false},
		{"offset", mod(func(b []byte) { b[7] = 3 }), Unchanged, Fragment, true, false},
		{"packettest.Segment < 20", mod(func(b []byte) { binary.BigEndian.PutUint16(b[2:], 39) }), Unchanged, Truncated, false, false},
		{"data offset 0", mod(func(b []byte) { b[32] = 0 }), Unchanged, BadHeader, false, false},
		{"data offset past end", mod(func(b []byte) { b[32] = 0xb0 }), Unchanged, Truncated, false, false},
		{"MSS after malformed option", packettest.Patched(t, packettest.SYNHdr(layers.TCPOption{OptionType: 30, OptionData: []byte{0, 0}}, packettest.OMSS(1400)), func(o []byte) { o[1] = 0 }), Unchanged, BadHeader, false, false},
	} {
		ip, res := ParseIPv4(tc.pkt)
		if res != tc.ipRes {
			t.Errorf("%s: ParseIPv4 %v, want %v", tc.name, res, tc.ipRes)
			continue
		}
		if tc.noParse {
			continue
		}
		if ip.IsFragment() != tc.isFrag {
			t.Errorf("%s: IsFragment %v", tc.name, ip.IsFragment())
		}
		if _, res := ParseTCP(tc.pkt, ip); res != tc.tcpRes {
			t.Errorf("%s: ParseTCP %v, want %v", tc.name, res, tc.tcpRes)
		}
	}
	// A hand-made IPv4 value must not make ParseTCP panic.
	if _, res := ParseTCP(syn, IPv4{Proto: 6, HdrLen: 20, TotalLen: 1000}); res != BadHeader {
		t.Errorf("bogus IPv4 value: %v", res)
	}
	// MSS after EOL does not count; a wrong-length MSS is skipped.
	p := packettest.Build(t, packettest.IPHdr(), packettest.SYNHdr(packettest.OEOL(), packettest.OMSS(1400)), nil)
	ip, _ := ParseIPv4(p)
	if tcp, res := ParseTCP(p, ip); res != Unchanged || tcp.MSS != 0 {
		t.Errorf("MSS after EOL: %v %d", res, tcp.MSS)
	}
	p = packettest.Build(t, packettest.IPHdr(), packettest.SYNHdr(layers.TCPOption{OptionType: 2, OptionData: []byte{1, 2, 3}}, packettest.OMSS(1300)), nil)
	ip, _ = ParseIPv4(p)
	if tcp, _ := ParseTCP(p, ip); tcp.MSS != 1300 {
		t.Errorf("MSS %d, want 1300", tcp.MSS)
	}
}

func TestResultString(t *testing.T) {
	seen := map[string]bool{}
	for r := Result(0); r < NumResults; r++ {
		s := r.String()
		if s == "" || s == "unknown" || seen[s] {
			t.Errorf("Result(%d).String() = %q", r, s)
		}
		seen[s] = true
	}
	if NumResults.String() != "unknown" || Result(255).String() != "unknown" {
		t.Error("out of range")
	}
	if Written.String() != "written" || NoOptionSpace.String() != "no-option-space" {
		t.Error("names")
	}
}

func TestParseIPv6(t *testing.T) {
	syn := func() *layers.TCP { return packettest.SYNHdr(packettest.LinuxSYN()...) }
	frag := &layers.IPv6Fragment{MoreFragments: true, Identification: 7}
	for _, tc := range []struct {
		name string
		pkt  []byte
		want IPv6 // Src, Dst, HopLimit, PayloadLen, TotalLen filled in below
	}{
		{"TCP", packettest.Build6(t, packettest.IP6Hdr(), syn()), IPv6{NextHdr: 6, Proto: 6, Off: 40, ProtoField: 6}},
		{"UDP", packettest.Build6(t, packettest.IP6Hdr(), &layers.UDP{SrcPort: 1, DstPort: 2}, gopacket.Payload("x")), IPv6{NextHdr: 17, Proto: 17, Off: 40, ProtoField: 6}},
		{"Hop-by-Hop", packettest.Build6(t, packettest.IP6Hdr(), packettest.HBH6(), syn()), IPv6{NextHdr: 0, Proto: 6, Off: 48, ProtoField: 40}},
		{"final Destination Options", packettest.Build6(t, packettest.IP6Hdr(), packettest.HBH6(), packettest.Dest6(packettest.DOpt(0x11, []byte{1, 2, 3})), syn()),
			IPv6{NextHdr: 0, Proto: 6, Off: 56, ProtoField: 48, DestOff: 48, DestField: 40}},
		{"Destination Options before Routing", packettest.Build6(t, packettest.IP6Hdr(), packettest.Dest6(packettest.DOpt(0x11, []byte{1})), packettest.Routing6(2, 0, packettest.Mid6), syn()),
			IPv6{NextHdr: 60, Proto: 6, Off: 72, ProtoField: 48}},
		{"Routing with segments left", packettest.Build6(t, packettest.IP6Hdr(), packettest.Routing6(2, 1, packettest.Mid6), packettest.Dest6(packettest.DOpt(0x11, nil)), syn()),
			IPv6{NextHdr: 43, Proto: 6, Off: 72, ProtoField: 64, DestOff: 64, DestField: 40, RoutingOff: 40}},
		{"fragment", packettest.Build6(t, packettest.IP6Hdr(), packettest.HBH6(), frag, syn()), IPv6{NextHdr: 0, Proto: 6, Off: 56, ProtoField: 48, Frag: true}},
		{"AH", packettest.Build6(t, packettest.IP6Hdr(), &packettest.AHHdr{ICV: 12}, syn()), IPv6{NextHdr: 51, Proto: 6, Off: 64, ProtoField: 40, AH: true}},
		{"ESP is an upper layer", func() []byte {
			p := packettest.Build6(t, packettest.IP6Hdr(), syn())
			p[6] = 50
			return p
		}(), IPv6{NextHdr: 50, Proto: 50, Off: 40, ProtoField: 6}},
		{"No Next Header, empty", func() []byte {
			p := packettest.Build6(t, packettest.IP6Hdr(), syn())[:40]
			p[4], p[5], p[6] = 0, 0, 59
			return p
		}(), IPv6{NextHdr: 59, Proto: 59, Off: 40, ProtoField: 6}},
		{"trailing bytes", append(packettest.Build6(t, packettest.IP6Hdr(), syn()), 0xee, 0xee), IPv6{NextHdr: 6, Proto: 6, Off: 40, ProtoField: 6}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ip, res := ParseIPv6(tc.pkt)
			if res != Unchanged {
				t.Fatalf("%v", res)
			}
			w := tc.want
			w.PayloadLen = int(binary.BigEndian.Uint16(tc.pkt[4:6]))
			w.TotalLen, w.HopLimit = 40+w.PayloadLen, 64
			copy(w.Src[:], packettest.Src6)
			copy(w.Dst[:], packettest.Dst6)
			if ip != w {
				t.Errorf("got  %+v\nwant %+v", ip, w)
			}
			if ip.IsFragment() != w.Frag {
				t.Error("IsFragment")
			}
			// gopacket puts the upper layer at the same offset.
			if ip.Proto == 6 && !ip.Frag {
				d := packettest.Decode6(t, tc.pkt[:ip.TotalLen])
				if ip.Off != ip.TotalLen-len(d.Upper) {
					t.Errorf("upper layer at %d, gopacket %d", ip.Off, ip.TotalLen-len(d.Upper))
				}
				if tcp, res := ParseTCP6(tc.pkt, ip); res != Unchanged || tcp.Off != ip.Off || tcp.MSS != 1460 || tcp.Flags != FlagSYN || tcp.HdrLen != 40 {
					t.Errorf("ParseTCP6: %v %+v", res, tcp)
				}
			}
		})
	}
}

func TestParseIPv6Rejects(t *testing.T) {
	syn := packettest.Build6(t, packettest.IP6Hdr(), packettest.SYNHdr(packettest.LinuxSYN()...))
	withHBH := packettest.Build6(t, packettest.IP6Hdr(), packettest.HBH6(), packettest.SYNHdr(packettest.LinuxSYN()...))
	withAH := packettest.Build6(t, packettest.IP6Hdr(), &packettest.AHHdr{ICV: 4}, packettest.SYNHdr())
	mod := func(p []byte, f func(b []byte)) []byte { b := bytes.Clone(p); f(b); return b }
	setLen := func(b []byte, n int) { binary.BigEndian.PutUint16(b[4:], uint16(n)) }
	for _, tc := range []struct {
		name string
		pkt  []byte
		want Result
	}{
		{"empty", nil, Truncated},
		{"39 bytes", syn[:39], Truncated},
		{"version 4", mod(syn, func(b []byte) { b[0] = 0x45 }), BadHeader},
		{"payload past the packet", syn[:79], Truncated},
		{"extension header past the payload", mod(withHBH, func(b []byte) { b[41] = 200 }), Truncated},
		{"extension header cut in its first 2 bytes", mod(withHBH, func(b []byte) { setLen(b, 1) }), Truncated},
		{"Hop-by-Hop not first", mod(withHBH, func(b []byte) { b[40] = 0 }), BadHeader},
		{"AH shorter than 12 bytes", mod(withAH, func(b []byte) { b[41] = 0 }), BadHeader},
		{"AH past the payload", mod(withAH, func(b []byte) { b[41] = 100 }), Truncated},
		{"jumbogram", mod(withHBH, func(b []byte) { setLen(b, 0) }), BadHeader},
		{"Fragment header cut", mod(syn, func(b []byte) { b[6] = 44; setLen(b, 7) }), Truncated},
	} {
		if _, res := ParseIPv6(tc.pkt); res != tc.want {
			t.Errorf("%s: %v, want %v", tc.name, res, tc.want)
		}
	}
	ip, _ := ParseIPv6(syn)
	for _, tc := range []struct {
		name string
		pkt  []byte
		ip   IPv6
		want Result
	}{
		{"UDP", syn, IPv6{Proto: 17, Off: 40, TotalLen: 80}, NotTCP},
		{"fragment", syn, IPv6{Proto: 6, Off: 40, TotalLen: 80, Frag: true}, Fragment},
		{"bogus offset", syn, IPv6{Proto: 6, Off: 12, TotalLen: 80}, BadHeader},
		{"bogus length", syn, IPv6{Proto: 6, Off: 40, TotalLen: 1000}, BadHeader},
		{"packettest.Segment < 20", mod(syn, func(b []byte) { setLen(b, 19) }), IPv6{Proto: 6, Off: 40, TotalLen: 59}, Truncated},
		{"data offset 4", mod(syn, func(b []byte) { b[52] = 0x40 }), ip, BadHeader},
	} {
		if _, res := ParseTCP6(tc.pkt, tc.ip); res != tc.want {
			t.Errorf("ParseTCP6 %s: %v, want %v", tc.name, res, tc.want)
		}
	}
}

func BenchmarkParseIPv6(b *testing.B) {
	pkt := packettest.Build6(b, packettest.IP6Hdr(), packettest.HBH6(), packettest.Dest6(packettest.HomeAddr()), packettest.SYNHdr(packettest.LinuxSYN()...))
	b.ReportAllocs()
	for b.Loop() {
		ip, res := ParseIPv6(pkt)
		if res != Unchanged {
			b.Fatal(res)
		}
		if _, res := ParseTCP6(pkt, ip); res != Unchanged {
			b.Fatal(res)
		}
	}
}

func TestParseUDP(t *testing.T) {
	pkt := packettest.MkIP(t, packettest.KUDP, nil, []byte("hello"))
	ip, res := ParseIPv4(pkt)
	if res != Unchanged {
		t.Fatal(res)
	}
	u, res := ParseUDP(pkt, ip)
	if want := (UDP{SrcPort: 40000, DstPort: 9999, Len: 13, PayloadLen: 5}); res != Unchanged || u != want {
		t.Errorf("%v %+v, want %+v", res, u, want)
	}
	// After IP options, and with bytes past Total Length.
	pkt = append(packettest.MkIP(t, packettest.KUDP, packettest.IPOpts(packettest.IORA(), packettest.IORR(2)), make([]byte, 1000)), 1, 2, 3)
	ip, _ = ParseIPv4(pkt)
	if u, res := ParseUDP(pkt, ip); res != Unchanged || u.Len != 1008 || u.PayloadLen != 1000 || ip.HdrLen != 36 {
		t.Errorf("with options: %v %+v", res, u)
	}
	// UDP Length shorter than the IPv4 payload: the surplus is not data.
	pkt = packettest.MkIP(t, packettest.KUDP, nil, []byte("hello world"))
	binary.BigEndian.PutUint16(pkt[24:], 8+5)
	ip, _ = ParseIPv4(pkt)
	if u, res := ParseUDP(pkt, ip); res != Unchanged || u.Len != 13 || u.PayloadLen != 5 {
		t.Errorf("surplus: %v %+v", res, u)
	}
	// Fields land where gopacket puts them.
	r := rand.New(rand.NewPCG(3, 4))
	for range 100 {
		sp, dp, n := uint16(r.Uint32()), uint16(r.Uint32()), r.IntN(200)
		ipl := packettest.IPHdr()
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
	udp := packettest.MkIP(t, packettest.KUDP, nil, []byte("hello"))
	mod := func(f func(b []byte)) []byte { b := bytes.Clone(udp); f(b); return b }
	for _, tc := range []struct {
		name string
		pkt  []byte
		want Result
	}{
		{"TCP", packettest.MkIP(t, packettest.KTCP, nil, nil), NotTCP},
		{"ICMP", packettest.MkIP(t, packettest.KICMP, nil, nil), NotTCP},
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

func FuzzParseIPv4(f *testing.F) {
	packettest.Corpus(f, func(p []byte) { f.Add(p) })
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
		tcpoption.HostIDOption(data)
		tcpoption.HostIDFromTCPHeader(data)
		ipid.IPID(data)
		TCPChecksumOK(data)
		IPv4ChecksumOK(data)
	})
}

func FuzzParseIPv6(f *testing.F) {
	packettest.Corpus6(f, func(p []byte) { f.Add(p, false) })
	f.Fuzz(func(t *testing.T, data []byte, fix bool) {
		pkt := packettest.Prepare6(data, fix)
		ip, res := ParseIPv6(pkt)
		if res == Unchanged {
			switch {
			case ip.TotalLen != 40+ip.PayloadLen || ip.TotalLen > len(pkt) || ip.Off < 40 || ip.Off > ip.TotalLen:
				t.Fatalf("lengths %+v", ip)
			case ip.ProtoField >= ip.Off || pkt[ip.ProtoField] != ip.Proto:
				t.Fatalf("Proto field %+v", ip)
			case ip.DestOff != 0 && (pkt[ip.DestField] != packet.ProtoDstOpts || ip.DestOff+ExtLen(pkt[ip.DestOff+1]) != ip.Off || ip.ProtoField != ip.DestOff):
				t.Fatalf("final Destination Options %+v", ip)
			case ip.RoutingOff != 0 && (ip.RoutingOff >= ip.Off || pkt[ip.RoutingOff+3] == 0):
				t.Fatalf("Routing %+v", ip)
			}
			if tcp, r := ParseTCP6(pkt, ip); r == Unchanged {
				if tcp.Off != ip.Off || tcp.Off+tcp.HdrLen+tcp.PayloadLen != ip.TotalLen {
					t.Fatalf("inconsistent %+v", tcp)
				}
				// gopacket puts TCP where we do.
				if d, err := packettest.GopacketDecode6(pkt[:ip.TotalLen]); err == "" && d.TCP != nil && len(d.Upper) != ip.TotalLen-ip.Off {
					t.Fatalf("TCP at %d, gopacket at %d", ip.Off, ip.TotalLen-len(d.Upper))
				}
			}
		}
		tcpoption.HostIDOption6(pkt)
		TCPChecksumOK6(pkt)
		destopt.DestOptHostID(pkt, packettest.DestOptType)
		destopt.HostIDFromDestOpts(pkt, packettest.DestOptType)
		b := bytes.Clone(pkt)
		LowerMSS6(packettest.PV(b, len(b)), b, 40)
	})
}

func FuzzParseUDP(f *testing.F) {
	packettest.IPCorpus(f, func(p []byte) { f.Add(p, false); f.Add(p, true) })
	f.Fuzz(func(t *testing.T, data []byte, fix bool) {
		pkt := packettest.PrepareIP(data, fix)
		ok := UDPChecksumOK(pkt)
		ip, res := ParseIPv4(pkt)
		if res != Unchanged {
			if ok {
				t.Fatal("checksum OK without IPv4")
			}
			return
		}
		u, res := ParseUDP(pkt, ip)
		if res != Unchanged {
			if ok {
				t.Fatalf("checksum OK with %v", res)
			}
			return
		}
		if u.Len < 8 || ip.HdrLen+u.Len > ip.TotalLen || u.PayloadLen != u.Len-8 {
			t.Fatalf("inconsistent %+v %+v", ip, u)
		}
		// gopacket reads the same header and, without source routes to
		// change its pseudo-header, agrees on the checksum.
		var gi layers.IPv4
		var gu layers.UDP
		if gu.DecodeFromBytes(pkt[ip.HdrLen:ip.TotalLen], gopacket.NilDecodeFeedback) != nil {
			t.Fatal("gopacket rejects what ParseUDP accepts")
		}
		if uint16(gu.SrcPort) != u.SrcPort || uint16(gu.DstPort) != u.DstPort || int(gu.Length) != u.Len || len(gu.Payload) != u.PayloadLen {
			t.Fatalf("gopacket %+v, ours %+v", gu, u)
		}
		if ip.HdrLen == 20 && gi.DecodeFromBytes(pkt, gopacket.NilDecodeFeedback) == nil {
			_ = gu.SetNetworkLayerForChecksum(&gi)
			if err, r := gu.VerifyChecksum(); err != nil || r.Valid != ok {
				t.Fatalf("checksum: ours %v, gopacket %v (%v)", ok, r.Valid, err)
			}
		}
	})
}

func BenchmarkParseUDP(b *testing.B) {
	pkt := packettest.MkIP(b, packettest.KUDP, nil, make([]byte, 100))
	b.ReportAllocs()
	for b.Loop() {
		ip, _ := ParseIPv4(pkt)
		if _, res := ParseUDP(pkt, ip); res != Unchanged {
			b.Fatal(res)
		}
	}
}

func BenchmarkParse(b *testing.B) {
	pkt := packettest.Build(b, packettest.IPHdr(), packettest.SYNHdr(packettest.LinuxSYN()...), nil)
	b.ReportAllocs()
	for b.Loop() {
		ip, res := ParseIPv4(pkt)
		if res != Unchanged {
			b.Fatal(res)
		}
		if _, res := ParseTCP(pkt, ip); res != Unchanged {
			b.Fatal(res)
		}
	}
}
