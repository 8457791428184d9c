package tcpoption

import (
	"bytes"
	"testing"

	"github.com/gopacket/gopacket/layers"

	"github.com/natreveal/natreveal/internal/packettest"
	"github.com/natreveal/natreveal/packet"
)

// Unmarked (method.AntiSpoof): a segment natreveal could not mark keeps no
// HOST_ID option (RFC 7974 §3): IPv4 loses it, IPv6 (no strip) and a
// HOST_ID the strip cannot reach are dropped; without one, nothing changes.
func TestUnmarked(t *testing.T) {
	big := layers.TCPOption{OptionType: 254, OptionLength: 32, OptionData: make([]byte, 30)}
	for _, tc := range []struct {
		name  string
		v6    bool
		tcp   *layers.TCP
		strip bool // the option removed, length shrinks
		drop  bool
	}{
		{"no HOST_ID", false, packettest.SYNHdr(packettest.LinuxSYN()...), false, false},
		{"no HOST_ID, IPv6", true, packettest.SYNHdr(packettest.LinuxSYN()...), false, false},
		{"forged HOST_ID", false, packettest.SYNHdr(packettest.OMSS(1400), packettest.OHostID(0xde, 0xad)), true, false},
		{"forged HOST_ID, data", false, packettest.DataHdr(packettest.ONOP(), packettest.ONOP(), packettest.OTS(), packettest.OHostID(1, 2)), true, false},
		{"forged HOST_ID, IPv6", true, packettest.SYNHdr(packettest.OMSS(1400), packettest.OHostID(0xde, 0xad)), false, true},
		{"HOST_ID past EOL", false, packettest.SYNHdr(big, packettest.OEOL(), packettest.OHostID(1, 2)), false, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var pkt []byte
			if tc.v6 {
				pkt = packettest.Build6(t, packettest.IP6Hdr(), tc.tcp)
			} else {
				pkt = packettest.Build(t, packettest.IPHdr(), tc.tcp, nil)
			}
			before := packettest.Clone(pkt)
			v := packettest.PV(pkt, len(pkt))
			n, drop := Step{Length: 2}.Unmarked(v, pkt)
			if drop != tc.drop || (n > 0) != tc.strip {
				t.Fatalf("n %d drop %v, want strip %v drop %v", n, drop, tc.strip, tc.drop)
			}
			if !tc.strip {
				if !bytes.Equal(pkt, before) {
					t.Errorf("packet changed")
				}
				return
			}
			packettest.CheckRewritten(t, before, pkt[:n], nil)
			if _, _, ok := HostIDOption(pkt[:n]); ok || n >= len(before) || v.N != n {
				t.Errorf("HOST_ID still there (%v), length %d of %d, view %d", ok, n, len(before), v.N)
			}
			if hostIDMayBePresent(v, pkt) {
				t.Errorf("a HOST_ID may still be present")
			}
		})
	}
}

func TestUnmarkedNoAllocs(t *testing.T) {
	var view packet.View
	syn := packettest.Build(t, packettest.IPHdr(), packettest.SYNHdr(append(packettest.LinuxSYN(), packettest.OHostID(9, 9))...), nil)
	buf := make([]byte, 0, 2000)
	if a := testing.AllocsPerRun(100, func() {
		buf = append(buf[:0], syn...)
		Step{}.Unmarked(packettest.PVAt(&view, buf, len(buf)), buf)
	}); a != 0 {
		t.Errorf("%v allocs/op", a)
	}
}
