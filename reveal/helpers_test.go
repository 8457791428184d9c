package reveal

import (
	"net"
	"testing"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"

	"github.com/natreveal/natreveal/method/destopt"
)

// DestOpt is dest-opt, which reveal reads through its registry entry
// (method/destopt) and names nowhere else.
const DestOpt = Method(destopt.Name)

// Test addresses (RFC 5737, RFC 3849).
var (
	client4 = net.IP{192, 0, 2, 1}
	server4 = net.IP{198, 51, 100, 1}
	client6 = net.ParseIP("2001:db8::1")
	server6 = net.ParseIP("2001:db8::2")
)

// hostIDTCPOption is the RFC 7974 §3 option: kind 253, length, ExID
// 0x0348, HOST_ID in 2 or 4 bytes.
func hostIDTCPOption(id uint32, n int) layers.TCPOption {
	data := []byte{0x03, 0x48}
	if n == 2 {
		data = append(data, byte(id>>8), byte(id))
	} else {
		data = append(data, byte(id>>24), byte(id>>16), byte(id>>8), byte(id))
	}
	return layers.TCPOption{OptionType: 253, OptionLength: byte(2 + len(data)), OptionData: data}
}

func syn(opts ...layers.TCPOption) *layers.TCP {
	return &layers.TCP{SrcPort: 40000, DstPort: 80, Seq: 1, SYN: true, Window: 64240, Options: opts}
}

type pkt4 struct {
	id      uint16
	flags   layers.IPv4Flag
	fragOff uint16
	options []layers.IPv4Option
	proto   layers.IPProtocol
}

// serialize builds a packet from ls with lengths and checksums fixed.
func serialize(t testing.TB, ls ...gopacket.SerializableLayer) []byte {
	t.Helper()
	for _, l := range ls {
		if tcp, ok := l.(*layers.TCP); ok {
			for _, n := range ls {
				if nl, ok := n.(gopacket.NetworkLayer); ok {
					tcp.SetNetworkLayerForChecksum(nl)
				}
			}
		}
		if udp, ok := l.(*layers.UDP); ok {
			for _, n := range ls {
				if nl, ok := n.(gopacket.NetworkLayer); ok {
					udp.SetNetworkLayerForChecksum(nl)
				}
			}
		}
	}
	buf := gopacket.NewSerializeBuffer()
	if err := gopacket.SerializeLayers(buf, gopacket.SerializeOptions{FixLengths: true, ComputeChecksums: true}, ls...); err != nil {
		t.Fatal(err)
	}
	return append([]byte(nil), buf.Bytes()...)
}

func ip4(p pkt4) *layers.IPv4 {
	proto := p.proto
	if proto == 0 {
		proto = layers.IPProtocolTCP
	}
	return &layers.IPv4{
		Version: 4, TTL: 64, Id: p.id, Flags: p.flags, FragOffset: p.fragOff,
		Protocol: proto, SrcIP: client4, DstIP: server4, Options: p.options,
	}
}

func ip6(next layers.IPProtocol) *layers.IPv6 {
	return &layers.IPv6{Version: 6, HopLimit: 64, NextHeader: next, SrcIP: client6, DstIP: server6}
}

// tcp4 is an IPv4 SYN with DF set, ID id, the given IP and TCP options.
func tcp4(t testing.TB, id uint16, ipOpts []layers.IPv4Option, tcpOpts ...layers.TCPOption) []byte {
	return serialize(t, ip4(pkt4{id: id, flags: layers.IPv4DontFragment, options: ipOpts}), syn(tcpOpts...))
}

// hipPacket is a HIP I1 (RFC 7401 §5.1, §5.3.1): Next Header 59, length
// 4 (8-octet units past the first 8: the two HITs), type 1, version 2,
// checksum (left 0), controls, sender's HIT, receiver's HIT (zero: the
// opportunistic mode of §4.1.8).
func hipPacket(hit [16]byte) []byte {
	h := []byte{59, 4, 0x01, 0x21, 0, 0, 0, 0}
	h = append(h, hit[:]...)
	return append(h, make([]byte, 16)...)
}

var testHIT = [16]byte{0x20, 0x01, 0x00, 0x2a, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x12, 0x34} // 2001:2a::1234, ORCHIDv2 prefix 2001:20::/28 (RFC 7343)

// destOpts is an IPv6 Destination Options header with one option, padded
// with Pad1 or PadN to a multiple of 8 bytes (RFC 8200 §4.2).
func destOpts(next layers.IPProtocol, typ byte, data ...byte) *layers.IPv6Destination {
	d := &layers.IPv6Destination{Options: []*layers.IPv6DestinationOption{{OptionType: typ, OptionData: data}}}
	switch pad := (8 - (2+2+len(data))%8) % 8; pad {
	case 0:
	case 1:
		d.Options = append(d.Options, &layers.IPv6DestinationOption{OptionType: 0})
	default:
		d.Options = append(d.Options, &layers.IPv6DestinationOption{OptionType: 1, OptionData: make([]byte, pad-2)})
	}
	d.NextHeader = next
	return d
}
