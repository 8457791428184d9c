// Package reveal is the server side of natreveal: it reads back the HOST_ID
// that a NAT running natreveal wrote into a packet (RFC 6967 §5, the methods
// under method/), and describes each finding as a Record, the JSON line that
// `natreveal observe`, `decode` and `serve` print.
//
// Everything here is pure: no syscalls, no allocation on the packet path
// (Decoder.Decode, ParseFlow), no panics on any input. Packets start at the
// IPv4 or IPv6 header and may be captures cut short after the headers (an
// NFLOG copy range, a pcap snap length).
package reveal

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/natreveal/natreveal/method"
	"github.com/natreveal/natreveal/method/all"
	"github.com/natreveal/natreveal/method/hip"
	"github.com/natreveal/natreveal/method/ipid"
	"github.com/natreveal/natreveal/method/ipoption"
	"github.com/natreveal/natreveal/method/tcpoption"
)

// Method names a HOST_ID method as the registry (method/all) spells it.
type Method string

// The methods a server reads from packets, each described in its package
// under method/; the others are read the same way by name (Method(name)).
const (
	// TCPOption is the RFC 7974 TCP option: kind 253, ExID 0x0348, a 2- or
	// 4-byte HOST_ID (IPv4 and IPv6).
	TCPOption Method = tcpoption.Name
	// IPID is the IPv4 Identification field of atomic datagrams (RFC 6864
	// §4: DF set, not a fragment), 16 bits. Any IPv4 host puts some value
	// there, so a server must only trust it when it knows that the NAT in
	// front of its clients writes it.
	IPID Method = ipid.Name
	// IPOption is an IPv4 option of an experimental type (RFC 4727 §2.5:
	// 30, 94, 158 or 222) carrying the HOST_ID (RFC 6967 §5.1, RFC 791).
	IPOption Method = ipoption.Name
	// HIP reports the sender's Host Identity Tag of a HIP packet (RFC 7401
	// §5.1, IP protocol 139): HIP hosts identify themselves, the NAT only
	// passes the packets through.
	HIP Method = hip.Name
)

// registered holds the registry's entries of the methods the decoder
// reads, in Methods' order.
var registered = func() []method.Method {
	var out []method.Method
	for _, n := range all.Reveal() {
		m, _ := all.Lookup(n)
		out = append(out, m)
	}
	return out
}()

// lookup returns the registry's entry of m, nil for a method the decoder
// does not read.
func lookup(m Method) *method.Method {
	for i := range registered {
		if registered[i].Name == string(m) {
			return &registered[i]
		}
	}
	return nil
}

// OptionTyped lists the methods whose carrier is an option of a type a
// server may be told (RFC 4727), with the types allowed, the default first.
func OptionTyped() []Method {
	var out []Method
	for _, m := range registered {
		if m.Decoder.Typed != nil {
			out = append(out, Method(m.Name))
		}
	}
	return out
}

// Types returns the option types m may be told (RFC 4727), the default
// first; nil for a method without an option type.
func (m Method) Types() []byte {
	if md := lookup(m); md != nil {
		return md.Decoder.Types
	}
	return nil
}

// Methods lists every method the decoder reads, from the registry
// (method/all): those read by default first.
var Methods = methodsOf(all.Reveal())

// DefaultMethods are the methods a server enables when told nothing: all
// but ip-id, which is only meaningful when the server knows the NAT writes it.
var DefaultMethods = methodsOf(all.RevealDefault())

func methodsOf(names []string) []Method {
	out := make([]Method, len(names))
	for i, n := range names {
		out[i] = Method(n)
	}
	return out
}

// Known reports whether m names a method.
func (m Method) Known() bool {
	for _, k := range Methods {
		if m == k {
			return true
		}
	}
	return false
}

// ParseMethods reads a method list such as ["tcp-option", "ip-id"] or
// ["tcp-option,ip-id"] (comma separated entries are split). Duplicates are
// dropped; an empty list is an error, and so is an unknown name.
func ParseMethods(list []string) ([]Method, error) {
	var ms []Method
	for _, s := range list {
		for _, name := range strings.Split(s, ",") {
			name = strings.TrimSpace(strings.ToLower(name))
			if name == "" {
				continue
			}
			m := Method(name)
			if !m.Known() {
				return nil, fmt.Errorf("unknown method %q (known: %s)", name, joinMethods(Methods))
			}
			dup := false
			for _, have := range ms {
				dup = dup || have == m
			}
			if !dup {
				ms = append(ms, m)
			}
		}
	}
	if len(ms) == 0 {
		return nil, fmt.Errorf("no method named (known: %s)", joinMethods(Methods))
	}
	return ms, nil
}

func joinMethods(ms []Method) string {
	s := make([]string, len(ms))
	for i, m := range ms {
		s[i] = string(m)
	}
	return strings.Join(s, ", ")
}

// ParseOptionType reads an option type given as decimal or 0x-prefixed hex
// and checks it against the experimental values in allowed.
func ParseOptionType(s string, allowed []byte) (byte, error) {
	v, err := strconv.ParseUint(strings.TrimSpace(s), 0, 8)
	if err != nil {
		return 0, fmt.Errorf("option type %q: not a number from 0 to 255", s)
	}
	for _, a := range allowed {
		if byte(v) == a {
			return a, nil
		}
	}
	names := make([]string, len(allowed))
	for i, a := range allowed {
		names[i] = fmt.Sprintf("%d (0x%02X)", a, a)
	}
	return 0, fmt.Errorf("option type %s is not an experimental type (RFC 4727): use one of %s", s, strings.Join(names, ", "))
}
