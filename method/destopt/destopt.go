// Package destopt is the dest-opt method: the HOST_ID in an IPv6
// Destination Options header (RFC 8200 §4.6) option of an RFC 4727 §2.6
// experimental type, the IPv6 counterpart of ip-option.
package destopt

import (
	"github.com/natreveal/natreveal/method"
)

// Name is the method's name; Section its configuration section.
const (
	Name    = "dest-opt"
	Section = "dest_opt"
)

// DefaultType is the option type written and read when told nothing
// (RFC 4727 §2.6: act 00, chg 0, rest 11110).
const DefaultType = 0x1E

// Types are the option types a server may be told: 0x1E with each
// combination of the two action bits and the change bit (RFC 4727 §2.6,
// RFC 8200 §4.2); the default first.
var Types = []byte{DefaultType, 0x3E, 0x5E, 0x7E, 0x9E, 0xBE, 0xDE, 0xFE}

// Method describes dest-opt.
var Method = method.Method{
	Name: Name, Section: Section, Router: true, Family: method.IPv6,
	Counters: []string{Name},
	Decoder: method.Decoder{Packet: func(pkt []byte) (uint32, int, bool) {
		return DestOptHostID(pkt, DefaultType)
	}, Default: true, Reveal: true,
		Typed: DestOptHostID, Opts: HostIDFromDestOpts, Types: Types, TypeHex: true,
		TypeHelp: "IPv6 destination option type of dest-opt: 0x1E, 0x3E, ..., 0xFE (RFC 4727)",
		Ext:      60, // RFC 8200 §4.6: Destination Options
		Match:    &method.Match{Carrier: method.IPv6DstOpt, Widths: []int{2, 4}, UDP: true, Set: "dstopt"}},
	Lab: method.Lab{Family: 6, Transports: []string{"udp", "tcp", "http", "tls"},
		NATArgs: []string{"--methods", Name}, Reading: method.RecvDstOpts,
		ServerReads: "no: TCP_SAVED_SYN (TCP), IPV6_RECVDSTOPTS (UDP), both stock Linux",
		Configured:  "NAT: natreveal run --methods " + Name + " (IPv6, NAT66); server app: TCP_SAVE_SYN / IPV6_RECVDSTOPTS; routers must pass extension headers"},
}

// Keys is dest-opt's configuration block (section dest_opt), tagged as
// config.Keys is.
type Keys struct {
	Type       int `mapstructure:"type" default:"0x1E" help:"IPv6 Destination Option type of the dest-opt method (RFC 4727 experimental, low 5 bits 0x1E)"`
	Length     int `mapstructure:"length" default:"2" help:"HOST_ID bytes in the IPv6 Destination Option: 2 or 4"`
	UDPPackets int `mapstructure:"udp_packets" default:"3" help:"dest-opt: first packets of each IPv6 UDP flow that carry the HOST_ID (0: no UDP)"`
}

// Config is dest-opt's validated configuration.
type Config struct {
	Type       byte // IPv6 option type, RFC 4727 experimental: low 5 bits 0x1E
	Length     int  // HOST_ID bytes: 2 or 4
	UDPPackets int  // first packets of each IPv6 UDP flow carrying it; 0: no UDP
}

// Validate checks k; errors are *method.KeyError naming the key.
func (k Keys) Validate(method.Env) (Config, error) {
	var c Config
	dt, err := method.IntIn(Section+".type", k.Type, 0, 255)
	if err != nil {
		return c, err
	}
	// RFC 4727 §2.5: 0x1E with any of the 3 high bits (RFC 8200 §4.2 action
	// and change bits).
	if dt&0x1f != 0x1e {
		return c, method.Bad(Section+".type", "%#x is not an RFC 4727 experimental IPv6 option type (low 5 bits 0x1E: 0x1E, 0x3E, ... 0xFE)", dt)
	}
	c.Type = byte(dt)
	if c.Length, c.UDPPackets, err = method.OptionShape(Section, k.Length, k.UDPPackets); err != nil {
		return c, err
	}
	return c, nil
}

// Needs is what dest-opt needs from the ruleset: IPv6 SYNs, the first
// datagrams of IPv6 UDP flows, and room for a HOST_ID of Length bytes.
func (c Config) Needs() method.Needs {
	return method.Needs{SYN6: true, UDP6: c.UDPPackets, IDBits: 8 * c.Length}
}
