package table

import (
	"crypto/tls"
	"errors"
	"net"
	"net/http"
	"slices"
	"strconv"
	"strings"

	proxyproto "github.com/pires/go-proxyproto"

	"github.com/natreveal/natreveal/lab"
	"github.com/natreveal/natreveal/method"
)

// payloadArgs are the NAT's flags for a payload method (an HTTP or PROXY
// header): it selects every flow to the server's IPv4 address (port 0: any
// port), so the perf measurement's fresh ports are selected too.
func payloadArgs(m method.Method) []string {
	return append(slices.Clip(m.Lab.NATArgs), flag(m, "destinations"), lab.ServerAddr+"/32:0")
}

// parseID reads natreveal's textual HOST_ID: "0x0002", or RFC 7239 §6.3's
// obfuscated form "_0x0002".
func parseID(s string) (uint32, bool) {
	v, err := strconv.ParseUint(strings.TrimPrefix(strings.TrimSpace(s), "_"), 0, 32)
	return uint32(v), err == nil
}

// xffRead reads X-Forwarded-For from the HTTP request (HTTP and HTTPS); a
// plain TCP connection has none to read.
func xffRead(_ ServerEnv, _ net.Conn, r *http.Request) (uint32, bool, error) {
	if r == nil {
		return 0, false, nil
	}
	v := r.Header.Get("X-Forwarded-For")
	if v == "" {
		return 0, false, nil
	}
	id, ok := parseID(v)
	return id, ok, nil
}

// proxyWrap makes the server's listeners speak the PROXY protocol: a
// connection without the header is refused (go-proxyproto REQUIRE).
func proxyWrap(ln net.Listener) net.Listener {
	return &proxyproto.Listener{Listener: ln, Policy: func(net.Addr) (proxyproto.Policy, error) {
		return proxyproto.REQUIRE, nil
	}}
}

// proxyRead reads PP2_TYPE_UNIQUE_ID from the connection's PROXY v2 header.
func proxyRead(_ ServerEnv, c net.Conn, _ *http.Request) (uint32, bool, error) {
	for c != nil {
		if pc, ok := c.(*proxyproto.Conn); ok {
			h := pc.ProxyHeader()
			if h == nil {
				return 0, false, errors.New("no PROXY header")
			}
			tlvs, err := h.TLVs()
			if err != nil {
				return 0, false, err
			}
			for _, t := range tlvs {
				if t.Type == proxyproto.PP2_TYPE_UNIQUE_ID {
					id, ok := parseID(string(t.Value))
					return id, ok, nil
				}
			}
			return 0, false, nil
		}
		switch u := c.(type) {
		case *tls.Conn:
			c = u.NetConn()
		case interface{ NetConn() net.Conn }:
			c = u.NetConn()
		default:
			return 0, false, errors.New("not a PROXY protocol connection")
		}
	}
	return 0, false, errors.New("not a PROXY protocol connection")
}
