package main

import (
	"bytes"
	"encoding/binary"
	"errors"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
	"github.com/gopacket/gopacket/pcapgo"

	"github.com/natreveal/natreveal/internal/cli"
	"github.com/natreveal/natreveal/reveal"
)

var (
	cli4 = net.IP{192, 0, 2, 1}
	srv4 = net.IP{198, 51, 100, 1}
	cli6 = net.ParseIP("2001:db8::1")
	srv6 = net.ParseIP("2001:db8::2")
	macA = net.HardwareAddr{2, 0, 0, 0, 0, 1}
	macB = net.HardwareAddr{2, 0, 0, 0, 0, 2}
	t0   = time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
)

func ser(t *testing.T, ls ...gopacket.SerializableLayer) []byte {
	t.Helper()
	var nl gopacket.NetworkLayer
	for _, l := range ls {
		if n, ok := l.(gopacket.NetworkLayer); ok && nl == nil {
			nl = n
		}
		switch tl := l.(type) {
		case *layers.TCP:
			tl.SetNetworkLayerForChecksum(nl)
		case *layers.UDP:
			tl.SetNetworkLayerForChecksum(nl)
		}
	}
	buf := gopacket.NewSerializeBuffer()
	if err := gopacket.SerializeLayers(buf, gopacket.SerializeOptions{FixLengths: true, ComputeChecksums: true}, ls...); err != nil {
		t.Fatal(err)
	}
	return bytes.Clone(buf.Bytes())
}

func eth(et layers.EthernetType) *layers.Ethernet {
	return &layers.Ethernet{SrcMAC: macA, DstMAC: macB, EthernetType: et}
}

// v4 is an atomic IPv4 header with IP-ID 0x4242 and, when opt names a
// type and data, one IP option (RFC 791 §3.1: type, length, data).
func v4(proto layers.IPProtocol, opt ...byte) *layers.IPv4 {
	ip := &layers.IPv4{Version: 4, TTL: 64, Id: 0x4242, Flags: layers.IPv4DontFragment, Protocol: proto, SrcIP: cli4, DstIP: srv4}
	if opt != nil {
		ip.Options = []layers.IPv4Option{{OptionType: opt[0], OptionLength: byte(2 + len(opt) - 1), OptionData: opt[1:]}}
	}
	return ip
}

func v6(next layers.IPProtocol) *layers.IPv6 {
	return &layers.IPv6{Version: 6, HopLimit: 64, NextHeader: next, SrcIP: cli6, DstIP: srv6}
}

func tcpSYN(sport layers.TCPPort, opts ...layers.TCPOption) *layers.TCP {
	return &layers.TCP{SrcPort: sport, DstPort: 80, SYN: true, Window: 1000, Options: opts}
}

// hipI1 is a HIP I1 (RFC 7401 §5.3.1) from the HIT 2001:2a::7.
func hipI1() []byte {
	h := []byte{59, 4, 0x01, 0x21, 0, 0, 0, 0}
	h = append(h, 0x20, 0x01, 0x00, 0x2a, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 7)
	return append(h, make([]byte, 16)...)
}

// ipPackets are a capture's IP packets, one second apart; wantText is the
// report decode gives for them.
func ipPackets(t *testing.T) [][]byte {
	dst := &layers.IPv6Destination{Options: []*layers.IPv6DestinationOption{
		{OptionType: 0x1e, OptionData: []byte{0xbe, 0xef}}, {OptionType: 1, OptionData: []byte{}}}}
	dst.NextHeader = layers.IPProtocolTCP
	tcpOpt := layers.TCPOption{OptionType: 253, OptionLength: 8, OptionData: []byte{0x03, 0x48, 0xca, 0xfe, 0xf0, 0x0d}}
	return [][]byte{
		ser(t, v4(layers.IPProtocolTCP, 30, 0x12, 0x34), tcpSYN(40000)),
		ser(t, v4(layers.IPProtocolTCP, 30, 0x12, 0x34), &layers.TCP{SrcPort: 40000, DstPort: 80, SYN: true, ACK: true}), // not an opening
		ser(t, v4(layers.IPProtocolUDP, 30, 0x55, 0x66), &layers.UDP{SrcPort: 5000, DstPort: 53}, gopacket.Payload("q1")),
		ser(t, v4(layers.IPProtocolUDP, 30, 0x55, 0x66), &layers.UDP{SrcPort: 5000, DstPort: 53}, gopacket.Payload("q2")), // same flow
		ser(t, v6(layers.IPProtocolIPv6Destination), dst, tcpSYN(40001)),
		ser(t, v4(layers.IPProtocolTCP), tcpSYN(40002, tcpOpt), gopacket.Payload(make([]byte, 100))),
		ser(t, v6(139), gopacket.Payload(hipI1())),
		ser(t, v4(layers.IPProtocolTCP), tcpSYN(40003)), // nothing to report
	}
}

