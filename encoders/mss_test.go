package encoders

import (
	"bytes"
	"testing"

	"github.com/gopacket/gopacket/layers"
)

func mssOf(tb testing.TB, pkt []byte) uint16 {
	tb.Helper()
	d := decode(tb, pkt)
	for _, o := range d.tcp.Options {
		if o.OptionType == layers.TCPOptionKindMSS && len(o.OptionData) == 2 {
			return uint16(o.OptionData[0])<<8 | uint16(o.OptionData[1])
		}
	}
	return 0
}

func TestLowerMSS(t *testing.T) {
	for _, tc := range []lowerMSSCase{
		{"SYN", synHdr(linuxSYN()...), 8, Written, 1452},
		{"SYN-ACK", synAck(linuxSYN()...), 40, Written, 1420},
		{"odd offset (after one NOP)", synHdr(oNOP(), oMSS(1460), oWS(7)), 8, Written, 1452},
		{"odd offset, byte borrow", synHdr(oNOP(), oMSS(0x0600), oWS(7)), 1, Written, 0x05ff},
		{"floor", synHdr(oMSS(600)), 200, Written, MinMSS},
		{"huge delta", synHdr(oMSS(1460)), 0xffff, Written, MinMSS},
		{"already small", synHdr(oMSS(500)), 8, Unchanged, 500},
		{"at floor", synHdr(oMSS(MinMSS)), 8, Unchanged, MinMSS},
		{"zero delta", synHdr(oMSS(1460)), 0, Unchanged, 1460},
		{"no MSS", synHdr(oWS(7)), 8, Unchanged, 0},
		{"not SYN", dataHdr(oMSS(1460)), 8, Unchanged, 1460},
	} {
		t.Run(tc.name, func(t *testing.T) {
			pkt := build(t, ipHdr(), tc.tcp, nil)
			before := bytes.Clone(pkt)
			if res := LowerMSS(pv(pkt, len(pkt)), pkt, tc.delta); res != tc.want {
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
	syn := build(t, ipHdr(), synHdr(linuxSYN()...), nil)
	frag := clone(syn)
	frag[6] |= 0x20
	if res := LowerMSS(pv(frag, len(frag)), frag, 8); res != Fragment {
		t.Errorf("fragment: %v", res)
	}
	if res := LowerMSS(pv(syn[:30], len(syn[:30])), syn[:30], 8); res != Truncated {
		t.Errorf("truncated: %v", res)
	}
}
