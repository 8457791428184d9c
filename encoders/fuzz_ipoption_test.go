package encoders

import (
	"bytes"
	"net"
	"slices"
	"testing"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"

	"github.com/natreveal/natreveal/packet"
)

// ipSeeds adds the edge cases the IPv4 option, UDP and HIP fuzzers start
// from; each is also mutated by the fuzzing engine.
func ipSeeds(f *testing.F, add func(pkt []byte)) {
	const T = IPOptionExp
	pl := []byte("GET / HTTP/1.1\r\nHost: x\r\n\r\n!")
	// No options: TCP SYN, UDP with odd payload, ICMP echo.
	add(mkIP(f, kTCP, nil, nil))
	add(mkIP(f, kUDP, nil, pl))
	add(mkIP(f, kICMP, nil, pl))
	// Options already there: NOPs and EOL; record route and timestamp; router alert.
	add(mkIP(f, kTCP, ipOpts(ioNOP(), ioNOP(), ioNOP(), ioEOL()), nil))
	add(mkIP(f, kUDP, ipOpts(ioRR(2), ioTS(2)), pl))
	add(mkIP(f, kUDP, ipOpts(ioRA()), pl))
	// Forged HOST_IDs of each type and length, NOP aligned, first, twice.
	add(mkIP(f, kUDP, ipOpts(ioRA(), ioExp(T, 1, 2)), pl))
	add(mkIP(f, kTCP, ipOpts(ioExp(T, 1, 2, 3, 4), ioNOP(), ioNOP(), ioRA()), nil))
	add(mkIP(f, kUDP, ipOpts(ioExp(IPOptionExpClass2, 1, 2), ioExp(IPOptionExpCopied, 1, 2, 3, 4), ioExp(IPOptionExpCopiedClass2)), pl))
	add(mkIP(f, kTCP, ipOpts(ioExp(T, 9, 9), ioRR(1), ioExp(T, 1, 2, 3, 4, 5, 6, 7, 8)), nil))
	// 40 bytes full: nothing forged; forged inside; exactly room for ours.
	add(mkIP(f, kUDP, ipOpts(ioTS(9)), pl))
	add(mkIP(f, kTCP, ipOpts(ioTS(8), ioExp(T, 1, 2)), nil))
	add(mkIP(f, kUDP, ipOpts(ioRR(7), ioNOP()), pl))
	// EOL in the middle, forged option after it.
	add(mkIP(f, kTCP, ipOpts(ioRA(), ioEOL(), ioExp(T, 1, 2)), nil))
	// Malformed option length 1, and a type byte without length at the end.
	add(patchedIP(f, ipOpts(ioRA(), ioExp(T, 1, 2)), func(o []byte) { o[1] = 1 }))
	add(patchedIP(f, ipOpts(ioRA(), ioNOP(), ioNOP(), ioNOP(), ioNOP()), func(o []byte) { o[7] = T }))
	// UDP Length shorter than the payload; a 1500-byte datagram.
	short := mkIP(f, kUDP, nil, pl)
	short[25] = 10
	add(short)
	add(mkIP(f, kUDP, nil, make([]byte, 1472)))
	// A first fragment with a forged option.
	ip := ipHdr()
	ip.Flags, ip.Protocol, ip.Options = layers.IPv4MoreFragments, layers.IPProtocolUDP, ipOpts(ioExp(T, 1, 2))
	sb := gopacket.NewSerializeBuffer()
	if err := gopacket.SerializeLayers(sb, gopacket.SerializeOptions{FixLengths: true, ComputeChecksums: true}, ip, gopacket.Payload(pl)); err != nil {
		f.Fatal(err)
	}
	add(sb.Bytes())
	// HIP over IPv4 and IPv6.
	add(hip4(f, hipI1([]byte{100, 64, 0, 7, 198, 51, 100, 10})))
	add(hip6(f, hipI1(append(net.ParseIP("2001:db8::7").To16(), net.ParseIP("2001:db8:1::10").To16()...))))
	// Garbage and truncation.
	add(nil)
	add([]byte{0x45})
	add(bytes.Repeat([]byte{0x4f}, 60))
	add(mkIP(f, kUDP, ipOpts(ioRA()), pl)[:30])
}

// prepareIP is prepare plus a fixed UDP Length and checksum.
func prepareIP(data []byte, fix bool) []byte {
	pkt := prepare(data, fix)
	if fix {
		fixUDP(pkt)
		fixChecksums(pkt) // the IPv4 checksum does not depend on UDP
	}
	return pkt
}

