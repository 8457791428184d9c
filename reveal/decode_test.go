package reveal

import (
	"fmt"
	"reflect"
	"testing"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
)

func decode(d *Decoder, pkt []byte) []Found { return d.Decode(pkt, nil) }

func TestDecodeTCPOption(t *testing.T) {
	d := &Decoder{Methods: []Method{TCPOption}}
	mss := layers.TCPOption{OptionType: layers.TCPOptionKindMSS, OptionLength: 4, OptionData: []byte{0x05, 0xb4}}
	nop := layers.TCPOption{OptionType: layers.TCPOptionKindNop, OptionLength: 1}
	for _, c := range []struct {
		name string
		pkt  []byte
		want []Found
	}{
		{"v4 2 bytes", tcp4(t, 7, nil, mss, nop, nop, hostIDTCPOption(0x1234, 2)), []Found{{Method: TCPOption, HostID: 0x1234, Len: 2}}},
		{"v4 4 bytes", tcp4(t, 7, nil, hostIDTCPOption(0xdeadbeef, 4), mss), []Found{{Method: TCPOption, HostID: 0xdeadbeef, Len: 4}}},
		{"v6 2 bytes", serialize(t, ip6(layers.IPProtocolTCP), syn(mss, nop, nop, hostIDTCPOption(0xbeef, 2))), []Found{{Method: TCPOption, HostID: 0xbeef, Len: 2}}},
		{"v6 behind a destination options header", serialize(t,
			ip6(layers.IPProtocolIPv6Destination), destOpts(layers.IPProtocolTCP, 0x1f, 1, 2, 3, 4),
			syn(hostIDTCPOption(0x01020304, 4))),
			[]Found{{Method: TCPOption, HostID: 0x01020304, Len: 4}}},
		{"no option", tcp4(t, 7, nil, mss), nil},
		{"another ExID", tcp4(t, 7, nil, layers.TCPOption{OptionType: 253, OptionLength: 6, OptionData: []byte{0x03, 0x49, 0, 1}}), nil},
		{"bad length (5)", tcp4(t, 7, nil, layers.TCPOption{OptionType: 253, OptionLength: 5, OptionData: []byte{0x03, 0x48, 1}}), nil},
		{"udp", serialize(t, ip4(pkt4{proto: layers.IPProtocolUDP}), &layers.UDP{SrcPort: 1, DstPort: 2}), nil},
	} {
		t.Run(c.name, func(t *testing.T) {
			if got := decode(d, c.pkt); !reflect.DeepEqual(got, c.want) {
				t.Errorf("got %+v, want %+v", got, c.want)
			}
		})
	}
}

func TestDecodeIPID(t *testing.T) {
	on := &Decoder{Methods: []Method{IPID}}
	for _, c := range []struct {
		name string
		pkt  []byte
		want []Found
	}{
		{"atomic", tcp4(t, 0xabcd, nil), []Found{{Method: IPID, HostID: 0xabcd, Len: 2}}},
		{"DF clear", serialize(t, ip4(pkt4{id: 0xabcd}), syn()), nil},
		{"first fragment", serialize(t, ip4(pkt4{id: 0xabcd, flags: layers.IPv4MoreFragments}), syn()), nil},
		{"later fragment", serialize(t, ip4(pkt4{id: 0xabcd, fragOff: 3}), gopacket.Payload(make([]byte, 24))), nil},
		{"IPv6", serialize(t, ip6(layers.IPProtocolTCP), syn()), nil},
	} {
		t.Run(c.name, func(t *testing.T) {
			if got := decode(on, c.pkt); !reflect.DeepEqual(got, c.want) {
				t.Errorf("got %+v, want %+v", got, c.want)
			}
		})
	}
	// Not named: never reported, not even by the default decoder.
	if got := decode(&Decoder{}, tcp4(t, 0xabcd, nil)); len(got) != 0 {
		t.Errorf("default decoder reports %+v", got)
	}
	if got := decode(&Decoder{Methods: []Method{TCPOption}}, tcp4(t, 0xabcd, nil)); len(got) != 0 {
		t.Errorf("decoder without ip-id reports %+v", got)
	}
}

