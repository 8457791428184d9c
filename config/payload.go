package config

import (
	"net/netip"
	"strconv"
	"strings"
)

// Payload insertion methods: they add bytes to the TCP stream of
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

// Selects reports whether a payload insertion method is enabled.
func (c *Config) Selects() bool { return c.Has(MethodHTTPHeader) || c.Has(MethodProxy) }

// payload reads and checks the keys of the payload insertion methods.
func (c *Config) payload(k *Keys) error {
	var err error
	h, p := &c.HTTPHeader, &c.ProxyProtocol
	for _, s := range k.HTTPHeader.Ports {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 || n > 65535 {
			return bad("http_header.ports", "%q is not a port 1..65535", s)
		}
		h.Ports = append(h.Ports, uint16(n))
	}
	if h.Destinations, err = destinations("http_header.destinations", k.HTTPHeader.Destinations, false); err != nil {
		return err
	}
	for _, f := range k.HTTPHeader.Fields {
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
	if p.Version, err = intIn("proxy_protocol.version", k.ProxyProtocol.Version, 1, 2); err != nil {
		return err
	}
	if p.Destinations, err = destinations("proxy_protocol.destinations", k.ProxyProtocol.Destinations, true); err != nil {
		return err
	}
	if c.Has(MethodProxy) && len(p.Destinations) == 0 {
		return bad("proxy_protocol.destinations", "proxy-protocol needs destinations such as 198.51.100.0/24:443")
	}
	p.OnAck = k.ProxyProtocol.OnAck
	if p.ClientHeader, err = oneOf("proxy_protocol.client_header", k.ProxyProtocol.ClientHeader, "reset", "replace"); err != nil {
		return err
	}
	p.CRC32C = k.ProxyProtocol.CRC32C
	if c.Marks.Select, err = markBit("marks.select", k.Marks.Select); err != nil {
		return err
	}
	if c.Marks.SeqAdj, err = markBit("marks.seqadj", k.Marks.SeqAdj); err != nil {
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
func destinations(key string, items []string, ack bool) ([]Destination, error) {
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
