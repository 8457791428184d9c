// Package proxyprotocol is the proxy-protocol method: a PROXY protocol
// header (v1 text or v2 binary with the HOST_ID as PP2_TYPE_UNIQUE_ID) the
// NAT puts before the stream of a selected flow (stream/ does the rewriting).
package proxyprotocol

import "github.com/natreveal/natreveal/method"

// Name is the method's name.
const Name = "proxy-protocol"

// Method describes proxy-protocol.
var Method = method.Method{
	Name: Name, Section: "proxy_protocol", Router: true, Family: method.IPv4,
	Counters: []string{"proxy-written", "proxy-forged-reset", "proxy-forged-replaced"},
	Decoder:  method.Decoder{Why: "in the stream: the server reads the PROXY header before the first byte (reveal/listener)"},
	Lab: method.Lab{Column: "Proxy Protocol", Family: 4, Transports: []string{"tcp", "http", "tls"},
		NATArgs: []string{"--methods", Name}, Reading: method.ProxyHeader},
}