func TestDecodeIPOption(t *testing.T) {
	opt := func(typ byte, data ...byte) []layers.IPv4Option {
		return []layers.IPv4Option{{OptionType: typ, OptionLength: byte(2 + len(data)), OptionData: data}}
	}
	for _, c := range []struct {
		name string
		d    Decoder
		pkt  []byte
		want []Found
	}{
		{"type 30, 2 bytes", Decoder{Methods: []Method{IPOption}}, tcp4(t, 1, opt(30, 0x12, 0x34)), []Found{{Method: IPOption, HostID: 0x1234, Len: 2}}},
		{"type 30, 4 bytes", Decoder{Methods: []Method{IPOption}}, tcp4(t, 1, opt(30, 1, 2, 3, 4)), []Found{{Method: IPOption, HostID: 0x01020304, Len: 4}}},
		{"type 158 configured", Decoder{Methods: []Method{IPOption}, Types: map[Method]byte{IPOption: 158}}, tcp4(t, 1, opt(158, 0xbe, 0xef)), []Found{{Method: IPOption, HostID: 0xbeef, Len: 2}}},
		{"type 158 not configured", Decoder{Methods: []Method{IPOption}}, tcp4(t, 1, opt(158, 0xbe, 0xef)), nil},
		{"UDP", Decoder{Methods: []Method{IPOption}}, serialize(t,
			&layers.IPv4{Version: 4, TTL: 64, Protocol: layers.IPProtocolUDP, SrcIP: client4, DstIP: server4, Options: opt(30, 0x55, 0x66)},
			&layers.UDP{SrcPort: 5000, DstPort: 53}, gopacket.Payload("q")), []Found{{Method: IPOption, HostID: 0x5566, Len: 2}}},
		{"no options", Decoder{Methods: []Method{IPOption}}, tcp4(t, 1, nil), nil},
		{"disabled", Decoder{Methods: []Method{TCPOption}}, tcp4(t, 1, opt(30, 0x12, 0x34)), nil},
	} {
		t.Run(c.name, func(t *testing.T) {
			if got := decode(&c.d, c.pkt); !reflect.DeepEqual(got, c.want) {
				t.Errorf("got %+v, want %+v", got, c.want)
			}
		})
	}
}

func TestDecodeDestOpt(t *testing.T) {
	dst := func(typ byte, data ...byte) *layers.IPv6Destination {
		return destOpts(layers.IPProtocolTCP, typ, data...)
	}
	for _, c := range []struct {
		name string
		d    Decoder
		pkt  []byte
		want []Found
	}{
		{"0x1E, 2 bytes", Decoder{Methods: []Method{DestOpt}}, serialize(t, ip6(layers.IPProtocolIPv6Destination), dst(0x1e, 0x12, 0x34), syn()), []Found{{Method: DestOpt, HostID: 0x1234, Len: 2}}},
		{"0x1E, 4 bytes", Decoder{Methods: []Method{DestOpt}}, serialize(t, ip6(layers.IPProtocolIPv6Destination), dst(0x1e, 1, 2, 3, 4), syn()), []Found{{Method: DestOpt, HostID: 0x01020304, Len: 4}}},
		{"0x3E configured", Decoder{Methods: []Method{DestOpt}, Types: map[Method]byte{DestOpt: 0x3e}}, serialize(t, ip6(layers.IPProtocolIPv6Destination), dst(0x3e, 0xca, 0xfe), syn()), []Found{{Method: DestOpt, HostID: 0xcafe, Len: 2}}},
		{"other type", Decoder{Methods: []Method{DestOpt}}, serialize(t, ip6(layers.IPProtocolIPv6Destination), dst(0x3e, 0xca, 0xfe), syn()), nil},
		{"UDP", Decoder{Methods: []Method{DestOpt}}, serialize(t, ip6(layers.IPProtocolIPv6Destination), destOpts(layers.IPProtocolUDP, 0x1e, 0, 9), &layers.UDP{SrcPort: 1, DstPort: 443}), []Found{{Method: DestOpt, HostID: 9, Len: 2}}},
		{"none", Decoder{Methods: []Method{DestOpt}}, serialize(t, ip6(layers.IPProtocolTCP), syn()), nil},
	} {
		t.Run(c.name, func(t *testing.T) {
			if got := decode(&c.d, c.pkt); !reflect.DeepEqual(got, c.want) {
				t.Errorf("got %+v, want %+v", got, c.want)
			}
		})
	}
}

