package method

import (
	"net/netip"

	"github.com/natreveal/natreveal/packet"
)

// Layer is the header a packet step writes. The packet path runs the
// enabled methods' steps from the outside in (the IP header and its
// extension headers, then the transport header; payload methods last, in
// package stream), and in registry order within a layer: an option that
// grows an inner header is sized after the outer ones took their room.
type Layer uint8

const (
	LayerIP        Layer = iota // the IPv4 header or the IPv6 header chain (IP-ID, IPv4 options, IPv6 extension headers)
	LayerTransport              // the TCP header (tcp-option)
)

// Skip is what a step returns for a packet it has nothing to do with (not
// its family, not a segment or datagram it marks): not counted.
const Skip = packet.NumResults

// Packet is what the packet path tells a step about the packet besides its
// bytes and view.
type Packet struct {
	ID uint32 // the inside host's HOST_ID (RFC 6967 §3)
	// Inside is the inside host's address (before NAT), whose HOST_ID ID is.
	Inside netip.Addr
	// SYN: a TCP SYN (no ACK, RST or FIN) from an inside host.
	SYN bool
	// Tracked: a later client segment of a followed flow in its tracked
	// phase (RFC 7974 §4.2; Needs.Track), or the SYN that starts one.
	Tracked bool
	// UDPSeq is a UDP datagram's number in its flow, from 1; 0 for TCP.
	UDPSeq int
	// MTU is the outgoing interface's MTU; 0 when unknown.
	MTU int
}

// Step is a method's packet step: it writes the HOST_ID into one queued
// packet. Steps are built from the method's configuration block; they are
// pure and allocate nothing.
type Step interface {
	// Name is the method's name, as the registry spells it.
	Name() string
	// Layer is the header the step writes.
	Layer() Layer
	// Needs is what the step needs from the ruleset and the packet path:
	// followed flows (Track, Track6), the first datagrams of UDP flows.
	Needs() Needs
	// Rewrite writes the HOST_ID into the packet buf[:v.N], parsed as v
	// (cap(buf) is the room to grow), and keeps v true. res is the
	// encoder's result, which the packet path counts, or Skip; n > 0 is the
	// packet's new length when it changed (the HOST_ID written, or a forged
	// one stripped), else 0.
	Rewrite(v *packet.View, buf []byte, p Packet) (res packet.Result, n int)
}

// PerSegment is a step that writes, into TCP segments after the SYN, a
// value that must differ per segment (ip-id in scope new or all): the
// kernel numbers the IP-IDs of a GSO super-packet's segments up from the
// first, so the queues must not take such packets whole.
type PerSegment interface {
	PerSegment() bool
}

// AntiSpoof is a step whose carrier an inside host could fill itself: a
// packet natreveal does not mark must not leave with a HOST_ID the host
// forged (RFC 6967 §3: a server must not take a host's own claim for the
// NAT's). The packet path resolves it once, when it is built, and calls
// Unmarked for a packet from an inside host that the step could not mark
// (its Rewrite returned neither Written nor Unchanged) and for a SYN no
// step saw (no HOST_ID for the host, no conntrack answer).
type AntiSpoof interface {
	// Unmarked removes a HOST_ID of the method's from the packet buf[:v.N],
	// parsed as v, and keeps v true: n > 0 is the packet's new length. drop:
	// one may be there and cannot be removed; the packet path drops the
	// packet and counts it refused. n 0, drop false: none is there.
	Unmarked(v *packet.View, buf []byte) (n int, drop bool)
}
