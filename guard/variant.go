package guard

import (
	"fmt"
	"slices"
	"strings"

	"github.com/natreveal/natreveal/method"
	"github.com/natreveal/natreveal/method/all"
	"github.com/natreveal/natreveal/method/ipid"
	"github.com/natreveal/natreveal/method/ipoption"
	"github.com/natreveal/natreveal/method/tcpoption"
)

// Methods guard can act on: those whose HOST_ID a stock server's kernel can
// match (RFC 6967 §5: the identifier travels in a header nftables reads),
// the registered methods (method/all) that declare a server-side match
// (method.Match). http-header and proxy-protocol live in the byte stream,
// which only the application sees (docs/server.md: nginx realip, HAProxy
// accept-proxy).
const (
	TCPOption = tcpoption.Name // RFC 7974: kind 253, ExID 0x0348, 2- or 4-byte HOST_ID
	IPID      = ipid.Name      // IPv4 Identification of atomic datagrams (RFC 6864 §4)
	IPOption  = ipoption.Name  // an RFC 4727 experimental IPv4 option
)

// Methods lists the methods guard knows, in the order messages name them.
var Methods = all.Names(func(m method.Method) bool { return m.Decoder.Match != nil })

// variant is one way the HOST_ID reaches the server: a method, a family and
// an identifier width. Each has a set of blocked (source, HOST_ID) pairs and,
// with a limit, a meter set of its own.
type variant struct {
	method string
	v6     bool
	idLen  int  // HOST_ID bytes: 2 or 4
	udp    bool // the method also marks the first datagrams of UDP flows
}

// match returns the registry's server-side match of the variant's method.
func (v variant) match() *method.Match {
	m, _ := all.Lookup(v.method)
	return m.Decoder.Match
}

// name is the variant's set suffix, e.g. "tcpopt4_2".
func (v variant) name() string {
	fam := "4"
	if v.v6 {
		fam = "6"
	}
	return fmt.Sprintf("%s%s_%d", v.match().Set, fam, v.idLen)
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

// variants returns the variants of methods, in a fixed order: by method in
// Methods' order, each family the method marks, each width it writes.
func variants(methods []string) []variant {
	var out []variant
	for _, name := range Methods {
		if !slices.Contains(methods, name) {
			continue
		}
		m, _ := all.Lookup(name)
		for _, f := range []method.Family{method.IPv4, method.IPv6} {
			if !m.Family.Has(f) {
				continue
			}
			for _, w := range m.Decoder.Match.Widths {
				out = append(out, variant{name, f == method.IPv6, w, m.Decoder.Match.UDP})
			}
		}
	}
	return out
}

// TypeText writes an option type of d as its flags do: in hex where
// d.TypeHex says so (0x1e), else in decimal (30).
func TypeText(d method.Decoder, t byte) string {
	if d.TypeHex {
		return fmt.Sprintf("%#x", t)
	}
	return fmt.Sprint(t)
}

// TypeList writes d's option types for messages: "30, 94, 158, 222".
func TypeList(d method.Decoder) string {
	s := make([]string, len(d.Types))
	for i, t := range d.Types {
		s[i] = TypeText(d, t)
	}
	return strings.Join(s, ", ")
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
