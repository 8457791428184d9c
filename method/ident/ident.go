// Package ident is the ident method: the NAT answers RFC 1413 queries for
// the connections it translated with the inside host's HOST_ID.
package ident

import (
	"github.com/natreveal/natreveal/method"
)

// Name is the method's name; Section its configuration section.
const (
	Name    = "ident"
	Section = "ident"
)

// Method describes ident. It rewrites no packet; the responder counts the
// queries it answers (ident.Stats).
var Method = method.Method{
	Name: Name, Section: Section, Router: true, Family: method.IPv4,
	Counters: []string{"conns", "refused-busy", "queries", "answered", "no-user", "invalid", "errors", "timeouts"},
	Decoder:  method.Decoder{Why: "an RFC 1413 query from the server to the connection's source address, port 113"},
	Lab: method.Lab{Family: 4, Transports: []string{"tcp", "http", "tls"},
		NATArgs: []string{"--methods", Name}, Reading: method.IdentQuery,
		ServerReads: "no: an RFC 1413 query from the application to the connection's source, port 113",
		Configured:  "NAT: natreveal run --methods ident, port 113 open to servers; server app: an ident client"},
}

// Keys is ident's configuration block (section ident), tagged as
// config.Keys is.
type Keys struct {
	Listen string `mapstructure:"listen" default:":113" type:"host:port" arg:"address" help:"address of the ident (RFC 1413) responder of the ident method"`
}

// Config is ident's validated configuration.
type Config struct {
	Listen string // address of the RFC 1413 responder, e.g. ":113"
}

// Validate checks k; errors are *method.KeyError naming the key.
func (k Keys) Validate(method.Env) (Config, error) {
	c := Config{Listen: k.Listen}
	return c, method.ListenAddr(Section+".listen", c.Listen, ":113")
}

// Needs: ident answers queries on its own socket and queues nothing.
func (c Config) Needs() method.Needs { return method.Needs{} }
