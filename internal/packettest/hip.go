package packettest

import (
	"encoding/binary"
	"net"
	"testing"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
)

// HITs are ORCHIDv2 (RFC 7343: prefix 2001:20::/28).
var (
	HitI = [16]byte{0x20, 0x01, 0x00, 0x2a, 0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77, 0x88, 0x99, 0xaa, 0xbb, 0xcc}
	HitR = [16]byte{0x20, 0x01, 0x00, 0x2b, 0xff, 0xee, 0xdd, 0xcc, 0xbb, 0xaa, 0x99, 0x88, 0x77, 0x66, 0x55, 0x44}
)

// HIPI1 builds, by hand (gopacket has no HIP layer), a HIP I1 packet
// (RFC 7401 §5.3.1) with one DH_GROUP_LIST parameter (§5.2.6, type 511,
// groups 9, 8, 7, padded to 8 bytes). The checksum (§5.1.1) is computed
// over the pseudo-header given (addresses, then zero, 139, length).
func HIPI1(addrs []byte) []byte {
	h := make([]byte, 40, 48)
	h[0] = 59          // Next Header: IPPROTO_NONE
	h[1] = 48/8 - 1    // Header Length
	h[2] = 1           // fixed 0 bit, Packet Type I1
	h[3] = 2<<4 | 0x01 // Version 2, reserved, fixed 1 bit
	copy(h[8:], HitI[:])
	copy(h[24:], HitR[:])
	h = append(h, 0x01, 0xff, 0, 3, 9, 8, 7, 0)
	ph := append(append([]byte{}, addrs...), 0, 0, 0, 139)
	ph = binary.BigEndian.AppendUint16(ph, uint16(len(h)))
	binary.BigEndian.PutUint16(h[4:], gopacket.FoldChecksum(gopacket.ComputeChecksum(h, gopacket.ComputeChecksum(ph, 0))))
	return h
}

func HIP4(tb testing.TB, hip []byte) []byte {
	ip := IPHdr()
	ip.Protocol = 139
	sb := gopacket.NewSerializeBuffer()
	if err := gopacket.SerializeLayers(sb, gopacket.SerializeOptions{FixLengths: true, ComputeChecksums: true}, ip, gopacket.Payload(hip)); err != nil {
		tb.Fatal(err)
	}
	return Clone(sb.Bytes())
}

func HIP6(tb testing.TB, hip []byte) []byte {
	ip := &layers.IPv6{Version: 6, NextHeader: 139, HopLimit: 64, SrcIP: net.ParseIP("2001:db8::7"), DstIP: net.ParseIP("2001:db8:1::10")}
	sb := gopacket.NewSerializeBuffer()
	if err := gopacket.SerializeLayers(sb, gopacket.SerializeOptions{FixLengths: true}, ip, gopacket.Payload(hip)); err != nil {
		tb.Fatal(err)
	}
	return Clone(sb.Bytes())
}
