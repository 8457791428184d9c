// Package markbits is the contract between the ruleset and the packet path
// about packet marks and ct marks: how a tag rule writes an inside address
// into a packet mark (post-NAT placement), what the in-kernel ip-id
// learner hands the ruleset's map, and the request bodies the packet path
// hands the ruleset's uploads set. Both sides import it, so neither needs
// the other: the packet path does not import the nftables builder.
//
// The single-bit masks (track, done, select, seqadj) are chosen by the
// configuration and checked by the ruleset's Spec; the packet path only
// sets or tests the bits it is given.
package markbits

import (
	"encoding/binary"
	"net/netip"
)

// SourceFromMark returns the address a tag rule (post-NAT placement) put in
// a packet mark: `meta mark set @nh,96,32` copies the 4 bytes of the IPv4
// source address (RFC 791 §3.1) unconverted, so the mark read as a
// host-order integer holds them in memory order.
func SourceFromMark(mark uint32) netip.Addr {
	var a [4]byte
	binary.NativeEndian.PutUint32(a[:], mark)
	return netip.AddrFrom4(a)
}

// MarkFromSource is the inverse of SourceFromMark: the packet mark a tag
// rule sets for IPv4 source a.
func MarkFromSource(a netip.Addr) uint32 {
	b := a.As4()
	return binary.NativeEndian.Uint32(b[:])
}

// HostIDElement is one learned host of the ip-id map: its inside IPv4
// address and HOST_ID (the packet path learns it, the ruleset stores it).
type HostIDElement struct {
	Inside netip.Addr
	ID     uint16
}

// SingleBit reports whether m is a mask of exactly one bit, as every mark
// bit of the contract must be.
func SingleBit(m uint32) bool { return m != 0 && m&(m-1) == 0 }

// Upload is one element of the ruleset's uploads set: the client segments
// of the flow Src -> Dst (TCP, the inside host's own address and port)
// whose sequence number lies in [First, Last] skip the queue (a request
// body the kernel's sequence adjustment translates alone). First <= Last:
// a range across 2^32 is two elements.
type Upload struct {
	Src, Dst    netip.AddrPort
	First, Last uint32
}
