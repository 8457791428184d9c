// Package portset is the port-set method: each inside host translates to a
// deterministic block of ports (RFC 7422), so a server finds the host from
// the source address and port by the NAT's published policy.
package portset

import (
	"net/netip"
	"os"
	"strings"

	"github.com/natreveal/natreveal/method"
	"github.com/natreveal/natreveal/portset"
)

// Name is the method's name; Section its configuration section.
const (
	Name    = "port-set"
	Section = "port_set"
)

// Method describes port-set. The kernel's SNAT does the work: nothing is
// queued, and the packet path has no counters for it.
var Method = method.Method{
	Name: Name, Section: Section, Router: true, Family: method.IPv4,
	NoCounters: "the kernel's SNAT rules translate every packet; nothing is queued (the mapping log records each translation)",
	Decoder:    method.Decoder{Why: "a policy lookup: the source address and port in the NAT's published port-set policy (RFC 7422 §2)"},
	Lab: method.Lab{Column: "Port Set", Position: 6, Family: 4, Transports: []string{"udp", "tcp", "http", "tls"},
		NATArgs: []string{"--methods", Name}, Reading: method.PortSetLookup,
		ServerReads: "no: the source address:port the server sees, looked up in the published policy (package portset, Lookup)",
		Configured:  "NAT: natreveal run " + method.LabArgs + " (kernel SNAT blocks, nothing queued); the NAT's policy published to servers (natreveal portset plan); server app: a lookup of each source address:port",
		Claims:      method.Claims{UDP: "Yes", TCP: "Yes", HTTP: "Yes", Encrypted: "Yes", Success: "100%", Perf: "No", OSModif: "No", Deployable: "Yes", Notes: "(1) (3)"}},
}

// Keys is port-set's configuration block (section port_set), tagged as
// config.Keys is.
type Keys struct {
	Public          []string `mapstructure:"public" type:"list of IPv4 addresses" arg:"addresses" help:"port-set: public IPv4 addresses whose ports are split into blocks (RFC 7422 O); with policy_file, this box's own addresses among the policy's"`
	Ports           string   `mapstructure:"ports" default:"1024-65535" type:"port range" arg:"ports" help:"port-set: usable ports of each public address, FIRST-LAST; the rest are reserved (RFC 7422 R)"`
	BlockSize       int      `mapstructure:"block_size" default:"0" help:"port-set: ports per inside host (RFC 7422 M)"`
	Ratio           int      `mapstructure:"ratio" default:"0" help:"port-set: inside hosts per public address (RFC 7422 C); 0: ports / block size"`
	Assignment      string   `mapstructure:"assignment" default:"sequential" help:"port-set: sequential or staggered (RFC 7422 A)"`
	IncludeBoundary bool     `mapstructure:"include_boundary" default:"false" help:"port-set: number the network and broadcast addresses of inside prefixes shorter than /31 as hosts too"`
	OIfName         string   `mapstructure:"oifname" arg:"interface" help:"port-set: translate only packets leaving through this interface"`
	PolicyFile      string   `mapstructure:"policy_file" arg:"file" help:"port-set: a published policy file (JSON, as natreveal portset plan prints it) instead of the port_set keys other than public"`
}

// Config is port-set's validated configuration.
type Config struct {
	// Policy is the validated, normalized policy: from port_set.policy_file
	// when set, else from the IPv4 inside prefixes and the port_set keys.
	// Its Inside is empty when no policy is configured.
	Policy     portset.Policy
	PolicyFile string
	// Own are this box's public addresses when port_set.public comes with
	// port_set.policy_file: one of several active NATs sharing a published
	// policy translates to its own addresses only (Blocks). Empty: all.
	Own      []netip.Addr
	OutIface string // port_set.oifname: translate only packets leaving there
}

// Blocks are the policy's blocks this box installs: those on its own
// public addresses (portset.Policy.PlanOn), validated by Validate.
func (c *Config) Blocks() []portset.Block {
	b, _ := c.Policy.PlanOn(c.Own)
	return b
}

