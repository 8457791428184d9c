// Package portset is deterministic NAT as RFC 7422 ("Deterministic Address
// Mapping to Reduce Logging in Carrier-Grade NAT Deployments") describes it:
// every inside host gets a fixed block of ports on one public address,
// computed from a handful of published parameters, so that a public
// address:port names the inside host without any per-connection log. It also
// holds the server side of draft-boucadair-intarea-nat-reveal-analysis §3.6.1 for when no policy is published
// (grouping.go).
//
// RFC 7422 §2 names the variables of the algorithm: the inside address range
// (I), the outside address range (O), the compression ratio C ("inside IP
// addresses I / outside IP addresses O"), the dynamic address pool factor D
// ("added to the compression ratio in order to create an overflow address
// pool"), the maximum ports per user (M), the address assignment algorithm
// (A) and the reserved TCP/UDP port list (R). Each inside address gets
// 1/(C+D) of the ports left after R (§2 step 2; §2.3: a /28 holds 14 hosts,
// D = 2, (65536-1024)/16 = 4032 ports each); the D blocks at the end of each
// outside address are the overflow pool. A Policy holds them: Ports is the
// complement of R, BlockSize the ports of each host, Ratio C. natreveal has
// no overflow pool: a host uses only its block (so M is the block size), the
// ports of the D blocks stay unused by the deterministic hosts, and hosts the
// blocks cannot hold fall back to the operator's own masquerade (which RFC
// 7422 does not provide for: such a policy has no RFC 7422 log record, see
// LogLine).
//
// The package is pure: no syscalls. rules/portset.go turns a Plan into the
// kernel's SNAT map.
package portset

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"net/netip"
	"slices"
	"strconv"
	"strings"
)

// Assignment is the address assignment algorithm (RFC 7422 §2, A).
type Assignment string

const (
	// Sequential is RFC 7422 §2's A=0 ("the first block goes to address 1,
	// the second block to address 2, etc."; §2.3: 198.51.100.1 gets
	// 192.0.2.1 ports 1024-5055, 198.51.100.2 ports 5056-9087): it fills the
	// blocks of the first public address, then those of the second, and so
	// on: host i gets block i mod C of address i div C.
	Sequential Assignment = "sequential"
	// Staggered is natreveal's own spread, logged as RFC 7422's A=5
	// ("vendor-specific"): consecutive hosts get consecutive public
	// addresses, host i gets block i div P of address i mod P (P public
	// addresses), so that the first blocks of every address are used before
	// the second ones. It is not RFC 7422's A=1 "staggered", which
	// interleaves single ports with stride C (host n+1 receives ports
	// k*C+R+n) and so cannot be one port range per host, the only form the
	// kernel's `snat to ip saddr map` takes.
	Staggered Assignment = "staggered"
)

// rfcAlgorithm is the value of A in RFC 7422's log record (§2: 0
// sequential, 1 staggered, 2 round robin, 3 interlaced horizontally, 4
// cryptographically random, 5 vendor-specific).
func (a Assignment) rfcAlgorithm() int {
	if a == Staggered {
		return 5
	}
	return 0
}

// PortRange is an inclusive range of ports, written "first-last" (or "port").
type PortRange struct {
	First, Last uint16
}

// Len is the number of ports in r.
func (r PortRange) Len() int { return int(r.Last) - int(r.First) + 1 }

// Contains reports whether p lies in r.
func (r PortRange) Contains(p uint16) bool { return p >= r.First && p <= r.Last }

func (r PortRange) String() string {
	if r.First == r.Last {
		return strconv.Itoa(int(r.First))
	}
	return fmt.Sprintf("%d-%d", r.First, r.Last)
}

// MarshalText writes r as String does.
func (r PortRange) MarshalText() ([]byte, error) { return []byte(r.String()), nil }

// UnmarshalText reads what ParsePortRange reads.
func (r *PortRange) UnmarshalText(b []byte) error {
	p, err := ParsePortRange(string(b))
	if err != nil {
		return err
	}
	*r = p
	return nil
}

