package config

import (
	"net/netip"
	"os"
	"strings"

	"github.com/spf13/pflag"
	"github.com/spf13/viper"

	"github.com/natreveal/natreveal/portset"
)

// MethodPortSet is deterministic NAT (seed §3.6, RFC 7422): no packet is
// queued, the kernel's SNAT gives each inside host a published port block.
const MethodPortSet = "port-set"

// PortSetConfig is the port-set method's part of the configuration.
type PortSetConfig struct {
	// Policy is the validated, normalized policy: from port_set.policy_file
	// when set, else from the IPv4 inside prefixes and the port_set keys.
	// Its Inside is empty when no policy is configured.
	Policy     portset.Policy
	PolicyFile string
	OutIface   string // port_set.oifname: translate only packets leaving there
}

// MappingLogConfig is the mapping log (RFC 6888 §4) of run.
type MappingLogConfig struct {
	File        string // "" off, "-" standard output, else a file appended to
	Destination bool   // also log the destination (RFC 6888 §4 advises against)
}

// Keys of the port-set method and of the mapping log.
func init() {
	allMethods = append(allMethods, MethodPortSet)
	defaults["port_set.public"] = []string{}
	defaults["port_set.ports"] = portset.DefaultPorts.String()
	defaults["port_set.block_size"] = 0
	defaults["port_set.ratio"] = 0
	defaults["port_set.assignment"] = string(portset.Sequential)
	defaults["port_set.include_boundary"] = false
	defaults["port_set.oifname"] = ""
	defaults["port_set.policy_file"] = ""
	defaults["mapping_log.file"] = ""
	defaults["mapping_log.destination"] = false
	flags["port-set-public"] = "port_set.public"
	flags["port-set-ports"] = "port_set.ports"
	flags["port-set-block-size"] = "port_set.block_size"
	flags["port-set-ratio"] = "port_set.ratio"
	flags["port-set-assignment"] = "port_set.assignment"
	flags["port-set-oifname"] = "port_set.oifname"
	flags["port-set-policy-file"] = "port_set.policy_file"
	flags["mapping-log"] = "mapping_log.file"
	flags["mapping-log-destination"] = "mapping_log.destination"
}

// AddPortSetFlags registers the port-set flags (run, portset plan).
func AddPortSetFlags(fs *pflag.FlagSet) {
	fs.StringSlice("port-set-public", nil, "port-set: public IPv4 addresses whose ports are split into blocks (RFC 7422 O)")
	fs.String("port-set-ports", portset.DefaultPorts.String(), "port-set: usable ports of each public address; the rest are reserved (RFC 7422 R)")
	fs.Int("port-set-block-size", 0, "port-set: ports per inside host (RFC 7422 M)")
	fs.Int("port-set-ratio", 0, "port-set: inside hosts per public address (RFC 7422 C); 0: ports / block size")
	fs.String("port-set-assignment", string(portset.Sequential), "port-set: sequential or staggered (RFC 7422 A)")
	fs.String("port-set-oifname", "", "port-set: translate only packets leaving through this interface")
	fs.String("port-set-policy-file", "", "port-set: a published policy (JSON, as `natreveal portset plan` prints it) instead of the port_set keys")
}

// AddMappingLogFlags registers the mapping log flags (run).
func AddMappingLogFlags(fs *pflag.FlagSet) {
	fs.String("mapping-log", "", "log each translation (conntrack new/destroy) as JSON lines to this file, - for stdout (RFC 6888 §4)")
	fs.Bool("mapping-log-destination", false, "include the destination in the mapping log (off by default, RFC 6888 §4)")
}

// portSet validates the port_set and mapping_log keys.
func (c *Config) portSet(v *viper.Viper) error {
	var err error
	if c.MappingLog.File, err = str(v, "mapping_log.file"); err != nil {
		return err
	}
	if c.MappingLog.Destination, err = boolean(v, "mapping_log.destination"); err != nil {
		return err
	}
	ps := &c.PortSet
	if ps.OutIface, err = str(v, "port_set.oifname"); err != nil {
		return err
	}
	if len(ps.OutIface) > 15 || strings.ContainsAny(ps.OutIface, "\"\\ \t/") {
		return bad("port_set.oifname", "%q is not an interface name", ps.OutIface)
	}
	if ps.PolicyFile, err = str(v, "port_set.policy_file"); err != nil {
		return err
	}
	public, err := list(v, "port_set.public")
	if err != nil {
		return err
	}
	if ps.PolicyFile != "" {
		if len(public) > 0 {
			return bad("port_set.public", "set either port_set.policy_file or the port_set keys, not both")
		}
		data, err := os.ReadFile(ps.PolicyFile)
		if err != nil {
			return bad("port_set.policy_file", "%v", err)
		}
		if ps.Policy, err = portset.ParsePolicy(data); err != nil {
			return bad("port_set.policy_file", "%s: %v", ps.PolicyFile, err)
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
	ports, err := str(v, "port_set.ports")
	if err != nil {
		return err
	}
	if p.Ports, err = portset.ParsePortRange(ports); err != nil {
		return bad("port_set.ports", "%v", err)
	}
	if p.BlockSize, err = intIn(v, "port_set.block_size", 0, 65535); err != nil {
		return err
	}
	if p.Ratio, err = intIn(v, "port_set.ratio", 0, 65535); err != nil {
		return err
	}
	a, err := oneOf(v, "port_set.assignment", string(portset.Sequential), string(portset.Staggered))
	if err != nil {
		return err
	}
	p.Assignment = portset.Assignment(a)
	if p.IncludeBoundary, err = boolean(v, "port_set.include_boundary"); err != nil {
		return err
	}
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
