// Package tcpoption is the tcp-option method: the HOST_ID in the RFC 7974
// TCP option (kind 253, ExID 0x0348, RFC 6994) of a SYN and the client
// segments after it, IPv4 and IPv6.
package tcpoption

import (
	"github.com/natreveal/natreveal/method"
)

// Name is the method's name; Section its configuration section.
const (
	Name    = "tcp-option"
	Section = "tcp_option"
)

// Method describes tcp-option.
var Method = method.Method{
	Name: Name, Section: Section, Router: true, Family: method.Both,
	Counters: []string{Name},
	Decoder: method.Decoder{Packet: func(pkt []byte) (uint32, int, bool) {
		if len(pkt) > 0 && pkt[0]>>4 == 6 {
			return HostIDOption6(pkt)
		}
		return HostIDOption(pkt)
	}, Default: true, Reveal: true,
		Proto: 6, // RFC 7974: a TCP option
		Match: &method.Match{Carrier: method.TCPOptionExp, Kind: 253, ExID: 0x0348, Widths: []int{2, 4}, Set: "tcpopt"}},
	Lab: method.Lab{Column: "TCP Option", Position: 2, Family: 4, Transports: []string{"tcp", "http", "tls"},
		NATArgs: []string{"--methods", Name}, Reading: method.SavedSYN,
		ServerReads: "no: TCP_SAVED_SYN, a socket option of stock Linux (4.2+)",
		Configured:  "NAT: natreveal run --methods tcp-option; server app: TCP_SAVE_SYN on the listener",
		Claims:      method.Claims{UDP: "No", TCP: "Yes", HTTP: "Yes", Encrypted: "Yes", Success: "99%", Perf: "Med to High", OSModif: "Yes", Deployable: "Yes"}},
}

// Keys is tcp-option's configuration block (section tcp_option), tagged as
// config.Keys is.
type Keys struct {
	Length      int  `mapstructure:"length" default:"2" help:"HOST_ID bytes in the RFC 7974 option: 2 or 4"`
	MaxSegments int  `mapstructure:"max_segments" default:"8" help:"client packets after the SYN that may carry the option too (RFC 7974 §4.2; conntrack's count: a GSO packet once)"`
	CGN         bool `mapstructure:"cgn" default:"false" help:"this NAT is a CGN: allow tcp-option for private (RFC 1918, RFC 4193) inside prefixes, which RFC 7974 §8 forbids at the border of a private LAN"`
}

// Config is tcp-option's validated configuration.
type Config struct {
	Length      int  // HOST_ID bytes: 2 or 4 (RFC 7974 §3)
	MaxSegments int  // client packets after the SYN that may carry it (conntrack's count: a GSO packet once)
	CGN         bool // operator states this NAT is a CGN (RFC 7974 §8)
}

// Validate checks k; errors are *method.KeyError naming the key.
func (k Keys) Validate(method.Env) (Config, error) {
	var c Config
	var err error
	if c.Length, err = method.IntIn(Section+".length", k.Length, 2, 4); err != nil {
		return c, err
	}
	if c.Length == 3 {
		return c, method.Bad(Section+".length", "must be 2 or 4 (RFC 7974 §3), got 3")
	}
	if c.MaxSegments, err = method.IntIn(Section+".max_segments", k.MaxSegments, 0, 1000); err != nil {
		return c, err
	}
	c.CGN = k.CGN
	return c, nil
}

// Needs is what tcp-option needs from the ruleset: SYNs of both families,
// the client segments after them (RFC 7974 §4.2) up to MaxSegments more,
// and SYN-ACKs whose MSS leaves room for the option. RFC 7974 §8 keeps the
// option off the border of a private LAN unless the NAT is a CGN.
func (c Config) Needs() method.Needs {
	return method.Needs{SYN: true, SYN6: true, Track: true, Track6: true, MSS: true,
		TrackPackets: uint64(c.MaxSegments) + 1, IDBits: 8 * c.Length, CGNOnly: !c.CGN}
}
