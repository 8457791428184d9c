package ipid

import (
	"bytes"
	"testing"

	"github.com/natreveal/natreveal/internal/packettest"
	. "github.com/natreveal/natreveal/packet"
)

func FuzzSetIPID(f *testing.F) {
	packettest.Corpus(f, func(p []byte) { f.Add(p, uint16(0), false); f.Add(p, uint16(0xfffe), true) })
	f.Fuzz(func(t *testing.T, data []byte, id uint16, fix bool) {
		pkt := packettest.Prepare(data, fix)
		before := bytes.Clone(pkt)
		ipOK := IPv4ChecksumOK(pkt)
		view := packettest.PV(pkt, len(pkt))
		res := SetIPID(view, pkt, id)
		packettest.CheckView(t, view, pkt)
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
