// Package ipoption is the ip-option method: the HOST_ID in an IPv4 option
// of an RFC 4727 §2.5 experimental type (RFC 6967 §5.1, RFC 791).
package ipoption

import (
	"github.com/natreveal/natreveal/method"
)

// Name is the method's name; Section its configuration section.
const (
	Name    = "ip-option"
	Section = "ip_option"
)

// DefaultType is the option type a server reads when told nothing
// (RFC 4727 §2.5: copy 0, class 0, number 30).
const DefaultType = 30

// Types are the option types a server may be told: number 30 with each
// combination of the copy flag and class (RFC 4727 §2.5); the default first.
var Types = []byte{DefaultType, 94, 158, 222}

// Method describes ip-option.
var Method = method.Method{
	Name: Name, Section: Section, Router: true, Family: method.IPv4,
	Counters: []string{Name},
	Decoder: method.Decoder{Packet: func(pkt []byte) (uint32, int, bool) {
		return IPOptionHostID(pkt, DefaultType)
	}, Default: true, Reveal: true,
		Typed: IPOptionHostID, Opts: HostIDFromIPOptions, Types: Types,
		TypeHelp: "IPv4 option type of ip-option: 30, 94, 158 or 222 (RFC 4727)",
		Match:    &method.Match{Carrier: method.IPv4Opt, Widths: []int{2, 4}, UDP: true, Set: "ipopt"}},
	Lab: method.Lab{Column: "IP Option", Position: 1, Family: 4, Transports: []string{"udp", "tcp", "http", "tls"},
		NATArgs: []string{"--methods", Name}, Reading: method.RecvOpts,
		ServerReads: "no: socket options of stock Linux, TCP_SAVED_SYN (TCP), IP_RECVOPTS (UDP)",
		Configured:  "NAT: natreveal run --methods ip-option; server app: TCP_SAVE_SYN / IP_RECVOPTS; every router on the path must pass IP options",
		Claims:      method.Claims{UDP: "Yes", TCP: "Yes", HTTP: "Yes", Encrypted: "Yes", Success: "30%", Perf: "High", OSModif: "Yes", Deployable: "Yes"}},
}

// Keys is ip-option's configuration block (section ip_option), tagged as
// config.Keys is.
type Keys struct {
	Type       int `mapstructure:"type" default:"30" help:"IPv4 option type of the ip-option method (RFC 4727): 30, 94, 158 or 222"`
	Length     int `mapstructure:"length" default:"2" help:"HOST_ID bytes in the IPv4 option: 2 or 4"`
	UDPPackets int `mapstructure:"udp_packets" default:"3" help:"ip-option: first packets of each UDP flow that carry the HOST_ID (0: no UDP)"`
}

// Config is ip-option's validated configuration.
type Config struct {
	Type       byte // RFC 4727 experimental option type: 30, 94, 158 or 222
	Length     int  // HOST_ID bytes: 2 or 4
	UDPPackets int  // first packets of each UDP flow carrying it; 0: no UDP
}

// Validate checks k; errors are *method.KeyError naming the key.
func (k Keys) Validate(method.Env) (Config, error) {
	var c Config
	t, err := method.IntIn(Section+".type", k.Type, 0, 255)
	if err != nil {
		return c, err
	}
	switch t {
	case 30, 94, 158, 222: // RFC 4727 §2.5: copy 0 or 1, class 0 or 2, number 30
		c.Type = byte(t)
	default:
		return c, method.Bad(Section+".type", "%d is not an RFC 4727 experimental option type (30, 94, 158 or 222)", t)
	}
	if c.Length, c.UDPPackets, err = method.OptionShape(Section, k.Length, k.UDPPackets); err != nil {
		return c, err
	}
	return c, nil
}

// Needs is what ip-option needs from the ruleset: IPv4 SYNs and the first
// datagrams of IPv4 UDP flows, with room for a HOST_ID of Length bytes.
func (c Config) Needs() method.Needs {
	return method.Needs{SYN: true, UDP: c.UDPPackets, IDBits: 8 * c.Length}
}
