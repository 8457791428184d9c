package ident

import (
	"fmt"
	"net/netip"
)

// Resolve finds the original (inside) source of the translated TCP
// connection that left the NAT as local -> remote; ok is false when
// conntrack has no such connection.
type Resolve func(local, remote netip.AddrPort) (inside netip.AddrPort, ok bool, err error)

// NATLookup is the Lookup of a NAT: resolve finds the connection's original
// source, and only a source inside one of the inside prefixes gets a
// HOST_ID from hostID. Any other connection, the NAT's own above all (its
// original source is the public address), is NO-USER: it has no inside
// owner to identify (RFC 1413 §6: a server need not identify every
// connection, and NO-USER is the answer for one it does not).
func NATLookup(resolve Resolve, inside []netip.Prefix, hostID func(netip.Addr) (uint32, bool)) Lookup {
	return func(local, remote netip.AddrPort) (uint32, bool, error) {
		in, ok, err := resolve(local, remote)
		if err != nil {
			return 0, false, fmt.Errorf("resolving %v <-> %v: %w", local, remote, err)
		}
		if !ok {
			return 0, false, nil
		}
		a := in.Addr().Unmap().WithZone("")
		if !isInside(a, inside) {
			return 0, false, nil
		}
		id, ok := hostID(a)
		return id, ok, nil
	}
}

func isInside(a netip.Addr, inside []netip.Prefix) bool {
	for _, p := range inside {
		if p.Contains(a) {
			return true
		}
	}
	return false
}
