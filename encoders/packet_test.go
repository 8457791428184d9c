package encoders

import (
	"bytes"
	"encoding/binary"
	"testing"

	"github.com/gopacket/gopacket/layers"
)

func TestParse(t *testing.T) {
	pkt := build(t, ipHdr(), synHdr(linuxSYN()...), nil)
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

	data := build(t, ipHdr(), dataHdr(oNOP(), oNOP(), oTS()), []byte("hello"))
	data = append(data, 0, 0, 0) // trailing bytes past Total Length are ignored
	ip, _ = ParseIPv4(data)
	tcp, res = ParseTCP(data, ip)
	if res != Unchanged || tcp.PayloadLen != 5 || tcp.MSS != 0 || tcp.Flags != FlagACK|FlagPSH || tcp.Ack != 0xa0b0c0d0 || ip.TotalLen != len(data)-3 {
		t.Errorf("data segment: %v %+v %+v", res, ip, tcp)
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
		p := build(t, ipHdr(), h, nil)
		ip, _ := ParseIPv4(p)
		if tcp, _ := ParseTCP(p, ip); tcp.Flags != bit {
			t.Errorf("flag %#x parsed as %#x", bit, tcp.Flags)
		}
	}
}

func TestParseRejects(t *testing.T) {
	syn := build(t, ipHdr(), synHdr(linuxSYN()...), nil)
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
		{"segment < 20", mod(func(b []byte) { binary.BigEndian.PutUint16(b[2:], 39) }), Unchanged, Truncated, false, false},
		{"data offset 0", mod(func(b []byte) { b[32] = 0 }), Unchanged, BadHeader, false, false},
		{"data offset past end", mod(func(b []byte) { b[32] = 0xb0 }), Unchanged, Truncated, false, false},
		{"MSS after malformed option", patched(t, synHdr(layers.TCPOption{OptionType: 30, OptionData: []byte{0, 0}}, oMSS(1400)), func(o []byte) { o[1] = 0 }), Unchanged, BadHeader, false, false},
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
	p := build(t, ipHdr(), synHdr(oEOL(), oMSS(1400)), nil)
	ip, _ := ParseIPv4(p)
	if tcp, res := ParseTCP(p, ip); res != Unchanged || tcp.MSS != 0 {
		t.Errorf("MSS after EOL: %v %d", res, tcp.MSS)
	}
	p = build(t, ipHdr(), synHdr(layers.TCPOption{OptionType: 2, OptionData: []byte{1, 2, 3}}, oMSS(1300)), nil)
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