func TestDecodeHIP(t *testing.T) {
	d := &Decoder{Methods: []Method{HIP}}
	want := []Found{{Method: HIP, Len: 16, HIT: testHIT}}
	for _, pkt := range [][]byte{
		serialize(t, ip4(pkt4{proto: 139, flags: layers.IPv4DontFragment}), gopacket.Payload(hipPacket(testHIT))),
		serialize(t, ip6(139), gopacket.Payload(hipPacket(testHIT))),
	} {
		if got := decode(d, pkt); !reflect.DeepEqual(got, want) {
			t.Errorf("got %+v, want %+v", got, want)
		}
	}
	if got := decode(d, tcp4(t, 1, nil)); len(got) != 0 {
		t.Errorf("TCP packet: %+v", got)
	}
}

// Methods are reported in the decoder's order, each at most once.
func TestDecodeOrder(t *testing.T) {
	pkt := tcp4(t, 0x0101, nil, hostIDTCPOption(0x0202, 2))
	for _, ms := range [][]Method{{TCPOption, IPID}, {IPID, TCPOption}} {
		got := decode(&Decoder{Methods: ms}, pkt)
		if len(got) != 2 || got[0].Method != ms[0] || got[1].Method != ms[1] {
			t.Errorf("methods %v: got %+v", ms, got)
		}
	}
}

// A capture cut after the headers still decodes; one cut inside them does
// not, and never panics.
func TestDecodeTruncated(t *testing.T) {
	d := &Decoder{Methods: []Method{TCPOption, IPID}}
	full := serialize(t, ip4(pkt4{id: 0x4242, flags: layers.IPv4DontFragment}), syn(hostIDTCPOption(0x1234, 2)), gopacket.Payload(make([]byte, 1200)))
	hdrs := 20 + 28
	want := []Found{{Method: TCPOption, HostID: 0x1234, Len: 2}, {Method: IPID, HostID: 0x4242, Len: 2}}
	for _, n := range []int{hdrs, hdrs + 1, 256, 600, len(full)} {
		snap := append([]byte(nil), full[:n]...)
		if got := decode(d, snap); !reflect.DeepEqual(got, want) {
			t.Errorf("cut at %d: got %+v, want %+v", n, got, want)
		}
		if string(snap) != string(full[:n]) {
			t.Errorf("cut at %d: Decode modified the packet", n)
		}
	}
	if got := decode(d, full[:hdrs-1]); len(got) != 1 || got[0].Method != IPID {
		t.Errorf("cut inside the TCP header: got %+v, want the IP-ID only", got)
	}
	full6 := serialize(t, ip6(layers.IPProtocolTCP), syn(hostIDTCPOption(0x5678, 2)), gopacket.Payload(make([]byte, 1200)))
	if got := decode(d, full6[:40+28]); !reflect.DeepEqual(got, []Found{{Method: TCPOption, HostID: 0x5678, Len: 2}}) {
		t.Errorf("IPv6 cut after the TCP header: %+v", got)
	}
	for n := range 40 + 28 {
		decode(&Decoder{Methods: Methods}, full6[:n])
		decode(&Decoder{Methods: Methods}, full[:min(n, len(full))])
	}
}

func TestDecodeAllocs(t *testing.T) {
	d := &Decoder{Methods: Methods}
	pkts := [][]byte{
		tcp4(t, 1, []layers.IPv4Option{{OptionType: 30, OptionLength: 4, OptionData: []byte{0x12, 0x34}}}, hostIDTCPOption(2, 4)),
		serialize(t, ip6(layers.IPProtocolTCP), syn(hostIDTCPOption(2, 2)), gopacket.Payload(make([]byte, 1000)))[:100],
		serialize(t, ip6(139), gopacket.Payload(hipPacket(testHIT))),
	}
	out := make([]Found, 0, 8)
	for i, p := range pkts {
		if n := testing.AllocsPerRun(100, func() { out = d.Decode(p, out[:0]) }); n != 0 {
			t.Errorf("packet %d: %v allocations per Decode", i, n)
		}
		if n := testing.AllocsPerRun(100, func() { ParseFlow(p) }); n != 0 {
			t.Errorf("packet %d: %v allocations per ParseFlow", i, n)
		}
	}
}