// Validate checks k against e, reading the policy file if one is named;
// errors are *method.KeyError naming the key.
func (k Keys) Validate(e method.Env) (Config, error) {
	var ps Config
	var err error
	ps.OutIface = k.OIfName
	if len(ps.OutIface) > 15 || strings.ContainsAny(ps.OutIface, "\"\\ \t/") {
		return ps, method.Bad(Section+".oifname", "%q is not an interface name", ps.OutIface)
	}
	ps.PolicyFile = k.PolicyFile
	public := k.Public
	if ps.PolicyFile != "" {
		data, err := os.ReadFile(ps.PolicyFile)
		if err != nil {
			return ps, method.Bad(Section+".policy_file", "%v", err)
		}
		if ps.Policy, err = portset.ParsePolicy(data); err != nil {
			return ps, method.Bad(Section+".policy_file", "%s: %v", ps.PolicyFile, err)
		}
		// With a policy file, port_set.public names this box's own
		// addresses among the policy's (several active NATs).
		for _, s := range public {
			a, err := netip.ParseAddr(s)
			if err != nil || !a.Is4() {
				return ps, method.Bad(Section+".public", "%q is not an IPv4 address", s)
			}
			ps.Own = append(ps.Own, a)
		}
		if _, err := ps.Policy.PlanOn(ps.Own); err != nil {
			return ps, method.Bad(Section+".public", "%s", strings.TrimPrefix(err.Error(), "public: "))
		}
		return ps, nil
	}
	if len(public) == 0 {
		if e.Has(Name) {
			return ps, method.Bad(Section+".public", "required by method port-set: the public IPv4 addresses, e.g. 192.0.2.1")
		}
		return ps, nil
	}
	p := portset.Policy{}
	for _, s := range public {
		a, err := netip.ParseAddr(s)
		if err != nil || !a.Is4() {
			return ps, method.Bad(Section+".public", "%q is not an IPv4 address", s)
		}
		p.Public = append(p.Public, a)
	}
	for _, q := range e.Inside {
		if q.Addr().Is4() {
			p.Inside = append(p.Inside, q)
		}
	}
	if len(p.Inside) == 0 {
		return ps, method.Bad("inside", "port-set needs IPv4 inside prefixes")
	}
	if p.Ports, err = portset.ParsePortRange(k.Ports); err != nil {
		return ps, method.Bad(Section+".ports", "%v", err)
	}
	if p.BlockSize, err = method.IntIn(Section+".block_size", k.BlockSize, 0, 65535); err != nil {
		return ps, err
	}
	if p.Ratio, err = method.IntIn(Section+".ratio", k.Ratio, 0, 65535); err != nil {
		return ps, err
	}
	// A block holds 2 ports at least (rules.PortSetSpec: nft cannot read a
	// one-port block back), so name the key that leaves less.
	if n := p.Ports.Len(); n < 2 {
		return ps, method.Bad(Section+".ports", "%s is 1 port, but each host's block needs 2 at least: give a range such as 1024-65535", p.Ports)
	} else if p.BlockSize == 0 && p.Ratio > n/2 {
		return ps, method.Bad(Section+".ratio", "%d hosts per address leave fewer than 2 of the %d ports %s to each: want 1 to %d", p.Ratio, n, p.Ports, n/2)
	}
	a, err := method.OneOf(Section+".assignment", k.Assignment, string(portset.Sequential), string(portset.Staggered))
	if err != nil {
		return ps, err
	}
	p.Assignment = portset.Assignment(a)
	p.IncludeBoundary = k.IncludeBoundary
	if ps.Policy, err = p.Normalize(); err != nil {
		key := Section
		for _, k := range []string{"block_size", "ratio", "ports", "assignment", "public", "inside"} {
			if strings.HasPrefix(err.Error(), k+":") {
				key = Section + "." + k
				if k == "inside" {
					key = "inside"
				}
				break
			}
		}
		msg := err.Error()
		if i := strings.Index(msg, ": "); i >= 0 && strings.HasPrefix(key, Section+".") {
			msg = msg[i+2:]
		}
		return ps, method.Bad(key, "%s", msg)
	}
	return ps, nil
}

// Needs: the kernel's SNAT rules (rules.PortSetSpec) do the work; nothing
// is queued.
func (c Config) Needs() method.Needs { return method.Needs{} }