// l4ChecksumOK reports whether the TCP or UDP checksum verifies.
func l4ChecksumOK(pkt []byte) bool { return TCPChecksumOK(pkt) || UDPChecksumOK(pkt) }

// gopacketIPValid reports whether gopacket decodes pkt without error, with
// Total Length equal to len(pkt) and every checksum it knows valid.
func gopacketIPValid(pkt []byte) bool {
	p := gopacket.NewPacket(pkt, layers.LayerTypeIPv4, gopacket.DecodeOptions{})
	ip, _ := p.Layer(layers.LayerTypeIPv4).(*layers.IPv4)
	if p.ErrorLayer() != nil || ip == nil || int(ip.Length) != len(pkt) {
		return false
	}
	switch l := p.TransportLayer().(type) {
	case *layers.TCP:
		_ = l.SetNetworkLayerForChecksum(ip)
	case *layers.UDP:
		_ = l.SetNetworkLayerForChecksum(ip)
	}
	err, bad := p.VerifyChecksums()
	return err == nil && len(bad) == 0
}

// ipOptList returns the options up to EOL that are neither NOP nor of an
// RFC 4727 experimental type (t is one: natreveal strips them all), the
// number of those, and where the last option ends.
func ipOptList(opts []byte, t byte) (others []string, ofType, end int) {
	for i := 0; i < len(opts); {
		l := optLen(opts, i)
		if l <= 0 {
			break
		}
		switch o := opts[i : i+l]; o[0] {
		case optNOP:
		case IPOptionExp, IPOptionExpClass2, IPOptionExpCopied, IPOptionExpCopiedClass2:
			ofType++
		default:
			others = append(others, string(o))
		}
		i += l
		end = i
	}
	return others, ofType, end
}

// ipParts returns a parsed datagram's options and upper layer.
func ipParts(t *testing.T, pkt []byte) (opts, upper []byte) {
	ip, res := ParseIPv4(pkt)
	if res != Unchanged {
		t.Fatalf("does not parse: %v", res)
	}
	return pkt[20:ip.HdrLen], pkt[ip.HdrLen:ip.TotalLen]
}

func FuzzAddIPOption(f *testing.F) {
	ipSeeds(f, func(p []byte) {
		f.Add(p, uint8(0), uint32(0xa1b2c3d4), true, uint16(1500), false)
		f.Add(p, uint8(2), uint32(0xbeef), false, uint16(0), true)
	})
	f.Fuzz(func(t *testing.T, data []byte, sel uint8, id uint32, long bool, mtu uint16, fix bool) {
		pkt := prepareIP(data, fix)
		typ := ipOptionTypes[sel%4]
		before := bytes.Clone(pkt)
		ipOK, l4OK, gpOK := IPv4ChecksumOK(pkt), l4ChecksumOK(pkt), gopacketIPValid(pkt)
		idLen := fuzzIDLen(long)
		view := pv(pkt, len(pkt))
		n, res, stripped := AddIPOption(view, pkt, typ, id, idLen, int(mtu))
		checkView(t, view, pkt)
		after, changed := checkAdded(t, pkt, before, n, res, stripped, func(after []byte) bool {
			got, l, ok := IPOptionHostID(after, typ)
			return ok && l == idLen && got == id&uint32(1<<(8*idLen)-1)
		})
		if !changed {
			return
		}
		oldOpts, oldUpper := ipParts(t, before)
		newOpts, newUpper := ipParts(t, after)
		if !bytes.Equal(oldUpper, newUpper) {
			t.Fatal("upper layer changed")
		}
		oldOthers, _, _ := ipOptList(oldOpts, typ)
		newOthers, count, end := ipOptList(newOpts, typ)
		if !slices.Equal(oldOthers, newOthers) {
			t.Fatalf("options changed: %x -> %x", oldOpts, newOpts)
		}
		if !bytes.Equal(newOpts[end:], make([]byte, len(newOpts)-end)) || len(newOpts)-end >= 4 {
			t.Fatalf("padding: %x", newOpts)
		}
		if ipOK && !IPv4ChecksumOK(after) || l4OK && !l4ChecksumOK(after) {
			t.Fatalf("checksums broken: %x -> %x", before, after)
		}
		if gpOK && !gopacketIPValid(after) {
			t.Fatalf("gopacket accepted the input but rejects the output: %x -> %x", before, after)
		}
		switch {
		case res == Written:
			got, gotLen, ok := IPOptionHostID(after, typ)
			if !ok || gotLen != idLen || got != id&uint32(1<<(8*idLen)-1) || count != 1 {
				t.Fatalf("IPOptionHostID = %#x %d %v, %d options", got, gotLen, ok, count)
			}
			ip, _ := ParseIPv4(before)
			if n > ip.TotalLen && mtu > 0 && n > int(mtu) {
				t.Fatalf("grew to %d over mtu %d", n, mtu)
			}
			again := bytes.Clone(after)
			if _, res, _ := AddIPOption(pv(again, len(again)), again, typ, id, idLen, int(mtu)); res != Unchanged {
				t.Fatalf("second pass: %v", res)
			}
			view := pv(again, len(again))
			sn, sres := StripIPOption(view, again, typ)
			checkView(t, view, again)
			if _, _, ok := IPOptionHostID(again[:sn], typ); sres != Written || ok {
				t.Fatalf("strip after add: %v", sres)
			}
			if ipOK && !IPv4ChecksumOK(again[:sn]) {
				t.Fatal("strip broke the checksum")
			}
		default: // stripped, ours not added
			if count != 0 || n > len(before) {
				t.Fatalf("%v stripped: %d left, %d -> %d bytes", res, count, len(before), n)
			}
		}
	})
}

