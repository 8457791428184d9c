// Package ipid is the ip-id method: the HOST_ID in the IPv4 Identification
// field of atomic datagrams (RFC 6864 §4: DF set, not a fragment), 16 bits.
package ipid

import (
	"github.com/natreveal/natreveal/method"
)

// Name is the method's name.
const Name = "ip-id"

// Method describes ip-id. Any IPv4 host fills the field, so a server reads
// it only when it knows the NAT in front of its clients writes it.
var Method = method.Method{
	Name: Name, Section: "ip_id", Router: true, Family: method.IPv4,
	Counters: []string{Name},
	Decoder: method.Decoder{Packet: func(pkt []byte) (uint32, int, bool) {
		id, atomic, ok := IPID(pkt)
		return uint32(id), 2, ok && atomic
	}, Reveal: true},
	Lab: method.Lab{Column: "IP-ID", Family: 4, Transports: []string{"udp", "tcp", "http", "tls"},
		NATArgs: []string{"--methods", Name}, Reading: method.RawSocket},
}
