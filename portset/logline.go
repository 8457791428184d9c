package portset

import (
	"errors"
	"fmt"
	"math/bits"
	"net/netip"
	"strconv"
	"strings"
	"time"
)

// RFC 7422 §3: "Such a log message MUST, at minimum, include the timestamp,
// inside prefix I, inside mask, outside prefix O, outside mask, D, M, A, and
// reserved port list R; for example:
//
//	[Wed Oct 11 14:32:52 2000]:198.51.100.0:28:192.0.2.0:32:2:5040:0:1-1023,5004,5060."
//
// The CGN MUST generate a record whenever these change and SHOULD log it
// once a day. C is not in the record: it is I/O (§2), and each inside
// address gets (65536-|R|)/(C+D) ports (§2 step 2).

// Record is the RFC 7422 §3 log record of the policy at time t: the
// timestamp in brackets, in the RFC's form (time.ANSIC), then LogLine:
//
//	[Mon Jun  1 09:00:00 2026]:100.64.0.0:24:192.0.2.1:32:2:252:0:0-1023
func (p Policy) Record(t time.Time) (string, error) {
	line, err := p.LogLine()
	if err != nil {
		return "", err
	}
	return "[" + t.Format(time.ANSIC) + "]:" + line, nil
}

// LogLine is the RFC 7422 §3 log record without its timestamp, the fields
// colon-separated: inside prefix I and its mask length, outside prefix O
// and its mask length, D, M, A and the reserved port list R:
//
//	100.64.0.0:24:192.0.2.1:32:2:252:0:0-1023
//
// M is the block size (natreveal has no overflow pool: a host never gets
// more ports than its block), D the blocks per outside address beyond C
// that no host gets, A 0 (sequential) or 5 (natreveal's staggered, see
// Staggered), R the ports outside Ports, port 0 included (§2 step 1: "e.g.,
// 0-1023 for TCP and UDP").
//
// The record describes only what RFC 7422 does, so LogLine fails, naming
// the parameter, for a policy that needs more: several inside prefixes,
// numbered boundary addresses (§2.3 numbers a /28's 14 hosts), public
// addresses that are not one prefix in order, inside hosts without a block
// (RFC 7422 gives every inside address one), or blocks that are not
// (65536-|R|)/(C+D) ports for a whole D.
func (p Policy) LogLine() (string, error) {
	if err := p.Validate(); err != nil {
		return "", err
	}
	n := p.normalized()
	if len(n.Inside) != 1 {
		return "", fmt.Errorf("inside: %d prefixes; RFC 7422's record names one inside prefix (I and its mask)", len(n.Inside))
	}
	in := n.Inside[0]
	if n.skip(in) == 0 && in.Bits() < 31 {
		return "", errors.New("include_boundary: RFC 7422 numbers a prefix's hosts without its network and broadcast addresses (§2.3: a /28 holds 14)")
	}
	out, ok := prefixOf(n.Public)
	if !ok {
		return "", errors.New("public: RFC 7422's record names one outside prefix (O and its mask): list the addresses of one prefix, in order")
	}
	hosts, c := n.Hosts(), n.rfcRatio()
	avail := n.Ports.Len()
	if det := n.Deterministic(); det < hosts {
		return "", fmt.Errorf("block_size: %d ports give blocks to %d of %d inside hosts; RFC 7422 gives every inside address a block: at most %d ports per host (C = %d hosts per outside address)",
			n.BlockSize, det, hosts, avail/c, c)
	}
	if n.Assignment == Sequential && len(n.Public) > 1 && n.Ratio != c {
		return "", fmt.Errorf("ratio: %d; RFC 7422 puts C = I/O = %d hosts on each outside address", n.Ratio, c)
	}
	d := avail/n.BlockSize - c
	if d < 0 || avail/(c+d) != n.BlockSize {
		return "", fmt.Errorf("block_size: %d; RFC 7422 §2 gives each host (65536-|R|)/(C+D) = %d/(%d+D) ports: choose %d/k for a whole k >= %d", n.BlockSize, avail, c, avail, c)
	}
	return fmt.Sprintf("%s:%d:%s:%d:%d:%d:%d:%s", in.Addr(), in.Bits(), out.Addr(), out.Bits(),
		d, n.BlockSize, n.Assignment.rfcAlgorithm(), reserved(n.Ports)), nil
}

// prefixOf returns the prefix whose addresses as are, in ascending order.
func prefixOf(as []netip.Addr) (netip.Prefix, bool) {
	n := len(as)
	if n == 0 || n&(n-1) != 0 || n > 1<<16 {
		return netip.Prefix{}, false
	}
	q := netip.PrefixFrom(as[0], 32-bits.TrailingZeros(uint(n)))
	if q.Masked().Addr() != as[0] {
		return netip.Prefix{}, false
	}
	for i, a := range as {
		if a != addAddr(as[0], uint32(i)) {
			return netip.Prefix{}, false
		}
	}
	return q, true
}

// reserved is the complement of the usable range in 0-65535, RFC 7422's R.
func reserved(r PortRange) string {
	var parts []string
	if r.First > 0 {
		parts = append(parts, PortRange{0, r.First - 1}.String())
	}
	if r.Last < 65535 {
		parts = append(parts, PortRange{r.Last + 1, 65535}.String())
	}
	return strings.Join(parts, ",")
}

