package tcpoption

import (
	"bytes"
	"slices"
	"testing"

	"github.com/natreveal/natreveal/internal/packettest"
	. "github.com/natreveal/natreveal/packet"
)

// otherOpts lists the options up to EOL that are neither NOP nor HOST_ID.
func otherOpts(opts []byte) []string {
	var out []string
	for i := 0; i < len(opts); {
		l := OptLen(opts, i)
		if l <= 0 {
			break
		}
		if o := opts[i : i+l]; o[0] != optNOP && !isHostID(o) {
			out = append(out, string(o))
		}
		i += l
	}
	return out
}

func countHostIDs(opts []byte) int {
	n := 0
	for i := 0; i < len(opts); {
		l := OptLen(opts, i)
		if l <= 0 {
			break
		}
		if isHostID(opts[i : i+l]) {
			n++
		}
		i += l
	}
	return n
}

func FuzzAddHostIDOption(f *testing.F) {
	packettest.Corpus(f, func(p []byte) {
		f.Add(p, uint32(0xa1b2c3d4), true, uint16(1500), false)
		f.Add(p, uint32(0xbeef), false, uint16(0), true)
	})
	f.Fuzz(func(t *testing.T, data []byte, id uint32, long bool, mtu uint16, fix bool) {
		pkt := packettest.Prepare(data, fix)
		before := bytes.Clone(pkt)
		inOK := packettest.ChecksumsOK(pkt)
		gpOK := packettest.GopacketValid(pkt)
		idLen := packettest.FuzzIDLen(long)
		view := packettest.PV(pkt, len(pkt))
		n, res, stripped := AddHostIDOption(view, pkt, id, idLen, int(mtu))
		packettest.CheckView(t, view, pkt)
		after, changed := packettest.CheckAdded(t, pkt, before, n, res, stripped, func(after []byte) bool {
			_, _, ok := HostIDOption(after)
			return ok
		})
		if !changed {
			return
		}
		oldOpts, oldPay := packettest.Segment(t, before)
		newOpts, newPay := packettest.Segment(t, after)
		if !bytes.Equal(oldPay, newPay) {
			t.Fatal("payload changed")
		}
		if !slices.Equal(otherOpts(oldOpts), otherOpts(newOpts)) {
			t.Fatalf("options changed: %x -> %x", oldOpts, newOpts)
		}
		if inOK && !packettest.ChecksumsOK(after) {
			t.Fatalf("checksums broken: %x -> %x", before, after)
		}
		if gpOK && !packettest.GopacketValid(after) {
			t.Fatalf("gopacket accepted the input but rejects the output: %x -> %x", before, after)
		}
		switch {
		case res == Written:
			got, gotLen, ok := HostIDOption(after)
			if !ok || gotLen != idLen || got != id&uint32(1<<(8*idLen)-1) || countHostIDs(newOpts) != 1 {
				t.Fatalf("HostIDOption = %#x %d %v, %d options", got, gotLen, ok, countHostIDs(newOpts))
			}
			ip, _ := ParseIPv4(before)
			if n > ip.TotalLen && mtu > 0 && n > int(mtu) {
				t.Fatalf("grew to %d over mtu %d", n, mtu)
			}
			if len(newOpts) > MaxTCPOptions || len(newOpts)%4 != 0 {
				t.Fatalf("option length %d", len(newOpts))
			}
			again := bytes.Clone(after)
			if _, res, _ := AddHostIDOption(packettest.PV(again, len(again)), again, id, idLen, int(mtu)); res != Unchanged {
				t.Fatalf("second pass: %v", res)
			}
		default: // stripped, ours not added
			if countHostIDs(newOpts) != 0 || n >= len(before) {
				t.Fatalf("%v stripped: %d HOST_ID left, %d -> %d bytes", res, countHostIDs(newOpts), len(before), n)
			}
		}
	})
}

