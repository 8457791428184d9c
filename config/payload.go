package config

import (
	"net/netip"
	"strconv"
	"strings"

	"github.com/spf13/viper"
)

// Payload insertion methods (DESIGN.md): they add bytes to the TCP stream of
// selected flows, so natreveal follows those flows for their whole life.
const (
	MethodHTTPHeader = "http-header"    // X-Forwarded-For / Forwarded (RFC 7239) in each HTTP/1.x request
	MethodProxy      = "proxy-protocol" // PROXY v1/v2 header at the stream start
)

// Destination selects flows by server prefix and port (0: any port).
type Destination struct {
	Prefix netip.Prefix
	Port   uint16
	OnAck  bool // proxy-protocol: "+ack" suffix, the header rides on the handshake ACK
}

// HTTPHeaderConfig is the http-header method's part of the configuration.
type HTTPHeaderConfig struct {
	Ports        []uint16      // destination ports (any server)
	Destinations []Destination // prefix:port
	XFF          bool          // fields: x-forwarded-for
	Forwarded    bool          // fields: forwarded
}

// ProxyProtocolConfig is the proxy-protocol method's part.
type ProxyProtocolConfig struct {
	Version      int
	Destinations []Destination
	OnAck        bool   // every destination: header on the handshake-completing ACK
	ClientHeader string // "reset" or "replace"
	CRC32C       bool
}

func init() {
	allMethods = append(allMethods, MethodHTTPHeader, MethodProxy)
	defaults["http_header.ports"] = []string{"80"}
	defaults["http_header.destinations"] = []string{}
	defaults["http_header.fields"] = []string{"x-forwarded-for"}
	defaults["proxy_protocol.version"] = 2
	defaults["proxy_protocol.destinations"] = []string{}
	defaults["proxy_protocol.on_ack"] = false
	defaults["proxy_protocol.client_header"] = "reset"
	defaults["proxy_protocol.crc32c"] = false
	defaults["marks.select"] = 0x00040000
	defaults["marks.seqadj"] = 0x00080000
}

// Selects reports whether a payload insertion method is enabled.
func (c *Config) Selects() bool { return c.Has(MethodHTTPHeader) || c.Has(MethodProxy) }

// payload reads and checks the keys of the payload insertion methods.
func (c *Config) payload(v *viper.Viper) error {
	var err error
	h, p := &c.HTTPHeader, &c.ProxyProtocol
	ports, err := list(v, "http_header.ports")
	if err != nil {
		return err
	}
	for _, s := range ports {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 || n > 65535 {
			return bad("http_header.ports", "%q is not a port 1..65535", s)
		}
		h.Ports = append(h.Ports, uint16(n))
	}
	if h.Destinations, err = destinations(v, "http_header.destinations", false); err != nil {
		return err
	}
	fields, err := list(v, "http_header.fields")
	if err != nil {
		return err
	}
	for _, f := range fields {
		switch strings.ToLower(f) {
		case "x-forwarded-for":
			h.XFF = true
		case "forwarded":
			h.Forwarded = true
		default:
			return bad("http_header.fields", "%q is not x-forwarded-for or forwarded", f)
		}
	}
	if c.Has(MethodHTTPHeader) && !h.XFF && !h.Forwarded {
		return bad("http_header.fields", "name x-forwarded-for and/or forwarded")
	}
	if c.Has(MethodHTTPHeader) && len(h.Ports) == 0 && len(h.Destinations) == 0 {
		return bad("http_header.ports", "http-header needs ports or destinations to select flows")
	}
	if p.Version, err = intIn(v, "proxy_protocol.version", 1, 2); err != nil {
		return err
	}
	if p.Destinations, err = destinations(v, "proxy_protocol.destinations", true); err != nil {
		return err
	}
	if c.Has(MethodProxy) && len(p.Destinations) == 0 {
		return bad("proxy_protocol.destinations", "proxy-protocol needs destinations such as 198.51.100.0/24:443")
	}
	if p.OnAck, err = boolean(v, "proxy_protocol.on_ack"); err != nil {
		return err
	}
	if p.ClientHeader, err = oneOf(v, "proxy_protocol.client_header", "reset", "replace"); err != nil {
		return err
	}
	if p.CRC32C, err = boolean(v, "proxy_protocol.crc32c"); err != nil {
		return err
	}
	if c.Marks.Select, err = markBit(v, "marks.select"); err != nil {
		return err
	}
	if c.Marks.SeqAdj, err = markBit(v, "marks.seqadj"); err != nil {
		return err
	}
	if c.Selects() {
		if c.Marks.Select == c.Marks.Track || c.Marks.Select == c.Marks.Done {
			return bad("marks.select", "must differ from marks.track and marks.done")
		}
		if m := c.Marks.SeqAdj; m == c.Marks.Select || m == c.Marks.Track || m == c.Marks.Done {
			return bad("marks.seqadj", "must differ from marks.select, marks.track and marks.done")
		}
		if c.Placement != "pre-nat" {
			return bad("placement", "http-header and proxy-protocol need pre-nat placement")
		}
	}
	return nil
}

// destinations reads "PREFIX:PORT" entries (an address is a /32, port 0 or
// omitted ":0" is any port); ack allows a "+ack" suffix.
func destinations(v *viper.Viper, key string, ack bool) ([]Destination, error) {
	items, err := list(v, key)
	if err != nil {
		return nil, err
	}
	var out []Destination
	for _, it := range items {
		var d Destination
		s := it
		if ack && strings.HasSuffix(s, "+ack") {
			d.OnAck, s = true, strings.TrimSuffix(s, "+ack")
		}
		i := strings.LastIndexByte(s, ':')
		if i < 0 {
			return nil, bad(key, "%q is not PREFIX:PORT (e.g. 198.51.100.0/24:443)", it)
		}
		port, err := strconv.Atoi(s[i+1:])
		if err != nil || port < 0 || port > 65535 {
			return nil, bad(key, "%q: bad port", it)
		}
		d.Port = uint16(port)
		if ps := s[:i]; ps != "" {
			pf, err := netip.ParsePrefix(ps)
			if err != nil {
				a, aerr := netip.ParseAddr(ps)
				if aerr != nil || !a.Is4() {
					return nil, bad(key, "%q: %q is not an IPv4 prefix (payload insertion is IPv4 only)", it, ps)
				}
				pf = netip.PrefixFrom(a, 32)
			}
			if !pf.Addr().Is4() || pf.Masked() != pf {
				return nil, bad(key, "%q: want an IPv4 prefix without host bits", it)
			}
			d.Prefix = pf
		}
		out = append(out, d)
	}
	return out, nil
}
