package reveal

import (
	"bytes"
	"testing"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
)

// FuzzDecode checks that Decode never panics, reports only enabled methods
// with sane lengths, does not modify its input, and that bytes past the IP
// length or a cut after the headers do not change what it finds.
func FuzzDecode(f *testing.F) {
	ipOpt := []layers.IPv4Option{{OptionType: 30, OptionLength: 4, OptionData: []byte{0x12, 0x34}}}
	for _, seed := range [][]byte{
		// IPv4 SYN carrying the HOST_ID three ways: IP option, TCP option, IP-ID.
		tcp4(f, 0x0007, ipOpt, hostIDTCPOption(0x01020304, 4)),
		// An IP option list that is malformed (length 1) before ours.
		malformedIPOptions(f, ipOpt[0]),
		// A TCP option with the HOST_ID ExID but length 5.
		tcp4(f, 1, nil, layers.TCPOption{OptionType: 253, OptionLength: 5, OptionData: []byte{0x03, 0x48, 1}}),
		// IPv6 SYN behind a Destination Options header of type 0x1E.
		serialize(f, ip6(layers.IPProtocolIPv6Destination), destOpts(layers.IPProtocolTCP, 0x1e, 0xab, 0xcd), syn(hostIDTCPOption(9, 2))),
		// IPv6 UDP behind Hop-by-Hop and Fragment headers (first fragment).
		serialize(f, ip6(layers.IPProtocolIPv6Fragment), &layers.IPv6Fragment{NextHeader: layers.IPProtocolUDP, MoreFragments: true}, &layers.UDP{SrcPort: 1, DstPort: 2}),
		// HIP I1 over IPv4 and IPv6.
		serialize(f, ip4(pkt4{proto: 139}), gopacket.Payload(hipPacket(testHIT))),
		serialize(f, ip6(139), gopacket.Payload(hipPacket(testHIT))),
		// A SYN with 1000 bytes of data, cut after 60 bytes (a capture).
		serialize(f, ip4(pkt4{flags: layers.IPv4DontFragment}), syn(hostIDTCPOption(5, 2)), gopacket.Payload(make([]byte, 1000)))[:60],
		// IPv4 later fragment; IPv6 header alone; garbage.
		serialize(f, ip4(pkt4{fragOff: 8, options: ipOpt}), gopacket.Payload(make([]byte, 8))),
		serialize(f, ip6(59)),
		{0x4f}, {0x60},
	} {
		f.Add(seed, uint8(0))
		f.Add(seed, uint8(0xff))
	}
	f.Fuzz(func(t *testing.T, pkt []byte, sel uint8) {
		var ms []Method
		for i, m := range Methods {
			if sel&(1<<i) != 0 {
				ms = append(ms, m)
			}
		}
		d := &Decoder{Methods: ms}
		if sel&0x80 != 0 {
			d.Types = map[Method]byte{IPOption: 158, DestOpt: 0x3e}
		}
		orig := bytes.Clone(pkt)
		got := d.Decode(pkt, nil)
		if !bytes.Equal(pkt, orig) {
			t.Fatal("Decode modified its input")
		}
		for _, fd := range got {
			if !d.Enabled(fd.Method) {
				t.Errorf("%s reported but not enabled (%v)", fd.Method, ms)
			}
			switch {
			case fd.Method == HIP && fd.Len == 16 && fd.HostID == 0:
			case fd.Method != HIP && fd.Len == 2 && fd.HostID <= 0xffff:
			case fd.Method != HIP && fd.Len == 4 && fd.Method != IPID:
			default:
				t.Errorf("bad finding %+v", fd)
			}
		}
		if _, ok := ParseFlow(pkt); !ok && len(got) != 0 {
			t.Errorf("found %+v in a packet ParseFlow rejects", got)
		}
		// Bytes past the IP length are not part of the packet. (Bytes
		// appended to a packet cut short are: they may complete a header.)
		if complete(pkt) {
			longer := append(bytes.Clone(pkt), 0xde, 0xad, 0xbe, 0xef)
			if again := d.Decode(longer, nil); !sameFound(got, again) {
				t.Errorf("trailing bytes changed the findings: %+v, then %+v", got, again)
			}
		}
	})
}

func sameFound(a, b []Found) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// malformedIPOptions is a SYN whose IP options are a record route (7) with
// length 1, then opt.
func malformedIPOptions(t testing.TB, opt layers.IPv4Option) []byte {
	p := tcp4(t, 1, []layers.IPv4Option{{OptionType: 7, OptionLength: 3, OptionData: []byte{0}}, opt})
	p[21] = 1
	return p
}

// complete reports whether pkt holds all the bytes its IP length says.
func complete(pkt []byte) bool {
	switch {
	case len(pkt) >= 20 && pkt[0]>>4 == 4:
		return int(pkt[2])<<8|int(pkt[3]) <= len(pkt)
	case len(pkt) >= 40 && pkt[0]>>4 == 6:
		return 40+(int(pkt[4])<<8|int(pkt[5])) <= len(pkt)
	}
	return false
}