var wantText = []string{
	"2026-01-02T03:04:05Z tcp 192.0.2.1:40000 -> :80 ip-option 0x1234",
	"2026-01-02T03:04:07Z udp 192.0.2.1:5000 -> :53 ip-option 0x5566",
	"2026-01-02T03:04:09Z tcp [2001:db8::1]:40001 -> :80 dest-opt 0xbeef",
	"2026-01-02T03:04:10Z tcp 192.0.2.1:40002 -> :80 tcp-option 0xcafef00d",
	"2026-01-02T03:04:11Z hip 2001:db8::1 hip 2001:2a::7",
}

func ci(i, n int) gopacket.CaptureInfo {
	return gopacket.CaptureInfo{Timestamp: t0.Add(time.Duration(i) * time.Second), CaptureLength: n, Length: n}
}

// writePcap writes the packets framed for link type lt.
func writePcap(t *testing.T, lt layers.LinkType, frame func(ip []byte) []byte) string {
	t.Helper()
	var b bytes.Buffer
	w := pcapgo.NewWriterNanos(&b)
	if err := w.WriteFileHeader(65535, lt); err != nil {
		t.Fatal(err)
	}
	for i, p := range ipPackets(t) {
		f := frame(p)
		if err := w.WritePacket(ci(i, len(f)), f); err != nil {
			t.Fatal(err)
		}
	}
	// An ARP frame or other non-IP traffic is skipped.
	if lt == layers.LinkTypeEthernet {
		arp := ser(t, eth(layers.EthernetTypeARP), &layers.ARP{AddrType: 1, Protocol: 0x800, HwAddressSize: 6, ProtAddressSize: 4,
			SourceHwAddress: macA, SourceProtAddress: cli4, DstHwAddress: macB, DstProtAddress: srv4})
		w.WritePacket(ci(20, len(arp)), arp)
	}
	path := filepath.Join(t.TempDir(), "c.pcap")
	if err := os.WriteFile(path, b.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

func ethernetFrame(vlan bool) func([]byte) []byte {
	return func(ip []byte) []byte {
		et := uint16(0x0800)
		if ip[0]>>4 == 6 {
			et = 0x86dd
		}
		f := append(append([]byte{}, macB...), macA...)
		if vlan {
			f = binary.BigEndian.AppendUint16(f, 0x8100)
			f = binary.BigEndian.AppendUint16(f, 42)
		}
		f = binary.BigEndian.AppendUint16(f, et)
		return append(f, ip...)
	}
}

func etherType(ip []byte) uint16 {
	if ip[0]>>4 == 6 {
		return 0x86dd
	}
	return 0x0800
}

// sllFrame: packet type, ARPHRD_ETHER, address length, address (8), protocol.
func sllFrame(ip []byte) []byte {
	f := []byte{0, 0, 0, 1, 0, 6}
	f = append(append(f, macA...), 0, 0)
	f = binary.BigEndian.AppendUint16(f, etherType(ip))
	return append(f, ip...)
}

// sll2Frame: protocol, reserved, interface index, ARPHRD_ETHER, packet
// type, address length, address (8).
func sll2Frame(ip []byte) []byte {
	f := binary.BigEndian.AppendUint16(nil, etherType(ip))
	f = append(f, 0, 0, 0, 0, 0, 2, 0, 1, 0, 6)
	f = append(append(f, macA...), 0, 0)
	return append(f, ip...)
}

func decodeLines(t *testing.T, path string, d *reveal.Decoder, all bool, f reveal.Format) []string {
	t.Helper()
	var out bytes.Buffer
	n, err := decodeFile(path, d, all, f, &out)
	if err != nil {
		t.Fatalf("decodeFile: %v", err)
	}
	lines := strings.Split(strings.TrimSuffix(out.String(), "\n"), "\n")
	if out.Len() == 0 {
		lines = nil
	}
	if n != len(lines) {
		t.Errorf("decodeFile says %d records, wrote %d lines", n, len(lines))
	}
	return lines
}

var allButIPID = &reveal.Decoder{Methods: reveal.DefaultMethods}

func TestDecodePcapLinkTypes(t *testing.T) {
	for _, c := range []struct {
		name  string
		lt    layers.LinkType
		frame func([]byte) []byte
	}{
		{"ethernet", layers.LinkTypeEthernet, ethernetFrame(false)},
		{"ethernet 802.1Q", layers.LinkTypeEthernet, ethernetFrame(true)},
		{"raw", layers.LinkTypeRaw, func(b []byte) []byte { return b }},
		{"sll", layers.LinkTypeLinuxSLL, sllFrame},
		{"sll2", layers.LinkTypeLinuxSLL2, sll2Frame},
	} {
		t.Run(c.name, func(t *testing.T) {
			got := decodeLines(t, writePcap(t, c.lt, c.frame), allButIPID, false, reveal.FormatText)
			if strings.Join(got, "\n") != strings.Join(wantText, "\n") {
				t.Errorf("got:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(wantText, "\n"))
			}
		})
	}
}

func TestDecodeJSONAndMethods(t *testing.T) {
	path := writePcap(t, layers.LinkTypeEthernet, ethernetFrame(false))
	got := decodeLines(t, path, &reveal.Decoder{Methods: []reveal.Method{reveal.IPID}}, true, reveal.FormatJSON)
	want := []string{
		`{"time":"2026-01-02T03:04:05Z","src":"192.0.2.1:40000","dst_port":80,"proto":"tcp","method":"ip-id","host_id":"0x4242"}`,
		`{"time":"2026-01-02T03:04:07Z","src":"192.0.2.1:5000","dst_port":53,"proto":"udp","method":"ip-id","host_id":"0x4242"}`,
		`{"time":"2026-01-02T03:04:09Z","src":"[2001:db8::1]:40001","dst_port":80,"proto":"tcp"}`, // --all: IPv6 has no IP-ID
		`{"time":"2026-01-02T03:04:10Z","src":"192.0.2.1:40002","dst_port":80,"proto":"tcp","method":"ip-id","host_id":"0x4242"}`,
		`{"time":"2026-01-02T03:04:11Z","src":"2001:db8::1","proto":"hip"}`,
		`{"time":"2026-01-02T03:04:12Z","src":"192.0.2.1:40003","dst_port":80,"proto":"tcp","method":"ip-id","host_id":"0x4242"}`,
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("got:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

// pcapng, with two interfaces of different link types.
func TestDecodePcapng(t *testing.T) {
	var b bytes.Buffer
	w, err := pcapgo.NewNgWriter(&b, layers.LinkTypeLinuxSLL2)
	if err != nil {
		t.Fatal(err)
	}
	raw, err := w.AddInterface(pcapgo.NgInterface{Name: "tun0", LinkType: layers.LinkTypeRaw, SnapLength: 65535})
	if err != nil {
		t.Fatal(err)
	}
	for i, p := range ipPackets(t) {
		c, f := ci(i, 0), sll2Frame(p)
		if i%2 == 1 {
			c.InterfaceIndex, f = raw, p
		}
		c.CaptureLength, c.Length = len(f), len(f)
		if err := w.WritePacket(c, f); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Flush(); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "c.pcapng")
	if err := os.WriteFile(path, b.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	got := decodeLines(t, path, allButIPID, false, reveal.FormatText)
	if strings.Join(got, "\n") != strings.Join(wantText, "\n") {
		t.Errorf("got:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(wantText, "\n"))
	}
}

// A capture whose last packet is cut short still reports the others.
func TestDecodeTruncatedFile(t *testing.T) {
	path := writePcap(t, layers.LinkTypeRaw, func(b []byte) []byte { return b })
	data, _ := os.ReadFile(path)
	os.WriteFile(path, data[:len(data)-10], 0o644)
	got := decodeLines(t, path, allButIPID, false, reveal.FormatText)
	if len(got) != len(wantText) { // the cut packet had nothing to report
		t.Errorf("got %d lines:\n%s", len(got), strings.Join(got, "\n"))
	}
}

// A missing or unreadable file is a usage error (exit 2), one line.
func TestDecodeBadFile(t *testing.T) {
	dir := t.TempDir()
	notPcap := filepath.Join(dir, "x.txt")
	os.WriteFile(notPcap, []byte("hello, world\n"), 0o644)
	empty := filepath.Join(dir, "empty")
	os.WriteFile(empty, nil, 0o644)
	var ppp bytes.Buffer
	pw := pcapgo.NewWriter(&ppp)
	pw.WriteFileHeader(100, layers.LinkTypePPP)
	unsupported := filepath.Join(dir, "ppp.pcap")
	os.WriteFile(unsupported, ppp.Bytes(), 0o644)
	for _, path := range []string{filepath.Join(dir, "missing.pcap"), notPcap, empty, unsupported, dir} {
		_, err := decodeFile(path, allButIPID, false, reveal.FormatJSON, &bytes.Buffer{})
		var ee *cli.ExitError
		if !errors.As(err, &ee) || ee.Code != 2 || strings.Contains(err.Error(), "\n") {
			t.Errorf("%s: %v, want a one-line usage error", path, err)
			continue
		}
		if !strings.Contains(err.Error(), path) {
			t.Errorf("%s: error %q does not name the file", path, err)
		}
		if path == dir && !strings.Contains(err.Error(), "is a directory") {
			t.Errorf("%s: error %q does not say it is a directory", path, err)
		}
		t.Logf("%v", err)
	}
}
