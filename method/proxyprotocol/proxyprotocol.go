// Package proxyprotocol is the proxy-protocol method: a PROXY protocol
// header (v1 text or v2 binary with the HOST_ID as PP2_TYPE_UNIQUE_ID) the
// NAT puts before the stream of a selected flow (stream/ does the rewriting).
package proxyprotocol

import "github.com/natreveal/natreveal/method"

// Name is the method's name; Section its configuration section.
const (
	Name    = "proxy-protocol"
	Section = "proxy_protocol"
)

// Method describes proxy-protocol.
var Method = method.Method{
	Name: Name, Section: Section, Router: true, Family: method.IPv4,
	Counters: []string{"proxy-written", "proxy-forged-reset", "proxy-forged-replaced"},
	Decoder:  method.Decoder{Why: "in the stream: the server reads the PROXY header before the first byte (reveal/listener)"},
	Lab: method.Lab{Column: "Proxy Protocol", Position: 5, Family: 4, Transports: []string{"tcp", "http", "tls"},
		NATArgs: []string{"--methods", Name}, Reading: method.ProxyHeader,
		ServerReads: "no: a PROXY v2 header before the stream (TLV UNIQUE_ID), read by the application (go-proxyproto)",
		Configured:  "NAT: natreveal run --methods proxy-protocol --proxy-protocol-destinations ...; server app: must expect the PROXY header on that port (fails without it)",
		Claims:      method.Claims{UDP: "No", TCP: "Yes", HTTP: "Yes", Encrypted: "Yes", Success: "Low", Perf: "High", OSModif: "No", Deployable: "No"}},
}

// Keys is proxy-protocol's configuration block (section proxy_protocol),
// tagged as config.Keys is.
type Keys struct {
	Version      int      `mapstructure:"version" default:"2" help:"PROXY protocol version of the proxy-protocol header: 1 (text) or 2 (binary)"`
	Destinations []string `mapstructure:"destinations" type:"list of PREFIX:PORT[+ack]" arg:"destinations" help:"PREFIX:PORT[+ack] destinations whose flows proxy-protocol selects (+ack: the header rides on the handshake's ACK)"`
	OnAck        bool     `mapstructure:"on_ack" default:"false" help:"proxy-protocol: send the header on the handshake-completing ACK for every destination"`
	ClientHeader string   `mapstructure:"client_header" default:"reset" help:"proxy-protocol: when a client sends a PROXY header itself: reset (the connection) or replace (the header)"`
	CRC32C       bool     `mapstructure:"crc32c" default:"false" help:"proxy-protocol: add the PP2_TYPE_CRC32C checksum to v2 headers"`
}

// Config is proxy-protocol's validated configuration.
type Config struct {
	Version      int
	Destinations []method.Destination
	OnAck        bool   // every destination: header on the handshake-completing ACK
	ClientHeader string // "reset" or "replace"
	CRC32C       bool
}

// Validate checks k against e; errors are *method.KeyError naming the key.
func (k Keys) Validate(e method.Env) (Config, error) {
	var p Config
	var err error
	if p.Version, err = method.IntIn(Section+".version", k.Version, 1, 2); err != nil {
		return p, err
	}
	if p.Destinations, err = method.Destinations(Section+".destinations", k.Destinations, true); err != nil {
		return p, err
	}
	if e.Has(Name) && len(p.Destinations) == 0 {
		return p, method.Bad(Section+".destinations", "proxy-protocol needs destinations such as 198.51.100.0/24:443")
	}
	p.OnAck = k.OnAck
	if p.ClientHeader, err = method.OneOf(Section+".client_header", k.ClientHeader, "reset", "replace"); err != nil {
		return p, err
	}
	p.CRC32C = k.CRC32C
	return p, nil
}

// Needs is what proxy-protocol needs from the ruleset: IPv4 SYNs (the SYN
// decides whether a flow is selected) and the selected flows' segments.
func (c Config) Needs() method.Needs { return method.Needs{SYN: true, Select: true} }
