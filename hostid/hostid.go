// Package hostid derives the HOST_ID of an inside host from its address (and,
// for the map source, the interface the packet arrived on). It is pure logic:
// files are parsed from readers, interface names resolved by a caller-supplied
// function, so everything here is tested without root.
package hostid

import (
	"encoding/binary"
	"fmt"
	"net/netip"
)

// Source yields the HOST_ID of an inside host. inIf is the index of the
// interface the packet came in on (0 when unknown). ok is false when the
// source has no identifier for that host; the packet then goes out unmarked.
// Implementations must not allocate: they run once per queued packet.
type Source interface {
	HostID(src netip.Addr, inIf uint32) (id uint32, ok bool)
	// Bits is the width of the identifiers this source yields (16 or 32).
	Bits() int
}

// Lower16 is the draft's example: the low 16 bits of the inside IPv4 address
// (RFC 6967 §3; draft-boucadair-intarea-nat-reveal-analysis §3.1). For an IPv6 host, the low 16 bits of its
// address, i.e. of its interface identifier (RFC 4291 §2.5.1).
type Lower16 struct{}

func (Lower16) HostID(src netip.Addr, _ uint32) (uint32, bool) {
	a := src.As16() // IPv4 as ::ffff:a.b.c.d: the low bytes are the same
	return uint32(binary.BigEndian.Uint16(a[14:])), true
}

func (Lower16) Bits() int { return 16 }

// Address is the whole inside IPv4 address, 32 bits. An IPv6 address does
// not fit any carrier: for IPv6 hosts it is the low 32 bits of the address
// (the lower half of the interface identifier, RFC 4291 §2.5.1), unique
// within one /64 when identifiers are assigned so (e.g. DHCPv6, static).
type Address struct{}

func (Address) HostID(src netip.Addr, _ uint32) (uint32, bool) {
	a := src.As16()
	return binary.BigEndian.Uint32(a[12:]), true
}

func (Address) Bits() int { return 32 }

// New returns the source named by name ("lower16", "address", "hash", "map").
// key is the hash key file's content and mapFile the map file's content; each
// is only read by the source that needs it. ifIndex resolves interface names
// used in the map file.
func New(name string, bits int, key []byte, mapFile []byte, ifIndex func(string) (uint32, error)) (Source, error) {
	switch name {
	case "lower16":
		return Lower16{}, nil
	case "address":
		return Address{}, nil
	case "hash":
		return NewHash(key, bits)
	case "map":
		return ParseMap(mapFile, bits, ifIndex)
	}
	return nil, fmt.Errorf("unknown source %q (want lower16, address, hash or map)", name)
}
