// Package httpheader is the http-header method: the HOST_ID in an
// X-Forwarded-For or Forwarded (RFC 7239) field the NAT inserts into each
// HTTP/1.x request of a selected flow (stream/ does the rewriting).
package httpheader

import (
	"strconv"
	"strings"

	"github.com/natreveal/natreveal/method"
)

// Name is the method's name; Section its configuration section.
const (
	Name    = "http-header"
	Section = "http_header"
)

// Method describes http-header.
var Method = method.Method{
	Name: Name, Section: Section, Router: true, Family: method.IPv4,
	Counters: []string{"http-requests", "http-forged-removed", "http-non-http", "http-tls"},
	Decoder:  method.Decoder{Why: "in the stream: the server's HTTP stack reads the X-Forwarded-For or Forwarded field (RFC 7239) of each request"},
	Lab: method.Lab{Column: "HTTP Header (XFF)", Position: 4, Family: 4, Transports: []string{"http", "tls"},
		NATArgs: []string{"--methods", Name}, Reading: method.HTTPHeader,
		ServerReads: "no: the X-Forwarded-For header of each request, read by the application",
		Configured:  "NAT: natreveal run --methods http-header --http-header-ports ...; server app: trust X-Forwarded-For from the NAT's address",
		Claims:      method.Claims{UDP: "No", TCP: "No", HTTP: "Yes", Encrypted: "No", Success: "100%", Perf: "Med to High", OSModif: "No", Deployable: "Yes", Notes: "(2)"}},
}

// Keys is http-header's configuration block (section http_header), tagged
// as config.Keys is.
type Keys struct {
	Ports        []string `mapstructure:"ports" default:"80" type:"list of ports" arg:"ports" help:"destination ports whose flows http-header selects (any server)"`
	Destinations []string `mapstructure:"destinations" type:"list of PREFIX:PORT" arg:"destinations" help:"PREFIX:PORT destinations whose flows http-header selects (port 0: any)"`
	Fields       []string `mapstructure:"fields" default:"x-forwarded-for" type:"list" arg:"fields" help:"header fields http-header adds: x-forwarded-for and/or forwarded (RFC 7239)"`
}

// Config is http-header's validated configuration.
type Config struct {
	Ports        []uint16             // destination ports (any server)
	Destinations []method.Destination // prefix:port
	XFF          bool                 // fields: x-forwarded-for
	Forwarded    bool                 // fields: forwarded
}

// Validate checks k against e; errors are *method.KeyError naming the key.
func (k Keys) Validate(e method.Env) (Config, error) {
	var h Config
	var err error
	for _, s := range k.Ports {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 || n > 65535 {
			return h, method.Bad(Section+".ports", "%q is not a port 1..65535", s)
		}
		h.Ports = append(h.Ports, uint16(n))
	}
	if h.Destinations, err = method.Destinations(Section+".destinations", k.Destinations, false); err != nil {
		return h, err
	}
	for _, f := range k.Fields {
		switch strings.ToLower(f) {
		case "x-forwarded-for":
			h.XFF = true
		case "forwarded":
			h.Forwarded = true
		default:
			return h, method.Bad(Section+".fields", "%q is not x-forwarded-for or forwarded", f)
		}
	}
	if e.Has(Name) && !h.XFF && !h.Forwarded {
		return h, method.Bad(Section+".fields", "name x-forwarded-for and/or forwarded")
	}
	if e.Has(Name) && len(h.Ports) == 0 && len(h.Destinations) == 0 {
		return h, method.Bad(Section+".ports", "http-header needs ports or destinations to select flows")
	}
	return h, nil
}

// Needs is what http-header needs from the ruleset: IPv4 SYNs (the SYN
// decides whether a flow is selected) and the selected flows' segments.
func (c Config) Needs() method.Needs { return method.Needs{SYN: true, Select: true} }
