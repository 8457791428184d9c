package config

import (
	"net/netip"
	"os"
	"strings"

	"github.com/natreveal/natreveal/portset"
)

// MethodPortSet is deterministic NAT (RFC 7422, RFC 6967 §5.1): no packet is
// queued, the kernel's SNAT gives each inside host a published port block.
const MethodPortSet = "port-set"

// PortSetConfig is the port-set method's part of the configuration.
type PortSetConfig struct {
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
// public addresses (portset.Policy.PlanOn), validated by Load.
func (ps *PortSetConfig) Blocks() []portset.Block {
	b, _ := ps.Policy.PlanOn(ps.Own)
	return b
}

// MappingLogConfig is the mapping log (RFC 6888 §4) of run.
type MappingLogConfig struct {
	File        string // "" off, "-" standard output, else a file appended to
	Destination bool   // also log the destination (RFC 6888 §4 advises against)
}

// portSet validates the port_set and mapping_log keys.
func (c *Config) portSet(k *Keys) error {
	var err error
	c.MappingLog.File = k.MappingLog.File
	c.MappingLog.Destination = k.MappingLog.Destination
	ps := &c.PortSet
	ps.OutIface = k.PortSet.OIfName
	if len(ps.OutIface) > 15 || strings.ContainsAny(ps.OutIface, "\"\\ \t/") {
		return bad("port_set.oifname", "%q is not an interface name", ps.OutIface)
	}
	ps.PolicyFile = k.PortSet.PolicyFile
	public := k.PortSet.Public
	if ps.PolicyFile != "" {
		data, err := os.ReadFile(ps.PolicyFile)
		if err != nil {
			return bad("port_set.policy_file", "%v", err)
		}
		if ps.Policy, err = portset.ParsePolicy(data); err != nil {
			return bad("port_set.policy_file", "%s: %v", ps.PolicyFile, err)
		}
		// With a policy file, port_set.public names this box's own
		// addresses among the policy's (several active NATs).
		for _, s := range public {
			a, err := netip.ParseAddr(s)
			if err != nil || !a.Is4() {
				return bad("port_set.public", "%q is not an IPv4 address", s)
			}
			ps.Own = append(ps.Own, a)
		}
		if _, err := ps.Policy.PlanOn(ps.Own); err != nil {
			return bad("port_set.public", "%s", strings.TrimPrefix(err.Error(), "public: "))
		}
		return nil
	}
	if len(public) == 0 {
		if c.Has(MethodPortSet) {
			return bad("port_set.public", "required by method port-set: the public IPv4 addresses, e.g. 192.0.2.1")
		}
		return nil
	}
	p := portset.Policy{}
	for _, s := range public {
		a, err := netip.ParseAddr(s)
		if err != nil || !a.Is4() {
			return bad("port_set.public", "%q is not an IPv4 address", s)
		}
		p.Public = append(p.Public, a)
	}
	for _, q := range c.Inside {
		if q.Addr().Is4() {
			p.Inside = append(p.Inside, q)
		}
	}
	if len(p.Inside) == 0 {
		return bad("inside", "port-set needs IPv4 inside prefixes")
	}
	if p.Ports, err = portset.ParsePortRange(k.PortSet.Ports); err != nil {
		return bad("port_set.ports", "%v", err)
	}
	if p.BlockSize, err = intIn("port_set.block_size", k.PortSet.BlockSize, 0, 65535); err != nil {
		return err
	}
	if p.Ratio, err = intIn("port_set.ratio", k.PortSet.Ratio, 0, 65535); err != nil {
		return err
	}
	a, err := oneOf("port_set.assignment", k.PortSet.Assignment, string(portset.Sequential), string(portset.Staggered))
	if err != nil {
		return err
	}
	p.Assignment = portset.Assignment(a)
	p.IncludeBoundary = k.PortSet.IncludeBoundary
	if ps.Policy, err = p.Normalize(); err != nil {
		key := "port_set"
		for _, k := range []string{"block_size", "ratio", "ports", "assignment", "public", "inside"} {
			if strings.HasPrefix(err.Error(), k+":") {
				key = "port_set." + k
				if k == "inside" {
					key = "inside"
				}
				break
			}
		}
		msg := err.Error()
		if i := strings.Index(msg, ": "); i >= 0 && strings.HasPrefix(key, "port_set.") {
			msg = msg[i+2:]
		}
		return bad(key, "%s", msg)
	}
	return nil
}

// HasPortSetPolicy reports whether a port-set policy is configured.
func (c *Config) HasPortSetPolicy() bool { return len(c.PortSet.Policy.Inside) > 0 }