// ParsePortRange reads "first-last" or a single port, 0..65535, first <= last.
func ParsePortRange(s string) (PortRange, error) {
	s = strings.TrimSpace(s)
	a, b, isRange := strings.Cut(s, "-")
	first, err := parsePort(a)
	if err != nil {
		return PortRange{}, fmt.Errorf("port range %q: %w", s, err)
	}
	last := first
	if isRange {
		if last, err = parsePort(b); err != nil {
			return PortRange{}, fmt.Errorf("port range %q: %w", s, err)
		}
	}
	if first > last {
		return PortRange{}, fmt.Errorf("port range %q: first port above last", s)
	}
	return PortRange{First: first, Last: last}, nil
}

func parsePort(s string) (uint16, error) {
	s = strings.TrimSpace(s)
	if s == "" || len(s) > 5 || strings.TrimLeft(s, "0123456789") != "" {
		return 0, fmt.Errorf("%q is not a port number", s)
	}
	n, err := strconv.Atoi(s)
	if err != nil || n > math.MaxUint16 {
		return 0, fmt.Errorf("%q is not a port number (0-65535)", s)
	}
	return uint16(n), nil
}

// Policy is a published deterministic NAT policy (RFC 7422 §2).
type Policy struct {
	// Inside are the inside prefixes (I), IPv4; their hosts are numbered in
	// address order across the prefixes.
	Inside []netip.Prefix `json:"inside"`
	// Public are the outside addresses (O), IPv4, in assignment order.
	Public []netip.Addr `json:"public"`
	// Ports is the usable port range of each public address; the ports
	// outside it are the reserved ports (R). Default 1024-65535.
	Ports PortRange `json:"ports"`
	// BlockSize is the number of ports per host (M). 0 derives it from Ratio.
	BlockSize int `json:"block_size"`
	// Ratio is the compression ratio (C): hosts per public address. 0 derives
	// it from BlockSize (Ports.Len() / BlockSize); when both are set,
	// Ratio*BlockSize must fit in Ports.
	Ratio int `json:"ratio,omitempty"`
	// Assignment is the algorithm (A); default Sequential.
	Assignment Assignment `json:"assignment"`
	// IncludeBoundary numbers the network and broadcast addresses of inside
	// prefixes shorter than /31 as hosts too (they are skipped by default:
	// no host can use them).
	IncludeBoundary bool `json:"include_boundary,omitempty"`
}

// DefaultPorts is the usable range when Policy.Ports is zero: the well-known
// ports 0-1023 are reserved.
var DefaultPorts = PortRange{First: 1024, Last: 65535}

// normalized returns p with defaults applied and BlockSize/Ratio derived.
func (p Policy) normalized() Policy {
	if p.Ports == (PortRange{}) {
		p.Ports = DefaultPorts
	}
	if p.Assignment == "" {
		p.Assignment = Sequential
	}
	n := p.Ports.Len()
	switch {
	case p.BlockSize == 0 && p.Ratio > 0:
		// RFC 7422 §2 step 2 with D = 0: 1/C of the available ports each.
		p.BlockSize = n / p.Ratio
	case p.BlockSize > 0 && p.Ratio == 0:
		// As many blocks as fit, but no more hosts per outside address than
		// RFC 7422's C = I/O (§2): the blocks past C on each address are its
		// D blocks of overflow ports, which no host gets.
		p.Ratio = n / p.BlockSize
		if len(p.Public) > 0 {
			if c := p.rfcRatio(); c > 0 && c < p.Ratio {
				p.Ratio = c
			}
		}
	}
	return p
}

// rfcRatio is RFC 7422's compression ratio C: inside hosts per outside
// address, rounded up (0 when p has no public address).
func (p Policy) rfcRatio() int {
	if len(p.Public) == 0 {
		return 0
	}
	h, o := p.Hosts(), uint64(len(p.Public))
	c := (h + o - 1) / o
	if c > math.MaxInt32 {
		return math.MaxInt32
	}
	return int(c)
}

// Normalize returns p with its defaults applied (Ports, Assignment) and
// BlockSize or Ratio derived from the other, and an error when p is invalid.
func (p Policy) Normalize() (Policy, error) {
	if err := p.Validate(); err != nil {
		return p, err
	}
	return p.normalized(), nil
}

