package ipoption

import (
	"bytes"
	"slices"
	"testing"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
	"github.com/natreveal/natreveal/internal/packettest"
	. "github.com/natreveal/natreveal/packet"
)

// ipOptList returns the options up to EOL that are neither NOP nor of an
// RFC 4727 experimental type (t is one: natreveal strips them all), the
// number of those, and where the last option ends.
func ipOptList(opts []byte, t byte) (others []string, ofType, end int) {
	for i := 0; i < len(opts); {
		l := OptLen(opts, i)
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
	packettest.IPCorpus(f, func(p []byte) {
		f.Add(p, uint8(0), uint32(0xa1b2c3d4), true, uint16(1500), false)
		f.Add(p, uint8(2), uint32(0xbeef), false, uint16(0), true)
	})
	f.Fuzz(func(t *testing.T, data []byte, sel uint8, id uint32, long bool, mtu uint16, fix bool) {
		pkt := packettest.PrepareIP(data, fix)
		typ := ipOptionTypes[sel%4]
		before := bytes.Clone(pkt)
		ipOK, l4OK, gpOK := IPv4ChecksumOK(pkt), packettest.L4ChecksumOK(pkt), packettest.GopacketIPValid(pkt)
		idLen := packettest.FuzzIDLen(long)
		view := packettest.PV(pkt, len(pkt))
		n, res, stripped := AddIPOption(view, pkt, typ, id, idLen, int(mtu))
		packettest.CheckView(t, view, pkt)
		after, changed := packettest.CheckAdded(t, pkt, before, n, res, stripped, func(after []byte) bool {
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
		if ipOK && !IPv4ChecksumOK(after) || l4OK && !packettest.L4ChecksumOK(after) {
			t.Fatalf("checksums broken: %x -> %x", before, after)
		}
		if gpOK && !packettest.GopacketIPValid(after) {
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
			if _, res, _ := AddIPOption(packettest.PV(again, len(again)), again, typ, id, idLen, int(mtu)); res != Unchanged {
				t.Fatalf("second pass: %v", res)
			}
			view := packettest.PV(again, len(again))
			sn, sres := StripIPOption(view, again, typ)
			packettest.CheckView(t, view, again)
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
	packettest.IPCorpus(f, func(p []byte) { f.Add(p, uint8(0), false); f.Add(p, uint8(3), true) })
	f.Fuzz(func(t *testing.T, data []byte, sel uint8, fix bool) {
		pkt := packettest.PrepareIP(data, fix)
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
		view := packettest.PV(pkt, len(pkt))
		n, res := StripIPOption(view, pkt, typ)
		packettest.CheckView(t, view, pkt)
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
