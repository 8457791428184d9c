package config

import (
	"math/bits"
	"net/netip"
	"runtime"
	"slices"
	"strings"

	"github.com/natreveal/natreveal/method"
	"github.com/natreveal/natreveal/method/all"
	"github.com/natreveal/natreveal/rules"
)

// fromKeys converts and checks every key; the first bad one is returned.
func fromKeys(k *Keys) (*Config, error) {
	c := &Config{}
	var err error
	if c.Inside, err = prefixes("inside", k.Inside); err != nil {
		return nil, err
	}
	if c.Methods, err = methods(k.Methods); err != nil {
		return nil, err
	}
	if c.Placement, err = oneOf("placement", k.Placement, "pre-nat", "post-nat"); err != nil {
		return nil, err
	}
	if c.Table, err = tableName(k.Table); err != nil {
		return nil, err
	}
	if c.HostID.Source, err = oneOf("hostid.source", k.HostID.Source, "lower16", "address", "hash", "map"); err != nil {
		return nil, err
	}
	c.HostID.KeyFile, c.HostID.MapFile = k.HostID.KeyFile, k.HostID.MapFile
	if c.Configs, err = k.Keys.Validate(c.env()); err != nil {
		return nil, err
	}
	n, err := intIn("queue.num", k.Queue.Num, 0, 65535)
	if err != nil {
		return nil, err
	}
	cnt, err := intIn("queue.count", k.Queue.Count, 0, 1024)
	if err != nil {
		return nil, err
	}
	if cnt == 0 {
		// One queue per CPU: each served by a thread pinned to its CPU
		// (queue.Config.PerCPU), the fastest SYN path.
		cnt = min(runtime.NumCPU(), 1024)
	}
	if n+cnt-1 > 65535 {
		return nil, bad("queue.count", "queues %d..%d run past 65535", n, n+cnt-1)
	}
	c.Queue.Num, c.Queue.Count = uint16(n), uint16(cnt)
	c.Queue.FailOpen = k.Queue.FailOpen
	ml, err := intIn("queue.max_len", k.Queue.MaxLen, 1, 1<<20)
	if err != nil {
		return nil, err
	}
	c.Queue.MaxLen = uint32(ml)
	if c.Queue.Workers, err = intIn("queue.workers", k.Queue.Workers, 0, 1024); err != nil {
		return nil, err
	}
	if c.Queue.Backlog, err = intIn("queue.backlog", k.Queue.Backlog, 1, 1<<20); err != nil {
		return nil, err
	}
	if c.Flows.Max, err = intIn("flows.max", k.Flows.Max, 1, 1<<24); err != nil {
		return nil, err
	}
	if c.Marks.Track, err = markBit("marks.track", k.Marks.Track); err != nil {
		return nil, err
	}
	if c.Marks.Done, err = markBit("marks.done", k.Marks.Done); err != nil {
		return nil, err
	}
	if c.Marks.Track == c.Marks.Done {
		return nil, bad("marks.done", "must differ from marks.track (%#x)", c.Marks.Track)
	}
	if err := c.ops(k); err != nil {
		return nil, err
	}
	c.MappingLog.File = k.MappingLog.File
	c.MappingLog.Destination = k.MappingLog.Destination
	if err := c.selectMarks(k); err != nil {
		return nil, err
	}
	return c, c.crossCheck()
}

// crossCheck validates combinations of keys.
func (c *Config) crossCheck() error {
	switch c.HostID.Source {
	case "hash":
		if c.HostID.KeyFile == "" {
			return bad("hostid.key_file", "required by hostid.source hash")
		}
	case "map":
		if c.HostID.MapFile == "" {
			return bad("hostid.map_file", "required by hostid.source map")
		}
	case "address":
		// For IPv6 hosts "address" is the low 32 bits of the address (the
		// interface identifier's lower half, RFC 4291 §2.5.1): the whole
		// address does not fit in any carrier.
		// Methods whose length key chooses the width first, then those
		// whose carrier fixes it.
		for _, fixed := range []bool{false, true} {
			for _, m := range all.List {
				n, ok := c.Configs.Needs(m.Name)
				if !ok || !c.Has(m.Name) || n.IDBits == 0 || n.IDBits == 32 || n.IDFixed != fixed {
					continue
				}
				if fixed {
					return bad("hostid.source", "address is 32 bits but %s carries %d; use lower16, hash or map", m.Name, n.IDBits)
				}
				return bad(m.Section+".length", "hostid.source address needs 4 bytes, got %d", n.IDBits/8)
			}
		}
	}
	if n, cnt := int(c.Queue.Num), int(c.Queue.Count); c.Selects() && c.HasIPv4() && n+2*cnt-1 > 65535 {
		// rules.Spec.SelectQueues: selected flows take queue.count queues
		// more, fail closed, right after the others.
		return bad("queue.count", "queues %d..%d run past 65535 (http-header and proxy-protocol take a second range of queue.count queues after the first)", n, n+2*cnt-1)
	}
	if c.HasIPv6() && c.Placement == "post-nat" {
		return bad("placement", "post-nat carries the inside source in the 32-bit packet mark, which cannot hold an IPv6 address; use pre-nat with IPv6 inside prefixes")
	}
	if n := c.EnabledNeeds(); c.Placement == "post-nat" && n.AllTCP && n.Track {
		// AllTCP (ip-id scope all) beside a method that tracks flows after
		// the SYN (tcp-option).
		return bad("ip_id.scope", "all queues every TCP segment, and post-nat the packet mark holds the inside address, so segments of a flow still waiting for the server's answer (RFC 7974 §4.2) cannot be told apart for tcp-option; use pre-nat, or scope new")
	}
	for _, m := range all.List {
		if c.Has(m.Name) && m.Family == method.IPv6 && !c.HasIPv6() {
			return bad("methods", "%s marks IPv6 packets only, but inside holds no IPv6 prefix", m.Name)
		}
	}
	if c.HasIPv4() && !(c.carriesIn(method.IPv4) || c.Selects()) && c.PacketMethods() {
		return bad("methods", "inside holds IPv4 prefixes but no enabled method marks them (IPv6 only: %s); add an IPv4 method (%s)",
			c.enabledOnly(method.IPv6), carriers(method.IPv4, ", "))
	}
	if c.HasIPv6() && !c.carriesIn(method.IPv6) && c.PacketMethods() {
		return bad("methods", "inside holds IPv6 prefixes but no enabled method marks them (IPv4 only: %s); add %s",
			c.enabledOnly(method.IPv4), carriers(method.IPv6, " or "))
	}
	for _, m := range all.List {
		if n, ok := c.Configs.Needs(m.Name); ok && c.Has(m.Name) && n.CGNOnly {
			for _, p := range c.Inside {
				if privateLAN(p) {
					return bad(m.Section+".cgn", "inside prefix %s is private LAN space: RFC 7974 §8 forbids "+
						"the option at the border of a private LAN; set "+m.Section+".cgn: true only if this NAT is a CGN "+
						"(a home router uses ip-id, ip-option, port-set or http-header instead: docs/openwrt.md)", p)
				}
			}
		}
	}
	return nil
}