// Validate reports the first problem of p, naming the parameter.
func (p Policy) Validate() error {
	if len(p.Inside) == 0 {
		return errors.New("inside: no prefix")
	}
	for i, q := range p.Inside {
		switch {
		case !q.IsValid():
			return fmt.Errorf("inside: prefix %d is not valid", i)
		case !q.Addr().Is4():
			return fmt.Errorf("inside: %s is not an IPv4 prefix (RFC 7422 maps IPv4 hosts)", q)
		case q.Masked() != q:
			return fmt.Errorf("inside: %s has host bits set (did you mean %s?)", q, q.Masked())
		}
		for _, r := range p.Inside[:i] {
			if r.Overlaps(q) {
				return fmt.Errorf("inside: %s and %s overlap", r, q)
			}
		}
	}
	if len(p.Public) == 0 {
		return errors.New("public: no address")
	}
	seen := map[netip.Addr]bool{}
	for _, a := range p.Public {
		switch {
		case !a.IsValid():
			return errors.New("public: an address is not valid")
		case !a.Is4():
			return fmt.Errorf("public: %s is not an IPv4 address", a)
		case seen[a]:
			return fmt.Errorf("public: %s listed twice", a)
		}
		seen[a] = true
	}
	switch p.Assignment {
	case "", Sequential, Staggered:
	default:
		return fmt.Errorf("assignment: %q is not sequential or staggered", p.Assignment)
	}
	if p.BlockSize < 0 || p.Ratio < 0 {
		return errors.New("block_size and ratio may not be negative")
	}
	if p.BlockSize == 0 && p.Ratio == 0 {
		return errors.New("block_size: set the ports per host (or ratio, the hosts per public address)")
	}
	n := p.normalized()
	if n.Ports.First == 0 {
		return errors.New("ports: port 0 cannot be used; start at 1 or above (1024 reserves the well-known ports)")
	}
	if n.BlockSize < 2 || n.BlockSize > n.Ports.Len() {
		// nft 1.0.6 lists a one-port block in a way it cannot read back.
		return fmt.Errorf("block_size: %d ports per host: want 2 to %d (ports %s)", n.BlockSize, n.Ports.Len(), n.Ports)
	}
	if n.Ratio < 1 || n.Ratio*n.BlockSize > n.Ports.Len() {
		return fmt.Errorf("ratio: %d hosts of %d ports each do not fit in ports %s (%d ports)", n.Ratio, n.BlockSize, n.Ports, n.Ports.Len())
	}
	return nil
}

