// Package ident is the ident method: the NAT answers RFC 1413 queries for
// the connections it translated with the inside host's HOST_ID.
package ident

import "github.com/natreveal/natreveal/method"

// Name is the method's name.
const Name = "ident"

// Method describes ident. It rewrites no packet; the responder counts the
// queries it answers (ident.Stats).
var Method = method.Method{
	Name: Name, Section: "ident", Router: true, Family: method.IPv4,
	Counters: []string{"conns", "refused-busy", "queries", "answered", "no-user", "invalid", "errors", "timeouts"},
	Decoder:  method.Decoder{Why: "an RFC 1413 query from the server to the connection's source address, port 113"},
	Lab: method.Lab{Family: 4, Transports: []string{"tcp", "http", "tls"},
		NATArgs: []string{"--methods", Name}, Reading: method.IdentQuery},
}