func TestParseFlow(t *testing.T) {
	hopByHop := &layers.IPv6HopByHop{}
	hopByHop.NextHeader = layers.IPProtocolUDP
	hopByHop.Options = []*layers.IPv6HopByHopOption{{OptionType: 1, OptionData: []byte{0, 0, 0, 0}}}
	for _, c := range []struct {
		name    string
		pkt     []byte
		want    string
		opening bool
	}{
		{"v4 syn", tcp4(t, 1, nil), "192.0.2.1:40000 198.51.100.1:80 tcp flags=0x02 frag=false", true},
		{"v4 syn-ack", serialize(t, ip4(pkt4{}), &layers.TCP{SrcPort: 80, DstPort: 40000, SYN: true, ACK: true}), "192.0.2.1:80 198.51.100.1:40000 tcp flags=0x12 frag=false", false},
		{"v4 udp", serialize(t, ip4(pkt4{proto: layers.IPProtocolUDP}), &layers.UDP{SrcPort: 5353, DstPort: 53}), "192.0.2.1:5353 198.51.100.1:53 udp flags=0x00 frag=false", true},
		{"v4 later fragment", serialize(t, ip4(pkt4{fragOff: 1}), gopacket.Payload(make([]byte, 20))), "192.0.2.1:0 198.51.100.1:0 tcp flags=0x00 frag=true", false},
		{"v4 hip", serialize(t, ip4(pkt4{proto: 139}), gopacket.Payload(hipPacket(testHIT))), "192.0.2.1:0 198.51.100.1:0 hip flags=0x00 frag=false", true},
		{"v6 hop-by-hop udp", serialize(t, ip6(layers.IPProtocolIPv6HopByHop), hopByHop, &layers.UDP{SrcPort: 1, DstPort: 443}), "[2001:db8::1]:1 [2001:db8::2]:443 udp flags=0x00 frag=false", true},
		{"v6 first fragment", serialize(t, ip6(layers.IPProtocolIPv6Fragment), &layers.IPv6Fragment{NextHeader: layers.IPProtocolTCP, MoreFragments: true}, syn()), "[2001:db8::1]:40000 [2001:db8::2]:80 tcp flags=0x02 frag=true", true},
		{"v6 later fragment", serialize(t, ip6(layers.IPProtocolIPv6Fragment), &layers.IPv6Fragment{NextHeader: layers.IPProtocolTCP, FragmentOffset: 2}, gopacket.Payload(make([]byte, 16))), "[2001:db8::1]:0 [2001:db8::2]:0 tcp flags=0x00 frag=true", false},
	} {
		t.Run(c.name, func(t *testing.T) {
			f, ok := ParseFlow(c.pkt)
			if !ok {
				t.Fatal("not parsed")
			}
			got := fmt.Sprintf("%s:%d %s:%d %s flags=0x%02x frag=%v", bracket(f.Src.String()), f.SrcPort, bracket(f.Dst.String()), f.DstPort, ProtoName(f.Proto), f.TCPFlags, f.Fragment)
			if got != c.want {
				t.Errorf("got %s, want %s", got, c.want)
			}
			if f.Opening() != c.opening {
				t.Errorf("Opening() = %v", f.Opening())
			}
		})
	}
	for _, bad := range [][]byte{nil, {0x45}, {0x60, 0}, make([]byte, 40), {0x46, 0, 0, 20, 0, 0, 0, 0, 64, 6, 0, 0, 1, 2, 3, 4, 5, 6, 7, 8}} {
		if _, ok := ParseFlow(bad); ok {
			t.Errorf("ParseFlow(% x) ok", bad)
		}
	}
}

func bracket(s string) string {
	for _, c := range s {
		if c == ':' {
			return "[" + s + "]"
		}
	}
	return s
}