// ParsePolicy reads a policy from JSON (as MarshalJSON writes it, or the
// "policy" member of a plan) and validates it. Unknown keys are errors.
func ParsePolicy(data []byte) (Policy, error) {
	var probe map[string]json.RawMessage
	if err := json.Unmarshal(data, &probe); err != nil {
		return Policy{}, fmt.Errorf("policy: %w", err)
	}
	if raw, ok := probe["policy"]; ok && probe["blocks"] != nil {
		data = raw // a whole plan
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	var p Policy
	if err := dec.Decode(&p); err != nil {
		return Policy{}, fmt.Errorf("policy: %w", err)
	}
	if dec.More() {
		return Policy{}, errors.New("policy: trailing data after the JSON object")
	}
	if err := p.Validate(); err != nil {
		return Policy{}, fmt.Errorf("policy: %w", err)
	}
	return p.normalized(), nil
}

// hosts returns the inside prefixes sorted, with the number of hosts each
// holds.
func (p Policy) hosts() ([]netip.Prefix, []uint64) {
	ps := slices.Clone(p.Inside)
	slices.SortFunc(ps, func(a, b netip.Prefix) int { return a.Addr().Compare(b.Addr()) })
	counts := make([]uint64, len(ps))
	for i, q := range ps {
		n := uint64(1) << (32 - q.Bits())
		if !p.IncludeBoundary && q.Bits() < 31 {
			n -= 2
		}
		counts[i] = n
	}
	return ps, counts
}

// skip is the number of addresses at the start of q that are not hosts.
func (p Policy) skip(q netip.Prefix) uint32 {
	if !p.IncludeBoundary && q.Bits() < 31 {
		return 1
	}
	return 0
}

// Hosts is the number of inside hosts the policy numbers.
func (p Policy) Hosts() uint64 {
	_, counts := p.hosts()
	var n uint64
	for _, c := range counts {
		n += c
	}
	return n
}

// Capacity is the number of hosts that get a deterministic block: public
// addresses times the ratio.
func (p Policy) Capacity() uint64 {
	n := p.normalized()
	return uint64(len(n.Public)) * uint64(n.Ratio)
}

// Deterministic is the number of inside hosts that get a block.
func (p Policy) Deterministic() uint64 { return min(p.Hosts(), p.Capacity()) }

// hostAt returns host number i (0-based).
func (p Policy) hostAt(i uint64) (netip.Addr, bool) {
	ps, counts := p.hosts()
	for j, q := range ps {
		if i < counts[j] {
			return addAddr(q.Addr(), uint32(i)+p.skip(q)), true
		}
		i -= counts[j]
	}
	return netip.Addr{}, false
}

// indexOf returns the number of host a.
func (p Policy) indexOf(a netip.Addr) (uint64, bool) {
	a = a.Unmap()
	ps, counts := p.hosts()
	var base uint64
	for j, q := range ps {
		if q.Contains(a) {
			off := u32(a) - u32(q.Addr())
			s := p.skip(q)
			if off < s || uint64(off-s) >= counts[j] {
				return 0, false
			}
			return base + uint64(off-s), true
		}
		base += counts[j]
	}
	return 0, false
}

func u32(a netip.Addr) uint32 {
	b := a.As4()
	return uint32(b[0])<<24 | uint32(b[1])<<16 | uint32(b[2])<<8 | uint32(b[3])
}

func addAddr(a netip.Addr, n uint32) netip.Addr {
	v := u32(a) + n
	return netip.AddrFrom4([4]byte{byte(v >> 24), byte(v >> 16), byte(v >> 8), byte(v)})
}

// Block is the public address and ports of one inside host.
type Block struct {
	Inside netip.Addr `json:"inside"`
	Public netip.Addr `json:"public"`
	Ports  PortRange  `json:"ports"`
}

// block computes host i's block; i < Capacity.
func (p Policy) block(i uint64) (addr int, r PortRange) {
	n := p.normalized()
	pub, ratio := uint64(len(n.Public)), uint64(n.Ratio)
	var b uint64
	if n.Assignment == Staggered {
		addr, b = int(i%pub), i/pub
	} else {
		addr, b = int(i/ratio), i%ratio
	}
	first := uint64(n.Ports.First) + b*uint64(n.BlockSize)
	return addr, PortRange{First: uint16(first), Last: uint16(first + uint64(n.BlockSize) - 1)}
}

// Forward returns the block of inside host a; ok is false when a is not an
// inside host or is beyond the deterministic capacity (not deterministic:
// its connections go through the operator's own masquerade).
func (p Policy) Forward(a netip.Addr) (Block, bool) {
	i, ok := p.indexOf(a)
	if !ok || i >= p.Capacity() {
		return Block{}, false
	}
	addr, r := p.block(i)
	return Block{Inside: a.Unmap(), Public: p.Public[addr], Ports: r}, true
}

// Plan returns the block of every deterministic host, in host order. Hosts
// past Capacity are not in it: NotDeterministic lists them.
func (p Policy) Plan() []Block {
	n := p.Deterministic()
	out := make([]Block, 0, n)
	for i := range n {
		h, _ := p.hostAt(i)
		addr, r := p.block(i)
		out = append(out, Block{Inside: h, Public: p.Public[addr], Ports: r})
	}
	return out
}

// HostRange is a run of consecutive inside hosts.
type HostRange struct {
	First netip.Addr `json:"first"`
	Last  netip.Addr `json:"last"`
	Hosts uint64     `json:"hosts"`
}

// NotDeterministic returns the inside hosts beyond the capacity, one range
// per inside prefix they fall in. They get no block: their connections fall
// back to the operator's masquerade, and Lookup cannot name them.
func (p Policy) NotDeterministic() []HostRange {
	cap_ := p.Capacity()
	ps, counts := p.hosts()
	var out []HostRange
	var base uint64
	for j, q := range ps {
		end := base + counts[j]
		if end > cap_ && counts[j] > 0 {
			from := max(cap_, base) - base
			out = append(out, HostRange{
				First: addAddr(q.Addr(), uint32(from)+p.skip(q)),
				Last:  addAddr(q.Addr(), uint32(counts[j]-1)+p.skip(q)),
				Hosts: counts[j] - from,
			})
		}
		base = end
	}
	return out
}

// Lookup answers which inside host used public address:port: ok is false
// when the address is not one of the policy's, the port is reserved or past
// the last block, or the block belongs to no host.
func (p Policy) Lookup(public netip.AddrPort) (inside netip.Addr, ok bool) {
	n := p.normalized()
	addr := slices.Index(n.Public, public.Addr().Unmap())
	port := public.Port()
	if addr < 0 || !n.Ports.Contains(port) {
		return netip.Addr{}, false
	}
	b := uint64(port-n.Ports.First) / uint64(n.BlockSize)
	if b >= uint64(n.Ratio) {
		return netip.Addr{}, false
	}
	var i uint64
	if n.Assignment == Staggered {
		i = b*uint64(len(n.Public)) + uint64(addr)
	} else {
		i = uint64(addr)*uint64(n.Ratio) + b
	}
	if i >= p.Deterministic() {
		return netip.Addr{}, false
	}
	return p.hostAt(i)
}

// PlanDoc is the published form of a policy: its parameters, the blocks and
// the hosts that are not deterministic.
type PlanDoc struct {
	Policy Policy `json:"policy"`
	// Log is the RFC 7422 §3 log record of the policy without its
	// timestamp (LogLine); LogError says why a policy has none.
	Log              string      `json:"rfc7422,omitempty"`
	LogError         string      `json:"rfc7422_error,omitempty"`
	Hosts            uint64      `json:"hosts"`
	Deterministic    uint64      `json:"deterministic"`
	Blocks           []Block     `json:"blocks"`
	NotDeterministic []HostRange `json:"not_deterministic"`
	Fallback         string      `json:"fallback"`
}

// Doc builds the published form of p (p must be valid).
func (p Policy) Doc() PlanDoc {
	n := p.normalized()
	nd := n.NotDeterministic()
	if nd == nil {
		nd = []HostRange{}
	}
	line, err := n.LogLine()
	var lerr string
	if err != nil {
		lerr = err.Error()
	}
	return PlanDoc{
		Policy:           n,
		Log:              line,
		LogError:         lerr,
		Hosts:            n.Hosts(),
		Deterministic:    n.Deterministic(),
		Blocks:           n.Plan(),
		NotDeterministic: nd,
		Fallback:         "masquerade",
	}
}

// PlanOn returns the blocks of p on the public addresses own, each one of
// p.Public; an empty own is every address (Plan). Several active NATs
// publish one policy, RFC 7422 §2's O being all their public addresses, and
// each translates only to its own: the boxes' blocks cannot overlap, and
// Lookup names the host behind a port of either. A host whose block lies on
// another box's address gets none here: crossing this box, it meets the
// operator's masquerade.
func (p Policy) PlanOn(own []netip.Addr) ([]Block, error) {
	all := p.Plan()
	if len(own) == 0 {
		return all, nil
	}
	for i, a := range own {
		if !slices.Contains(p.Public, a.Unmap()) {
			return nil, fmt.Errorf("public: %s is not one of the policy's public addresses %v", a, p.Public)
		}
		if slices.Contains(own[:i], a) {
			return nil, fmt.Errorf("public: %s listed twice", a)
		}
	}
	var out []Block
	for _, b := range all {
		if slices.Contains(own, b.Public) {
			out = append(out, b)
		}
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("public: no host has a block on %v", own)
	}
	return out, nil
}
