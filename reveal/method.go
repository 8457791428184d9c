// Package reveal is the server side of natreveal: it reads back the HOST_ID
// that a NAT running natreveal wrote into a packet (RFC 6967 and the methods
// of DESIGN.md), and describes each finding as a Record, the JSON line that
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

	"github.com/natreveal/natreveal/method/all"
)

// Method names a HOST_ID encoding (DESIGN.md, "The encodings").
type Method string

const (
	// TCPOption is the RFC 7974 TCP option: kind 253, ExID 0x0348, a 2- or
	// 4-byte HOST_ID (IPv4 and IPv6).
	TCPOption Method = "tcp-option"
	// IPID is the IPv4 Identification field of atomic datagrams (RFC 6864
	// §4: DF set, not a fragment), 16 bits. Any IPv4 host puts some value
	// there, so a server must only trust it when it knows that the NAT in
	// front of its clients writes it.
	IPID Method = "ip-id"
	// IPOption is an IPv4 option of an experimental type (RFC 4727 §2.5:
	// 30, 94, 158 or 222) carrying the HOST_ID (RFC 6967 §5.1, RFC 791).
	IPOption Method = "ip-option"
	// DestOpt is an IPv6 Destination Options header (RFC 8200 §4.6) option
	// of an experimental type (RFC 4727 §2.6, default 0x1E) carrying the
	// HOST_ID.
	DestOpt Method = "dest-opt"
	// HIP reports the sender's Host Identity Tag of a HIP packet (RFC 7401
	// §5.1, IP protocol 139): HIP hosts identify themselves, the NAT only
	// passes the packets through.
	HIP Method = "hip"
)

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

// Option types reserved for experiments (RFC 4727).
var (
	// ExperimentalIPOptionTypes: RFC 4727 §2.5, IPv4 option number 30 with
	// each combination of the copy flag and class: 30, 94, 158, 222.
	ExperimentalIPOptionTypes = []byte{30, 94, 158, 222}
	// ExperimentalDestOptTypes: RFC 4727 §2.6, IPv6 option type 0x1E with
	// each combination of the two action bits and the change bit
	// (RFC 8200 §4.2): 0x1E, 0x3E, ..., 0xFE.
	ExperimentalDestOptTypes = []byte{0x1E, 0x3E, 0x5E, 0x7E, 0x9E, 0xBE, 0xDE, 0xFE}
)

// Defaults for Decoder's option types.
const (
	DefaultIPOptionType = 30   // RFC 4727 §2.5, copy 0, class 0, number 30
	DefaultDestOptType  = 0x1E // RFC 4727 §2.6, act 00, chg 0, rest 11110
)

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