func FuzzIPOptionHostID(f *testing.F) {
	ipSeeds(f, func(p []byte) { f.Add(p, uint8(0), false); f.Add(p, uint8(3), true) })
	f.Fuzz(func(t *testing.T, data []byte, sel uint8, fix bool) {
		pkt := prepareIP(data, fix)
		typ := ipOptionTypes[sel%4]
		id, idLen, ok := IPOptionHostID(pkt, typ)
		if ok {
			hl := int(pkt[0]&0x0f) * 4
			id2, l2, ok2 := HostIDFromIPOptions(pkt[20:hl], typ)
			if idLen != 2 && idLen != 4 || id2 != id || l2 != idLen || !ok2 || idLen == 2 && id > 0xffff {
				t.Fatalf("%#x %d vs %#x %d %v", id, idLen, id2, l2, ok2)
			}
			// gopacket sees the same first option of the type.
			var ip layers.IPv4
			if ip.DecodeFromBytes(pkt, gopacket.NilDecodeFeedback) == nil {
				for _, o := range ip.Options {
					if o.OptionType == 0 {
						t.Fatal("gopacket: EOL before our option")
					}
					if o.OptionType == typ {
						if len(o.OptionData) != idLen || !bytes.Equal(o.OptionData, wantIPHostID(id, idLen)) {
							t.Fatalf("gopacket: %v", o)
						}
						break
					}
				}
			}
		}
		before := bytes.Clone(pkt)
		ipOK := IPv4ChecksumOK(pkt)
		view := pv(pkt, len(pkt))
		n, res := StripIPOption(view, pkt, typ)
		checkView(t, view, pkt)
		switch res {
		case Written:
			if _, _, ok := IPOptionHostID(pkt[:n], typ); ok {
				t.Fatal("option left after strip")
			}
			if _, oldUpper := ipParts(t, before); !bytes.Equal(oldUpper, pkt[n-len(oldUpper):n]) {
				t.Fatal("upper layer changed")
			}
			if ipOK && !IPv4ChecksumOK(pkt[:n]) {
				t.Fatal("checksum broken")
			}
		default:
			if n != len(before) || !bytes.Equal(pkt, before) {
				t.Fatalf("%v but packet changed", res)
			}
			if res == Unchanged && ok {
				t.Fatal("unchanged with an option of the type")
			}
		}
	})
}