func FuzzStrip(f *testing.F) {
	packettest.Corpus(f, func(p []byte) { f.Add(p, false); f.Add(p, true) })
	f.Fuzz(func(t *testing.T, data []byte, fix bool) {
		pkt := packettest.Prepare(data, fix)
		before := bytes.Clone(pkt)
		inOK := packettest.ChecksumsOK(pkt)
		gpOK := packettest.GopacketValid(pkt)
		view := packettest.PV(pkt, len(pkt))
		n, res := StripHostIDOption(view, pkt)
		packettest.CheckView(t, view, pkt)
		if res != Written {
			if n != len(before) || !bytes.Equal(pkt, before) {
				t.Fatalf("%v but packet changed", res)
			}
			if res == Unchanged {
				if opts, _ := packettest.Segment(t, pkt); countHostIDs(opts) != 0 {
					t.Fatal("unchanged with a HOST_ID option")
				}
			}
			return
		}
		oldOpts, oldPay := packettest.Segment(t, before)
		newOpts, newPay := packettest.Segment(t, pkt[:n])
		switch {
		case !bytes.Equal(oldPay, newPay):
			t.Fatal("payload changed")
		case countHostIDs(newOpts) != 0 || n >= len(before):
			t.Fatalf("HOST_ID left or no shrink: %x", newOpts)
		case !slices.Equal(otherOpts(oldOpts), otherOpts(newOpts)):
			t.Fatalf("options changed: %x -> %x", oldOpts, newOpts)
		case inOK && !packettest.ChecksumsOK(pkt[:n]):
			t.Fatal("checksums broken")
		case gpOK && !packettest.GopacketValid(pkt[:n]):
			t.Fatal("gopacket accepted the input but rejects the output")
		}
	})
}

func FuzzAddHostIDOption6(f *testing.F) {
	packettest.Corpus6(f, func(p []byte) {
		f.Add(p, uint32(0xa1b2c3d4), true, uint16(1500), false)
		f.Add(p, uint32(0xbeef), false, uint16(0), true)
	})
	f.Fuzz(func(t *testing.T, data []byte, id uint32, long bool, mtu uint16, fix bool) {
		pkt := packettest.Prepare6(data, fix)
		before := bytes.Clone(pkt)
		inOK := TCPChecksumOK6(pkt)
		gpOK := packettest.GopacketValid6(pkt)
		idLen := packettest.FuzzIDLen(long)
		view := packettest.PV(pkt, len(pkt))
		n, res, stripped := AddHostIDOption6(view, pkt, id, idLen, int(mtu))
		packettest.CheckView(t, view, pkt)
		after, changed := packettest.CheckAdded(t, pkt, before, n, res, stripped, func(after []byte) bool {
			_, _, ok := HostIDOption6(after)
			return ok
		})
		if !changed {
			return
		}
		oldExt, oldOpts, oldPay := packettest.TCP6(t, before)
		newExt, newOpts, newPay := packettest.TCP6(t, after)
		switch {
		case !bytes.Equal(oldPay, newPay):
			t.Fatal("payload changed")
		case !bytes.Equal(oldExt, newExt) || !bytes.Equal(before[:4], after[:4]) || !bytes.Equal(before[6:40], after[6:40]):
			t.Fatal("IPv6 headers changed")
		case !slices.Equal(otherOpts(oldOpts), otherOpts(newOpts)):
			t.Fatalf("options changed: %x -> %x", oldOpts, newOpts)
		case inOK && !TCPChecksumOK6(after):
			t.Fatalf("checksum broken: %x -> %x", before, after)
		case gpOK && !packettest.GopacketValid6(after):
			t.Fatalf("gopacket accepted the input but rejects the output: %x -> %x", before, after)
		}
		if res == Written {
			got, gotLen, ok := HostIDOption6(after)
			if !ok || gotLen != idLen || got != id&uint32(1<<(8*idLen)-1) || countHostIDs(newOpts) != 1 {
				t.Fatalf("HostIDOption6 = %#x %d %v, %d options", got, gotLen, ok, countHostIDs(newOpts))
			}
			if n > len(before) && mtu > 0 && n > int(mtu) {
				t.Fatalf("grew to %d over mtu %d", n, mtu)
			}
			if len(newOpts) > MaxTCPOptions || len(newOpts)%4 != 0 {
				t.Fatalf("option length %d", len(newOpts))
			}
			again := bytes.Clone(after)
			if _, res, _ := AddHostIDOption6(packettest.PV(again, len(again)), again, id, idLen, int(mtu)); res != Unchanged {
				t.Fatalf("second pass: %v", res)
			}
		} else if countHostIDs(newOpts) != 0 || n >= len(before) {
			t.Fatalf("%v stripped: %d HOST_ID left, %d -> %d bytes", res, countHostIDs(newOpts), len(before), n)
		}
	})
}