// privateLAN reports whether p lies in RFC 1918 space or IPv6 unique local
// addresses (RFC 4193 §3.1, fc00::/7): home/enterprise LANs; CGNs use RFC
// 6598's 100.64.0.0/10.
func privateLAN(p netip.Prefix) bool {
	for _, s := range []string{"10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "fc00::/7"} {
		q := netip.MustParsePrefix(s)
		if q.Overlaps(p) {
			return true
		}
	}
	return false
}

func prefixes(key string, items []string) ([]netip.Prefix, error) {
	if len(items) == 0 {
		return nil, bad(key, "required: the IPv4 or IPv6 prefixes of the inside hosts, e.g. 100.64.0.0/10")
	}
	var out []netip.Prefix
	for _, s := range items {
		p, err := netip.ParsePrefix(s)
		if err != nil {
			a, aerr := netip.ParseAddr(s)
			if aerr != nil {
				return nil, bad(key, "%q is not an IPv4 or IPv6 prefix", s)
			}
			p = netip.PrefixFrom(a, a.BitLen())
		}
		if p.Addr().Is4In6() || p.Addr().Zone() != "" || strings.Contains(s, "%") {
			// ParseAddr reads "fe80::%eth0/64" as an address with the zone
			// "eth0/64", and PrefixFrom drops the zone: refuse it here.
			return nil, bad(key, "%q: write IPv4 prefixes as IPv4, IPv6 ones without a zone", s)
		}
		if p.Masked() != p {
			return nil, bad(key, "%q has host bits set (did you mean %s?)", s, p.Masked())
		}
		out = append(out, p)
	}
	// rules.Spec refuses overlapping prefixes: a host must have one rule.
	if o := rules.Overlaps(out); len(o) > 0 {
		if o[0][0] == o[0][1] {
			return nil, bad(key, "%s is listed twice", o[0][0])
		}
		return nil, bad(key, "%s and %s overlap; list each inside host once", o[0][0], o[0][1])
	}
	return out, nil
}

// portSetSuffix is appended to the table name for port-set's table
// (cmd/natreveal: Table + "_portset").
const portSetSuffix = "_portset"

// tableName checks the table key by rules.Spec's rule, leaving room for
// port-set's table name, which adds portSetSuffix.
func tableName(name string) (string, error) {
	if len(name) > 255-len(portSetSuffix) {
		return "", bad("table", "longer than 247 bytes: port-set's table adds "+portSetSuffix+", and nftables allows 255")
	}
	if err := rules.CheckTableName(name); err != nil {
		return "", bad("table", "%s", strings.TrimPrefix(err.Error(), "table name "))
	}
	return name, nil
}

func methods(items []string) ([]string, error) {
	names := strings.Join(allMethods, ", ")
	if len(items) == 0 {
		return nil, bad("methods", "nothing enabled; name at least one of %s", names)
	}
	seen := map[string]bool{}
	var out []string
	for _, m := range items {
		if !slices.Contains(allMethods, m) {
			return nil, bad("methods", "unknown method %q (want one of %s)", m, names)
		}
		if !seen[m] {
			seen[m] = true
			out = append(out, m)
		}
	}
	return out, nil
}

func oneOf(key, s string, allowed ...string) (string, error) {
	if slices.Contains(allowed, s) {
		return s, nil
	}
	return "", bad(key, "%q is not one of %s", s, strings.Join(allowed, ", "))
}

func intIn(key string, n, lo, hi int) (int, error) {
	if n < lo || n > hi {
		return 0, bad(key, "%d is out of range %d..%d", n, lo, hi)
	}
	return n, nil
}

func markBit(key string, n int64) (uint32, error) {
	if n <= 0 || n > 0xffffffff || bits.OnesCount64(uint64(n)) != 1 {
		return 0, bad(key, "want a single-bit packet mark such as 0x00010000, got %#x", n)
	}
	return uint32(n), nil
}
