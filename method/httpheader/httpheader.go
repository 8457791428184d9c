// Package httpheader is the http-header method: the HOST_ID in an
// X-Forwarded-For or Forwarded (RFC 7239) field the NAT inserts into each
// HTTP/1.x request of a selected flow (stream/ does the rewriting).
package httpheader

import "github.com/natreveal/natreveal/method"

// Name is the method's name.
const Name = "http-header"

// Method describes http-header.
var Method = method.Method{
	Name: Name, Section: "http_header", Router: true, Family: method.IPv4,
	Counters: []string{"http-requests", "http-forged-removed", "http-non-http", "http-tls"},
	Decoder:  method.Decoder{Why: "in the stream: the server's HTTP stack reads the X-Forwarded-For or Forwarded field (RFC 7239) of each request"},
	Lab: method.Lab{Column: "HTTP Header (XFF)", Family: 4, Transports: []string{"http", "tls"},
		NATArgs: []string{"--methods", Name}, Reading: method.HTTPHeader},
}
