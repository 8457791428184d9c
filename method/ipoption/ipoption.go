// Package ipoption is the ip-option method: the HOST_ID in an IPv4 option
// of an RFC 4727 §2.5 experimental type (RFC 6967 §5.1, RFC 791).
package ipoption

import (
	"github.com/natreveal/natreveal/encoders"
	"github.com/natreveal/natreveal/method"
)

// Name is the method's name.
const Name = "ip-option"

// DefaultType is the option type a server reads when told nothing
// (RFC 4727 §2.5: copy 0, class 0, number 30).
const DefaultType = 30

// Method describes ip-option.
var Method = method.Method{
	Name: Name, Section: "ip_option", Router: true, Family: method.IPv4,
	Counters: []string{Name},
	Decoder: method.Decoder{Packet: func(pkt []byte) (uint32, int, bool) {
		return encoders.IPOptionHostID(pkt, DefaultType)
	}, Default: true, Reveal: true},
	Lab: method.Lab{Column: "IP Option", Family: 4, Transports: []string{"udp", "tcp", "http", "tls"},
		NATArgs: []string{"--methods", Name}, Reading: method.RecvOpts},
}