func FuzzParseUDP(f *testing.F) {
	ipSeeds(f, func(p []byte) { f.Add(p, false); f.Add(p, true) })
	f.Fuzz(func(t *testing.T, data []byte, fix bool) {
		pkt := prepareIP(data, fix)
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

func FuzzHIPSenderHIT(f *testing.F) {
	ipSeeds(f, func(p []byte) { f.Add(p) })
	f.Fuzz(func(t *testing.T, data []byte) {
		hit, ok := HIPSenderHIT(data)
		if !ok {
			if hit != [16]byte{} {
				t.Fatal("HIT without ok")
			}
			return
		}
		off := 40 // IPv6
		if data[0]>>4 == 4 {
			ip, res := ParseIPv4(data)
			if res != Unchanged || ip.Proto != 139 || ip.IsFragment() {
				t.Fatalf("accepted %v %+v", res, ip)
			}
			off = ip.HdrLen
		} else if data[0]>>4 != 6 || data[6] != 139 {
			t.Fatalf("accepted version %d next header %d", data[0]>>4, data[6])
		}
		if !bytes.Equal(hit[:], data[off+8:off+24]) || (int(data[off+1])+1)*8 < 40 {
			t.Fatalf("HIT %x at %d", hit, off)
		}
	})
}

func BenchmarkAddIPOption(b *testing.B) {
	var view packet.View // on the stack: a caller keeps its view there
	orig := mkIP(b, kTCP, nil, nil)
	buf := make([]byte, len(orig), len(orig)+Headroom)
	b.ReportAllocs()
	for b.Loop() {
		copy(buf[:len(orig)], orig)
		if _, res, _ := AddIPOption(pvAt(&view, buf, len(orig)), buf, IPOptionExp, 0xa1b2c3d4, 4, 1500); res != Written {
			b.Fatal(res)
		}
	}
}

func BenchmarkAddIPOptionUDP(b *testing.B) {
	var view packet.View // on the stack: a caller keeps its view there
	orig := mkIP(b, kUDP, ipOpts(ioRA(), ioExp(IPOptionExp, 1, 2)), make([]byte, 1400))
	buf := make([]byte, len(orig), len(orig)+Headroom)
	b.ReportAllocs()
	b.SetBytes(int64(len(orig)))
	for b.Loop() {
		copy(buf[:len(orig)], orig)
		if _, res, _ := AddIPOption(pvAt(&view, buf, len(orig)), buf, IPOptionExp, 0xa1b2c3d4, 4, 1500); res != Written {
			b.Fatal(res)
		}
	}
}

func BenchmarkIPOptionHostID(b *testing.B) {
	pkt := mkIP(b, kTCP, ipOpts(ioRA(), ioExp(IPOptionExp, 1, 2, 3, 4)), nil)
	b.ReportAllocs()
	for b.Loop() {
		if _, _, ok := IPOptionHostID(pkt, IPOptionExp); !ok {
			b.Fatal("no option")
		}
	}
}

func BenchmarkParseUDP(b *testing.B) {
	pkt := mkIP(b, kUDP, nil, make([]byte, 100))
	b.ReportAllocs()
	for b.Loop() {
		ip, _ := ParseIPv4(pkt)
		if _, res := ParseUDP(pkt, ip); res != Unchanged {
			b.Fatal(res)
		}
	}
}

func BenchmarkHIPSenderHIT(b *testing.B) {
	pkt := hip4(b, hipI1([]byte{100, 64, 0, 7, 198, 51, 100, 10}))
	b.ReportAllocs()
	for b.Loop() {
		if _, ok := HIPSenderHIT(pkt); !ok {
			b.Fatal("no HIT")
		}
	}
}

// TestZeroAllocsIPOption asserts that the new hot functions never allocate.
func TestZeroAllocsIPOption(t *testing.T) {
	var view packet.View // on the stack: a caller keeps its view there
	const T = IPOptionExp
	syn := mkIP(t, kTCP, nil, nil)
	forged := mkIP(t, kUDP, ipOpts(ioRA(), ioExp(T, 1, 2)), make([]byte, 1400))
	h4 := hip4(t, hipI1([]byte{100, 64, 0, 7, 198, 51, 100, 10}))
	h6 := hip6(t, hipI1(make([]byte, 32)))
	ip, _ := ParseIPv4(forged)
	buf := make([]byte, 0, 2000)
	for name, f := range map[string]func(){
		"AddIPOption": func() {
			buf = append(buf[:0], syn...)
			AddIPOption(pvAt(&view, buf, len(buf)), buf, T, 0x01020304, 4, 1500)
		},
		"AddIPOption forged": func() {
			buf = append(buf[:0], forged...)
			AddIPOption(pvAt(&view, buf, len(buf)), buf, T, 0x01020304, 4, 0)
		},
		"AddIPOption no room": func() {
			buf = append(buf[:0], forged...)
			AddIPOption(pvAt(&view, buf[:len(forged):len(forged)], len(forged)), buf[:len(forged):len(forged)], T, 0x01020304, 4, 0)
		},
		"StripIPOption": func() {
			buf = append(buf[:0], forged...)
			StripIPOption(pvAt(&view, buf, len(buf)), buf, T)
		},
		"IPOptionHostID":      func() { IPOptionHostID(forged, T) },
		"HostIDFromIPOptions": func() { HostIDFromIPOptions(forged[20:28], T) },
		"IPOptionTypeValid":   func() { IPOptionTypeValid(T) },
		"ParseUDP":            func() { ParseUDP(forged, ip) },
		"UDPChecksumOK":       func() { UDPChecksumOK(forged) },
		"HIPSenderHIT v4":     func() { HIPSenderHIT(h4) },
		"HIPSenderHIT v6":     func() { HIPSenderHIT(h6) },
	} {
		if a := testing.AllocsPerRun(100, f); a != 0 {
			t.Errorf("%s: %v allocs/op", name, a)
		}
	}
}
