package config

import "time"

// IPIDKernelConfig is the in-kernel fast path of the ip-id method: an nft
// map from inside address to HOST_ID that the daemon fills from the first
// queued SYN of each host; the kernel then writes the IP-ID of that host's
// atomic SYNs itself (rules/ipidmap.go).
type IPIDKernelConfig struct {
	Enabled bool          // ip_id.kernel
	Size    int           // ip_id.kernel_size: hosts in the map at most
	Timeout time.Duration // ip_id.kernel_timeout: a host is forgotten this long after it was learned (0: never)
}

// ipidKernel validates the ip_id.kernel keys; methods, placement, inside
// and ip_id.scope are read before.
func (c *Config) ipidKernel(keys *Keys) error {
	k := &c.IPIDKernel
	var err error
	k.Enabled = keys.IPID.Kernel
	if k.Size, err = intIn("ip_id.kernel_size", keys.IPID.KernelSize, 1, 1<<24); err != nil {
		return err
	}
	s := keys.IPID.KernelTimeout
	if k.Timeout, err = time.ParseDuration(s); err != nil || k.Timeout < 0 || k.Timeout%time.Millisecond != 0 {
		return bad("ip_id.kernel_timeout", "%q is not a duration such as 1h or 30m (0: never), in whole milliseconds", s)
	}
	if !k.Enabled {
		return nil
	}
	switch {
	case !c.Has(MethodIPID):
		return bad("ip_id.kernel", "needs the ip-id method")
	case c.Placement != "pre-nat":
		return bad("ip_id.kernel", "needs placement pre-nat (the map is keyed by the inside source address)")
	case c.IPID.Scope != ScopeSYN:
		return bad("ip_id.kernel", "needs ip_id.scope syn (scope %s is followed in user space)", c.IPID.Scope)
	case !c.HasIPv4():
		return bad("ip_id.kernel", "needs IPv4 inside prefixes")
	}
	return nil
}
