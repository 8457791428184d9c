// Package tcpoption is the tcp-option method: the HOST_ID in the RFC 7974
// TCP option (kind 253, ExID 0x0348, RFC 6994) of a SYN and the client
// segments after it, IPv4 and IPv6.
package tcpoption

import (
	"github.com/natreveal/natreveal/encoders"
	"github.com/natreveal/natreveal/method"
)

// Name is the method's name.
const Name = "tcp-option"

// Method describes tcp-option.
var Method = method.Method{
	Name: Name, Section: "tcp_option", Router: true, Family: method.Both,
	Counters: []string{Name},
	Decoder: method.Decoder{Packet: func(pkt []byte) (uint32, int, bool) {
		if len(pkt) > 0 && pkt[0]>>4 == 6 {
			return encoders.HostIDOption6(pkt)
		}
		return encoders.HostIDOption(pkt)
	}, Default: true, Reveal: true},
	Lab: method.Lab{Column: "TCP Option", Family: 4, Transports: []string{"tcp", "http", "tls"},
		NATArgs: []string{"--methods", Name}, Reading: method.SavedSYN},
}