// ParseLogLine reads an RFC 7422 §3 record, with or without its
// "[timestamp]:" (time.ANSIC, as the RFC's example) and the example's
// closing period, and returns the policy it describes: C = I/O hosts per
// outside address (hosts without the network and broadcast addresses),
// each with (65536-|R|)/(C+D) ports (§2 step 2). M, the maximum ports per
// user, may exceed that (the rest would come from the overflow pool, which
// natreveal does not run); A must be 0 (sequential) or 5 (natreveal's
// staggered): the RFC's other algorithms do not give a host one port range.
// R must leave one range of ports: reserved ports only below and above it.
func ParseLogLine(line string) (Policy, error) {
	s := strings.TrimSuffix(strings.TrimSpace(line), ".")
	if strings.HasPrefix(s, "[") {
		ts, rest, ok := strings.Cut(s[1:], "]:")
		if !ok {
			return Policy{}, fmt.Errorf("rfc7422 record %q: no \"]:\" after the timestamp", line)
		}
		if _, err := time.Parse(time.ANSIC, ts); err != nil {
			return Policy{}, fmt.Errorf("rfc7422 record: timestamp %q is not like %q", ts, time.ANSIC)
		}
		s = rest
	}
	f := strings.Split(s, ":")
	if len(f) != 8 {
		return Policy{}, fmt.Errorf("rfc7422 record %q: want 8 fields I:mask:O:mask:D:M:A:R, have %d", line, len(f))
	}
	in, err := prefixField("I", f[0], f[1])
	if err != nil {
		return Policy{}, err
	}
	out, err := prefixField("O", f[2], f[3])
	if err != nil {
		return Policy{}, err
	}
	if out.Bits() < 16 {
		return Policy{}, fmt.Errorf("rfc7422 record: O=%s: more than 65536 outside addresses", out)
	}
	d, err := atoi("D", f[4], 0, 1<<16)
	if err != nil {
		return Policy{}, err
	}
	m, err := atoi("M", f[5], 1, 1<<16)
	if err != nil {
		return Policy{}, err
	}
	var p Policy
	switch a, err := atoi("A", f[6], 0, 5); {
	case err != nil:
		return Policy{}, err
	case a == 0:
		p.Assignment = Sequential
	case a == 5:
		p.Assignment = Staggered
	default:
		return Policy{}, fmt.Errorf("rfc7422 record: A=%d (%s) gives a host no single port range, which is all the kernel's SNAT map takes: natreveal reads A=0 (sequential) and A=5 (its staggered)",
			a, [...]string{1: "staggered, ports interleaved", 2: "round robin", 3: "interlaced horizontally", 4: "cryptographically random"}[a])
	}
	if p.Ports, err = usable(f[7]); err != nil {
		return Policy{}, err
	}
	p.Inside = []netip.Prefix{in}
	for i := range uint32(1) << (32 - out.Bits()) {
		p.Public = append(p.Public, addAddr(out.Addr(), i))
	}
	c := p.rfcRatio()
	block := p.Ports.Len() / (c + d)
	if block < 2 {
		return Policy{}, fmt.Errorf("rfc7422 record: %d ports / (C+D = %d+%d) leave %d ports per host", p.Ports.Len(), c, d, block)
	}
	if m < block {
		return Policy{}, fmt.Errorf("rfc7422 record: M=%d is below the %d ports RFC 7422 §2 gives each host ((65536-|R|)/(C+D) = %d/(%d+%d))", m, block, p.Ports.Len(), c, d)
	}
	p.BlockSize, p.Ratio = block, c
	if err := p.Validate(); err != nil {
		return Policy{}, fmt.Errorf("rfc7422 record: %w", err)
	}
	return p.normalized(), nil
}

func prefixField(name, addr, mask string) (netip.Prefix, error) {
	a, err := netip.ParseAddr(addr)
	if err != nil || !a.Is4() {
		return netip.Prefix{}, fmt.Errorf("rfc7422 record: %s=%q is not an IPv4 address", name, addr)
	}
	bits, err := atoi(name+" mask", mask, 0, 32)
	if err != nil {
		return netip.Prefix{}, err
	}
	q := netip.PrefixFrom(a, bits)
	if q.Masked() != q {
		return netip.Prefix{}, fmt.Errorf("rfc7422 record: %s has host bits set", q)
	}
	return q, nil
}

func atoi(k, s string, lo, hi int) (int, error) {
	n, err := strconv.Atoi(s)
	if err != nil || n < lo || n > hi || strings.TrimLeft(s, "0123456789") != "" {
		return 0, fmt.Errorf("rfc7422 record: %s=%q is not a number %d-%d", k, s, lo, hi)
	}
	return n, nil
}

// usable turns R, RFC 7422's reserved port list ("1-1023,5004,5060": ports
// and ranges, comma-separated), into the one range of ports left; port 0 is
// reserved whether listed or not.
func usable(r string) (PortRange, error) {
	var res [65536]bool
	res[0] = true
	for _, s := range strings.Split(r, ",") {
		pr, err := ParsePortRange(s)
		if err != nil {
			return PortRange{}, fmt.Errorf("rfc7422 record: R=%s: %w", r, err)
		}
		for p := int(pr.First); p <= int(pr.Last); p++ {
			res[p] = true
		}
	}
	first := 0
	for first < len(res) && res[first] {
		first++
	}
	last := len(res) - 1
	for last > first && res[last] {
		last--
	}
	if first > last {
		return PortRange{}, fmt.Errorf("rfc7422 record: R=%s reserves every port", r)
	}
	for p := first; p <= last; p++ {
		if res[p] {
			return PortRange{}, fmt.Errorf("rfc7422 record: R=%s reserves port %d between usable ports: natreveal's blocks are port ranges, so reserved ports must lie below and above one range", r, p)
		}
	}
	return PortRange{First: uint16(first), Last: uint16(last)}, nil
}
