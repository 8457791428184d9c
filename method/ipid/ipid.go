// Package ipid is the ip-id method: the HOST_ID in the IPv4 Identification
// field of atomic datagrams (RFC 6864 §4: DF set, not a fragment), 16 bits.
package ipid

import (
	"time"

	"github.com/natreveal/natreveal/method"
)

// Name is the method's name; Section its configuration section.
const (
	Name    = "ip-id"
	Section = "ip_id"
)

// Scopes: which packets carry the HOST_ID in their Identification.
const (
	ScopeSYN = "syn" // the SYN only
	ScopeNew = "new" // the client's packets until the server acknowledges data
	ScopeAll = "all" // every TCP packet from the inside hosts
)

// Method describes ip-id. Any IPv4 host fills the field, so a server reads
// it only when it knows the NAT in front of its clients writes it.
var Method = method.Method{
	Name: Name, Section: Section, Router: true, Family: method.IPv4,
	Counters: []string{Name},
	Events: method.Events{Prefix: "ip-id-kernel", Names: []string{"by-kernel", "learned", "learn-errors", "learn-dropped"},
		Metric: "natreveal_ip_id_kernel_events_total",
		Help:   "In-kernel ip-id path (ip_id.kernel): SYNs whose IP-ID the kernel had written (by-kernel), hosts learned into the map, learns that failed or were dropped."},
	Decoder: method.Decoder{Packet: func(pkt []byte) (uint32, int, bool) {
		id, atomic, ok := IPID(pkt)
		return uint32(id), 2, ok && atomic
	}, Reveal: true,
		Match: &method.Match{Carrier: method.IPv4ID, Widths: []int{2}, UDP: true, Set: "ipid"}},
	Lab: method.Lab{Column: "IP-ID", Position: 3, Family: 4, Transports: []string{"udp", "tcp", "http", "tls"},
		NATArgs: []string{"--methods", Name}, Reading: method.RawSocket,
		ServerReads: "no: TCP_SAVED_SYN (TCP); a raw IP socket, i.e. packet capture (UDP: no socket option shows the ID)",
		Configured:  "NAT: natreveal run --methods ip-id; server app: TCP_SAVE_SYN, raw socket for UDP; the server must know the NAT writes it (Table 1 note 1)",
		Claims:      method.Claims{UDP: "Yes", TCP: "Yes", HTTP: "Yes", Encrypted: "Yes", Success: "100%", Perf: "Low to Med", OSModif: "Yes", Deployable: "Yes", Notes: "(1)"}},
}

// Keys is ip-id's configuration block (section ip_id), tagged as
// config.Keys is.
type Keys struct {
	Scope         string `mapstructure:"scope" default:"syn" help:"packets whose IP-ID carries the HOST_ID: syn, new, all"`
	UDPPackets    int    `mapstructure:"udp_packets" default:"3" help:"ip-id: first packets of each UDP flow that carry the HOST_ID (0: no UDP)"`
	Kernel        bool   `mapstructure:"kernel" default:"false" help:"ip-id: write the IP-ID of known hosts' SYNs in the kernel (nft map the daemon fills)"`
	KernelSize    int    `mapstructure:"kernel_size" default:"65536" help:"ip-id kernel path: hosts in the nft map at most"`
	KernelTimeout string `mapstructure:"kernel_timeout" default:"1h" type:"duration" arg:"duration" help:"ip-id kernel path: a host is forgotten this duration after it was learned (0: never)"`
}

// Config is ip-id's validated configuration of the packet path.
type Config struct {
	Scope      string
	UDPPackets int // first packets of each UDP flow carrying it; 0: no UDP
}

// KernelConfig is the in-kernel fast path of the ip-id method: an nft map
// from inside address to HOST_ID that the daemon fills from the first
// queued SYN of each host; the kernel then writes the IP-ID of that host's
// atomic SYNs itself (rules/ipidmap.go).
type KernelConfig struct {
	Enabled bool          // ip_id.kernel
	Size    int           // ip_id.kernel_size: hosts in the map at most
	Timeout time.Duration // ip_id.kernel_timeout: a host is forgotten this long after it was learned (0: never)
}

// Validate checks k against e; errors are *method.KeyError naming the key.
func (k Keys) Validate(e method.Env) (Config, KernelConfig, error) {
	var c Config
	var kc KernelConfig
	var err error
	if c.Scope, err = method.OneOf(Section+".scope", k.Scope, ScopeSYN, ScopeNew, ScopeAll); err != nil {
		return c, kc, err
	}
	if c.UDPPackets, err = method.IntIn(Section+".udp_packets", k.UDPPackets, 0, 1000); err != nil {
		return c, kc, err
	}
	kc.Enabled = k.Kernel
	if kc.Size, err = method.IntIn(Section+".kernel_size", k.KernelSize, 1, 1<<24); err != nil {
		return c, kc, err
	}
	s := k.KernelTimeout
	if kc.Timeout, err = time.ParseDuration(s); err != nil || kc.Timeout < 0 || kc.Timeout%time.Millisecond != 0 {
		return c, kc, method.Bad(Section+".kernel_timeout", "%q is not a duration such as 1h or 30m (0: never), in whole milliseconds", s)
	}
	if !kc.Enabled {
		return c, kc, nil
	}
	switch {
	case !e.Has(Name):
		return c, kc, method.Bad(Section+".kernel", "needs the ip-id method")
	case !e.PreNAT:
		return c, kc, method.Bad(Section+".kernel", "needs placement pre-nat (the map is keyed by the inside source address)")
	case c.Scope != ScopeSYN:
		return c, kc, method.Bad(Section+".kernel", "needs ip_id.scope syn (scope %s is followed in user space)", c.Scope)
	case !e.HasIPv4():
		return c, kc, method.Bad(Section+".kernel", "needs IPv4 inside prefixes")
	}
	return c, kc, nil
}

// Needs is what ip-id needs from the ruleset: IPv4 SYNs; with scope new the
// client segments after them, with scope all every TCP segment; the first
// datagrams of UDP flows. The Identification field is 16 bits.
func (c Config) Needs() method.Needs {
	return method.Needs{SYN: true, Track: c.Scope == ScopeNew, AllTCP: c.Scope == ScopeAll,
		UDP: c.UDPPackets, IDBits: 16, IDFixed: true}
}
