package packet

import (
	"net"
	"testing"

	"github.com/gopacket/gopacket/layers"
)

// synWith is a gopacket SYN from an inside host whose option list is opts,
// over IPv4 or IPv6; edit patches the TCP header's bytes after
// serialization (to make the list malformed, which gopacket will not).
func synWith(tb testing.TB, v6 bool, opts []layers.TCPOption, edit func(tcp []byte)) []byte {
	tb.Helper()
	tcp := &layers.TCP{SrcPort: 40000, DstPort: 443, Seq: 1, SYN: true, Window: 64240, Options: opts}
	var pkt []byte
	l4 := IPv4MinHdr
	if v6 {
		ip := &layers.IPv6{Version: 6, HopLimit: 64, NextHeader: layers.IPProtocolTCP,
			SrcIP: net.ParseIP("2001:db8::7"), DstIP: net.ParseIP("2001:db8:1::10")}
		tcp.SetNetworkLayerForChecksum(ip)
		pkt, l4 = serialize(tb, ip, tcp), IPv6HdrLen
	} else {
		ip := &layers.IPv4{Version: 4, TTL: 64, Flags: layers.IPv4DontFragment, Protocol: layers.IPProtocolTCP,
			SrcIP: net.IP{100, 64, 0, 7}, DstIP: net.IP{198, 51, 100, 10}}
		tcp.SetNetworkLayerForChecksum(ip)
		pkt = serialize(tb, ip, tcp)
	}
	if edit != nil {
		edit(pkt[l4:])
	}
	return pkt
}

var (
	optMSS1460 = layers.TCPOption{OptionType: layers.TCPOptionKindMSS, OptionLength: 4, OptionData: []byte{0x05, 0xb4}}
	// A forged RFC 7974 HOST_ID option (kind 253, ExID 0x0348): 0xdead.
	optForged = layers.TCPOption{OptionType: 253, OptionLength: 6, OptionData: []byte{0x03, 0x48, 0xde, 0xad}}
	optExp30  = layers.TCPOption{OptionType: 30, OptionLength: 4, OptionData: []byte{1, 2}}
)

// The whole TCP option list is validated (RFC 9293 §3.1), not only up to
// MSS: MSS, a forged HOST_ID, then a malformed option is BadHeader, so the
// packet path's drop of malformed inside SYNs applies to it (issue 17 item
// 1). Before, the walk stopped at MSS and the packet parsed.
func TestParseValidatesWholeOptionList(t *testing.T) {
	// Options: MSS at 0, HOST_ID at 4, kind 30 at 10: its length byte is
	// TCP header byte 20+11.
	list := []layers.TCPOption{optMSS1460, optForged, optExp30}
	for _, v6 := range []bool{false, true} {
		for _, tc := range []struct {
			name string
			edit func(tcp []byte)
			want Result
		}{
			{"well formed", nil, Unchanged},
			{"length 1 after MSS and HOST_ID", func(b []byte) { b[31] = 1 }, BadHeader},
			{"length 0 after MSS and HOST_ID", func(b []byte) { b[31] = 0 }, BadHeader},
			{"overrun after MSS and HOST_ID", func(b []byte) { b[31] = 40 }, BadHeader},
			{"kind without length at the end", func(b []byte) { b[34], b[35] = 30, 30 }, BadHeader},
			{"EOL, then garbage (padding: RFC 9293 §3.2)", func(b []byte) { b[30], b[31] = 0, 1 }, Unchanged},
		} {
			pkt := synWith(t, v6, list, tc.edit)
			var v View
			if res := v.Parse(pkt, len(pkt)); res != tc.want || v.L4Res != tc.want || v.IPRes != Unchanged {
				t.Errorf("v6 %v, %s: Parse %v (L4 %v, IP %v), want %v", v6, tc.name, res, v.L4Res, v.IPRes, tc.want)
			}
			if tc.want == Unchanged && v.TCP.MSS != 1460 {
				t.Errorf("v6 %v, %s: MSS %d, want 1460", v6, tc.name, v.TCP.MSS)
			}
		}
	}
	// ParseTCP says the same.
	pkt := synWith(t, false, list, func(b []byte) { b[31] = 1 })
	if _, _, res := ParseIPv4TCP(pkt); res != BadHeader {
		t.Errorf("ParseIPv4TCP: %v, want bad-header", res)
	}
}

// MSS is found wherever it sits in a valid list.
func TestParseMSSAfterOtherOptions(t *testing.T) {
	pkt := synWith(t, false, []layers.TCPOption{optExp30, optForged, optMSS1460}, nil)
	v, res := Parse(pkt, len(pkt))
	if res != Unchanged || v.TCP.MSS != 1460 {
		t.Errorf("Parse %v, MSS %d: want unchanged, 1460", res, v.TCP.MSS)
	}
}
