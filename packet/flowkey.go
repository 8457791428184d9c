// Package packet is what every step of the packet path shares about a
// queued packet: its flow key.
package packet

import "net/netip"

// FlowKey is a TCP or UDP flow seen from its inside end: protocol, inside
// host and port, server and port. Addresses are IPv4 (Is4, never
// IPv4-mapped) or IPv6, without zone: netip.Addr is comparable and built
// without allocation.
type FlowKey struct {
	Proto      uint8 // 6 TCP, 17 UDP
	Inside     netip.Addr
	InsidePort uint16
	Server     netip.Addr
	ServerPort uint16
}

// Tuple is the flow's original tuple: inside end, server end.
func (k FlowKey) Tuple() (src, dst netip.AddrPort) {
	return netip.AddrPortFrom(k.Inside, k.InsidePort), netip.AddrPortFrom(k.Server, k.ServerPort)
}
