package packet_test

import (
	"bytes"
	"encoding/binary"
	"testing"

	"github.com/gopacket/gopacket/layers"
	"github.com/natreveal/natreveal/internal/packettest"
	. "github.com/natreveal/natreveal/packet"
)

// lowerMSSCase is a TestLowerMSS or TestLowerMSS6 case: lowering the MSS of
// tcp by delta returns want and leaves MSS mss.
type lowerMSSCase struct {
	name  string
	tcp   *layers.TCP
	delta uint16
	want  Result
	mss   uint16
}

func mssOf(tb testing.TB, pkt []byte) uint16 {
	tb.Helper()
	d := packettest.Decode(tb, pkt)
	for _, o := range d.TCP.Options {
		if o.OptionType == layers.TCPOptionKindMSS && len(o.OptionData) == 2 {
			return uint16(o.OptionData[0])<<8 | uint16(o.OptionData[1])
		}
	}
	return 0
}

func TestLowerMSS(t *testing.T) {
	for _, tc := range []lowerMSSCase{
		{"SYN", packettest.SYNHdr(packettest.LinuxSYN()...), 8, Written, 1452},
		{"SYN-ACK", packettest.SYNACK(packettest.LinuxSYN()...), 40, Written, 1420},
		{"odd offset (after one NOP)", packettest.SYNHdr(packettest.ONOP(), packettest.OMSS(1460), packettest.OWS(7)), 8, Written, 1452},
		{"odd offset, byte borrow", packettest.SYNHdr(packettest.ONOP(), packettest.OMSS(0x0600), packettest.OWS(7)), 1, Written, 0x05ff},
		{"floor", packettest.SYNHdr(packettest.OMSS(600)), 200, Written, MinMSS},
		{"huge delta", packettest.SYNHdr(packettest.OMSS(1460)), 0xffff, Written, MinMSS},
		{"already small", packettest.SYNHdr(packettest.OMSS(500)), 8, Unchanged, 500},
		{"at floor", packettest.SYNHdr(packettest.OMSS(MinMSS)), 8, Unchanged, MinMSS},
		{"zero delta", packettest.SYNHdr(packettest.OMSS(1460)), 0, Unchanged, 1460},
		{"no MSS", packettest.SYNHdr(packettest.OWS(7)), 8, Unchanged, 0},
		{"not SYN", packettest.DataHdr(packettest.OMSS(1460)), 8, Unchanged, 1460},
	} {
		t.Run(tc.name, func(t *testing.T) {
			pkt := packettest.Build(t, packettest.IPHdr(), tc.tcp, nil)
			before := bytes.Clone(pkt)
			if res := LowerMSS(packettest.PV(pkt, len(pkt)), pkt, tc.delta); res != tc.want {
				t.Fatalf("%v, want %v", res, tc.want)
			}
			if got := mssOf(t, pkt); got != tc.mss {
				t.Errorf("MSS %d, want %d", got, tc.mss)
			}
			if tc.want == Unchanged && !bytes.Equal(pkt, before) {
				t.Error("packet changed")
			}
			if !TCPChecksumOK(pkt) {
				t.Error("own TCP checksum check fails")
			}
		})
	}
	syn := packettest.Build(t, packettest.IPHdr(), packettest.SYNHdr(packettest.LinuxSYN()...), nil)
	frag := packettest.Clone(syn)
	frag[6] |= 0x20
	if res := LowerMSS(packettest.PV(frag, len(frag)), frag, 8); res != Fragment {
		t.Errorf("fragment: %v", res)
	}
	if res := LowerMSS(packettest.PV(syn[:30], len(syn[:30])), syn[:30], 8); res != Truncated {
		t.Errorf("truncated: %v", res)
	}
}

func TestLowerMSS6(t *testing.T) {
	for _, tc := range []lowerMSSCase{
		{"SYN", packettest.SYNHdr(packettest.OMSS(1440), packettest.OSACKPerm(), packettest.OTS(), packettest.ONOP(), packettest.OWS(7)), 8, Written, 1432},
		{"SYN-ACK", packettest.SYNACK(packettest.OMSS(1440)), 40, Written, 1400},
		{"odd offset", packettest.SYNHdr(packettest.ONOP(), packettest.OMSS(0x0600), packettest.OWS(7)), 1, Written, 0x05ff},
		{"floor", packettest.SYNHdr(packettest.OMSS(1300)), 200, Written, MinMSS6},
		{"at floor", packettest.SYNHdr(packettest.OMSS(MinMSS6)), 8, Unchanged, MinMSS6},
		{"not SYN", packettest.DataHdr(packettest.OMSS(1440)), 8, Unchanged, 1440},
	} {
		t.Run(tc.name, func(t *testing.T) {
			pkt := packettest.Build6(t, packettest.IP6Hdr(), packettest.HBH6(), tc.tcp)
			before := packettest.Clone(pkt)
			if res := LowerMSS6(packettest.PV(pkt, len(pkt)), pkt, tc.delta); res != tc.want {
				t.Fatalf("%v, want %v", res, tc.want)
			}
			d := packettest.Decode6(t, pkt)
			var mss uint16
			for _, o := range d.TCP.Options {
				if o.OptionType == layers.TCPOptionKindMSS {
					mss = binary.BigEndian.Uint16(o.OptionData)
				}
			}
			if mss != tc.mss {
				t.Errorf("MSS %d, want %d", mss, tc.mss)
			}
			if tc.want == Unchanged && !bytes.Equal(pkt, before) {
				t.Error("packet changed")
			}
			if !TCPChecksumOK6(pkt) {
				t.Error("own checksum check fails")
			}
		})
	}
}

func FuzzLowerMSS(f *testing.F) {
	packettest.Corpus(f, func(p []byte) { f.Add(p, uint16(40), false); f.Add(p, uint16(1000), true) })
	f.Fuzz(func(t *testing.T, data []byte, delta uint16, fix bool) {
		pkt := packettest.Prepare(data, fix)
		before := bytes.Clone(pkt)
		inOK := packettest.ChecksumsOK(pkt)
		view := packettest.PV(pkt, len(pkt))
		res := LowerMSS(view, pkt, delta)
		packettest.CheckView(t, view, pkt)
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
		if inOK && !packettest.ChecksumsOK(pkt) {
			t.Fatal("checksum broken")
		}
	})
}
