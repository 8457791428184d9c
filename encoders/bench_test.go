package encoders

import (
	"testing"

	"github.com/natreveal/natreveal/packet"
)

func BenchmarkAddHostIDOption(b *testing.B) {
	var view packet.View // on the stack: a caller keeps its view there
	orig := build(b, ipHdr(), synHdr(linuxSYN()...), nil)
	buf := make([]byte, len(orig), len(orig)+Headroom)
	b.ReportAllocs()
	for b.Loop() {
		copy(buf[:len(orig)], orig)
		if _, res, _ := AddHostIDOption(pvAt(&view, buf, len(orig)), buf, 0xa1b2c3d4, 4, 1500); res != Written {
			b.Fatal(res)
		}
	}
}

func BenchmarkAddHostIDOptionData(b *testing.B) {
	var view packet.View // on the stack: a caller keeps its view there
	orig := build(b, ipHdr(), dataHdr(oNOP(), oNOP(), oTS()), make([]byte, 1400))
	buf := make([]byte, len(orig), len(orig)+Headroom)
	b.ReportAllocs()
	b.SetBytes(int64(len(orig)))
	for b.Loop() {
		copy(buf[:len(orig)], orig)
		if _, res, _ := AddHostIDOption(pvAt(&view, buf, len(orig)), buf, 0xa1b2c3d4, 4, 1500); res != Written {
			b.Fatal(res)
		}
	}
}

func BenchmarkParse(b *testing.B) {
	pkt := build(b, ipHdr(), synHdr(linuxSYN()...), nil)
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

func BenchmarkHostIDOption(b *testing.B) {
	pkt := build(b, ipHdr(), synHdr(append(linuxSYN(), oHostID(1, 2, 3, 4))...), nil)
	b.ReportAllocs()
	for b.Loop() {
		if _, _, ok := HostIDOption(pkt); !ok {
			b.Fatal("no option")
		}
	}
}

// TestZeroAllocs asserts that no hot function allocates.
func TestZeroAllocs(t *testing.T) {
	var view packet.View // on the stack: a caller keeps its view there
	syn := build(t, ipHdr(), synHdr(append(linuxSYN(), oHostID(9, 9))...), nil)
	data := build(t, ipHdr(), dataHdr(oNOP(), oNOP(), oTS()), make([]byte, 1400))
	buf := make([]byte, 0, 2000)
	ip, _ := ParseIPv4(syn)
	for name, f := range map[string]func(){
		"ParseIPv4": func() { ParseIPv4(syn) },
		"ParseTCP":  func() { ParseTCP(syn, ip) },
		"AddHostIDOption": func() {
			buf = append(buf[:0], syn...)
			AddHostIDOption(pvAt(&view, buf, len(buf)), buf, 0x01020304, 4, 1500)
		},
		"AddHostIDOption data": func() {
			buf = append(buf[:0], data...)
			AddHostIDOption(pvAt(&view, buf, len(buf)), buf, 0x0102, 2, 0)
		},
		"AddHostIDOption no room": func() {
			buf = append(buf[:0], data...)
			AddHostIDOption(pvAt(&view, buf[:len(data):len(data)], len(data)), buf[:len(data):len(data)], 0x0102, 2, 0)
		},
		"StripHostIDOption": func() {
			buf = append(buf[:0], syn...)
			StripHostIDOption(pvAt(&view, buf, len(buf)), buf)
		},
		"HostIDOption":        func() { HostIDOption(syn) },
		"HostIDFromTCPHeader": func() { HostIDFromTCPHeader(syn[20:]) },
		"LowerMSS": func() {
			buf = append(buf[:0], syn...)
			LowerMSS(pvAt(&view, buf, len(buf)), buf, 8)
		},
		"TCPChecksumOK":  func() { TCPChecksumOK(data) },
		"IPv4ChecksumOK": func() { IPv4ChecksumOK(data) },
		"Result.String":  func() { _ = Result(3).String() },
	} {
		if a := testing.AllocsPerRun(100, f); a != 0 {
			t.Errorf("%s: %v allocs/op", name, a)
		}
	}
}
