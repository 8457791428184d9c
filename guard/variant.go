package guard

import (
	"fmt"
	"slices"
	"strings"
)

// Methods guard can act on: those whose HOST_ID a stock server's kernel can
// match (RFC 6967 §5: the identifier travels in a header nftables reads).
// http-header and proxy-protocol live in the byte stream, which only the
// application sees (docs/server.md: nginx realip, HAProxy accept-proxy).
const (
	TCPOption = "tcp-option" // RFC 7974: kind 253, ExID 0x0348, 2- or 4-byte HOST_ID
	IPID      = "ip-id"      // IPv4 Identification of atomic datagrams (RFC 6864 §4)
	IPOption  = "ip-option"  // an RFC 4727 experimental IPv4 option
	DestOpt   = "dest-opt"   // an RFC 4727 experimental IPv6 destination option
)

// Methods lists the methods guard knows, in the order messages name them.
var Methods = []string{TCPOption, IPID, IPOption, DestOpt}

// variant is one way the HOST_ID reaches the server: a method, a family and
// an identifier width. Each has a set of blocked (source, HOST_ID) pairs and,
// with a limit, a meter set of its own.
type variant struct {
	method string
	v6     bool
	idLen  int  // HOST_ID bytes: 2 or 4
	udp    bool // the method also marks the first datagrams of UDP flows
}

// name is the variant's set suffix, e.g. "tcpopt4_2".
func (v variant) name() string {
	short := map[string]string{TCPOption: "tcpopt", IPID: "ipid", IPOption: "ipopt", DestOpt: "dstopt"}[v.method]
	fam := "4"
	if v.v6 {
		fam = "6"
	}
	return fmt.Sprintf("%s%s_%d", short, fam, v.idLen)
}

func (v variant) blockSet() string { return "block_" + v.name() }
func (v variant) meterSet() string { return "meter_" + v.name() }

// keyLen is the set key's length: the source address, then the HOST_ID
// padded to a 4-byte register (concatenations are register-aligned).
func (v variant) keyLen() int {
	if v.v6 {
		return 16 + 4
	}
	return 4 + 4
}

// variants returns the variants of methods, in a fixed order.
func variants(methods []string) []variant {
	var out []variant
	for _, m := range Methods {
		if !slices.Contains(methods, m) {
			continue
		}
		switch m {
		case TCPOption: // RFC 7974 §3: 2 or 4 bytes, IPv4 and IPv6, TCP only
			out = append(out, variant{m, false, 2, false}, variant{m, false, 4, false},
				variant{m, true, 2, false}, variant{m, true, 4, false})
		case IPID: // 16 bits; the NAT writes it into SYNs and first datagrams
			out = append(out, variant{m, false, 2, true})
		case IPOption:
			out = append(out, variant{m, false, 2, true}, variant{m, false, 4, true})
		case DestOpt:
			out = append(out, variant{m, true, 2, true}, variant{m, true, 4, true})
		}
	}
	return out
}

// variantByName finds the variant whose set suffix is name.
func variantByName(name string) (variant, bool) {
	for _, v := range variants(Methods) {
		if v.name() == name {
			return v, true
		}
	}
	return variant{}, false
}

// ParseMethods reads a comma-separated or repeated method list; empty means
// every method.
func ParseMethods(list []string) ([]string, error) {
	var out []string
	for _, item := range list {
		for _, m := range strings.Split(item, ",") {
			m = strings.TrimSpace(m)
			if m == "" {
				continue
			}
			if !slices.Contains(Methods, m) {
				return nil, fmt.Errorf("unknown method %q (guard acts on %s)", m, strings.Join(Methods, ", "))
			}
			if !slices.Contains(out, m) {
				out = append(out, m)
			}
		}
	}
	if len(out) == 0 {
		return slices.Clone(Methods), nil
	}
	return out, nil
}
