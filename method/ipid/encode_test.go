package ipid

import (
	"bytes"
	"testing"

	"github.com/natreveal/natreveal/internal/packettest"
	. "github.com/natreveal/natreveal/packet"

	"github.com/gopacket/gopacket/layers"

	"github.com/natreveal/natreveal/packet"
)

func TestSetIPID(t *testing.T) {
	atomic := packettest.Build(t, packettest.IPHdr(), packettest.SYNHdr(packettest.LinuxSYN()...), nil)
	for _, id := range []uint16{0, 1, 0x1234, 0xfffe, 0xffff, 0x8000} {
		pkt := packettest.Clone(atomic)
		res := SetIPID(packettest.PV(pkt, len(pkt)), pkt, id)
		want := Written
		if id == 0x1234 {
			want = Unchanged
		}
		if res != want {
			t.Fatalf("id %#x: %v, want %v", id, res, want)
		}
		d := packettest.Decode(t, pkt) // gopacket verifies both checksums
		if d.IP.Id != id {
			t.Errorf("gopacket reads id %#x, want %#x", d.IP.Id, id)
		}
		if got, at, ok := IPID(pkt); got != id || !at || !ok {
			t.Errorf("IPID = %#x %v %v", got, at, ok)
		}
		diff := 0
		for i := range pkt {
			if pkt[i] != atomic[i] && i != 4 && i != 5 && i != 10 && i != 11 {
				diff++
			}
		}
		if diff != 0 {
			t.Errorf("bytes other than ID and checksum changed")
		}
	}

	for _, tc := range []struct {
		name  string
		flags layers.IPv4Flag
		off   uint16
		want  Result
	}{
		{"DF clear (RFC 6864 non-atomic)", 0, 0, NotAtomic},
		{"MF set", layers.IPv4MoreFragments, 0, Fragment},
		{"DF and MF", layers.IPv4DontFragment | layers.IPv4MoreFragments, 0, Fragment},
		{"offset", 0, 185, Fragment},
		{"DF and offset", layers.IPv4DontFragment, 1, Fragment},
	} {
		ip := packettest.IPHdr()
		ip.Flags, ip.FragOffset = tc.flags, tc.off
		pkt := packettest.Build(t, ip, packettest.SYNHdr(), nil)
		before := bytes.Clone(pkt)
		if res := SetIPID(packettest.PV(pkt, len(pkt)), pkt, 7); res != tc.want || !bytes.Equal(pkt, before) {
			t.Errorf("%s: %v, want %v, unchanged", tc.name, res, tc.want)
		}
		if _, at, ok := IPID(pkt); at || !ok {
			t.Errorf("%s: IPID atomic=%v ok=%v", tc.name, at, ok)
		}
	}
	if res := SetIPID(packettest.PV(atomic[:19], len(atomic[:19])), atomic[:19], 1); res != Truncated {
		t.Errorf("truncated: %v", res)
	}
	if _, _, ok := IPID(nil); ok {
		t.Error("IPID(nil) ok")
	}
	// Not TCP: the ID belongs to IP; any protocol is fine.
	udp := packettest.Clone(atomic)
	udp[9] = 17
	packettest.FixChecksums(udp)
	if res := SetIPID(packettest.PV(udp, len(udp)), udp, 99); res != Written || !IPv4ChecksumOK(udp) {
		t.Errorf("UDP: %v", res)
	}
}

func BenchmarkSetIPID(b *testing.B) {
	var view packet.View // on the stack: a caller keeps its view there
	pkt := packettest.Build(b, packettest.IPHdr(), packettest.SYNHdr(packettest.LinuxSYN()...), nil)
	b.ReportAllocs()
	id := uint16(0)
	for b.Loop() {
		id++
		SetIPID(packettest.PVAt(&view, pkt, len(pkt)), pkt, id)
	}
}

// TestZeroAllocs asserts that the ip-id encoder and reader do not allocate.
func TestZeroAllocs(t *testing.T) {
	var view packet.View // on the stack: a caller keeps its view there
	syn := packettest.Build(t, packettest.IPHdr(), packettest.SYNHdr(packettest.LinuxSYN()...), nil)
	id := uint16(0)
	for name, f := range map[string]func(){
		"SetIPID": func() { id++; SetIPID(packettest.PVAt(&view, syn, len(syn)), syn, id) },
		"IPID":    func() { IPID(syn) },
	} {
		if a := testing.AllocsPerRun(100, f); a != 0 {
			t.Errorf("%s: %v allocs/op", name, a)
		}
	}
}
