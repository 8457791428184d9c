// Package portset is the port-set method: each inside host translates to a
// deterministic block of ports (RFC 7422), so a server finds the host from
// the source address and port by the NAT's published policy.
package portset

import "github.com/natreveal/natreveal/method"

// Name is the method's name.
const Name = "port-set"

// Method describes port-set. The kernel's SNAT does the work: nothing is
// queued, and the packet path has no counters for it.
var Method = method.Method{
	Name: Name, Section: "port_set", Router: true, Family: method.IPv4,
	NoCounters: "the kernel's SNAT rules translate every packet; nothing is queued (the mapping log records each translation)",
	Decoder:    method.Decoder{Why: "a policy lookup: the source address and port in the NAT's published port-set policy (RFC 7422 §2)"},
	Lab: method.Lab{Column: "Port Set", Family: 4, Transports: []string{"udp", "tcp", "http", "tls"},
		NATArgs: []string{"--methods", Name}, Reading: method.PortSetLookup},
}
