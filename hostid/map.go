package hostid

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"net/netip"
	"sort"
	"strconv"
	"strings"
)

// Map assigns operator-chosen identifiers (subscriber IDs, VLAN IDs) by the
// longest matching inside prefix, else by the interface the packet came in
// on. File format, one entry per line, '#' starts a comment:
//
//	100.64.0.0/28   17      # every host of this prefix is subscriber 17
//	100.64.0.77     4242    # a single host (same as /32)
//	2001:db8:1::/64 17      # IPv6 prefixes too (the longest match wins per family)
//	2001:db8:1::9   4243    # a single IPv6 host (same as /128)
//	iface eth1.100  100     # hosts behind this interface
type Map struct {
	lens4  []int // IPv4 prefix lengths present, longest first
	lens6  []int // IPv6 prefix lengths present, longest first
	byPfx  map[netip.Prefix]uint32
	byIf   map[uint32]uint32
	bits   int
	maxVal uint64
}

// ParseMap reads a map file. Identifiers must fit in bits (16 or 32).
// Errors name the line and what is wrong with it, never its content: the
// file may be one the caller should not see (a map_file pointed at a
// secret), and the error reaches logs.
func ParseMap(data []byte, bits int, ifIndex func(string) (uint32, error)) (*Map, error) {
	if bits != 16 && bits != 32 {
		return nil, fmt.Errorf("map width must be 16 or 32 bits, got %d", bits)
	}
	m := &Map{byPfx: map[netip.Prefix]uint32{}, byIf: map[uint32]uint32{}, bits: bits, maxVal: 1<<bits - 1}
	seen := map[int]bool{} // prefix lengths; IPv6 ones + 1000
	sc := bufio.NewScanner(bytes.NewReader(data))
	for ln := 1; sc.Scan(); ln++ {
		line := sc.Text()
		if i := strings.IndexByte(line, '#'); i >= 0 {
			line = line[:i]
		}
		f := strings.Fields(line)
		if len(f) == 0 {
			continue
		}
		if err := m.addLine(f, seen, ifIndex); err != nil {
			return nil, fmt.Errorf("map line %d: %w", ln, err)
		}
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("map: %w", err)
	}
	if len(m.byPfx) == 0 && len(m.byIf) == 0 {
		return nil, fmt.Errorf("map has no entries")
	}
	for l := range seen {
		if l >= 1000 {
			m.lens6 = append(m.lens6, l-1000)
		} else {
			m.lens4 = append(m.lens4, l)
		}
	}
	sort.Sort(sort.Reverse(sort.IntSlice(m.lens4)))
	sort.Sort(sort.Reverse(sort.IntSlice(m.lens6)))
	return m, nil
}

func (m *Map) addLine(f []string, seen map[int]bool, ifIndex func(string) (uint32, error)) error {
	if f[0] == "iface" {
		if len(f) != 3 {
			return fmt.Errorf("want \"iface NAME ID\", got %d fields", len(f))
		}
		id, err := m.parseID(f[2])
		if err != nil {
			return err
		}
		if ifIndex == nil {
			return errors.New("interface: no interface resolver")
		}
		idx, err := ifIndex(f[1])
		if err != nil {
			return fmt.Errorf("interface: %w", err)
		}
		m.byIf[idx] = id
		return nil
	}
	if len(f) != 2 {
		return fmt.Errorf("want \"PREFIX ID\", got %d fields", len(f))
	}
	p, err := parsePrefix(f[0])
	if err != nil {
		return err
	}
	id, err := m.parseID(f[1])
	if err != nil {
		return err
	}
	if _, dup := m.byPfx[p]; dup {
		return errors.New("prefix listed twice")
	}
	m.byPfx[p] = id
	if p.Addr().Is4() {
		seen[p.Bits()] = true
	} else {
		seen[1000+p.Bits()] = true
	}
	return nil
}

func parsePrefix(s string) (p netip.Prefix, err error) {
	defer func() {
		if err == nil && (p.Addr().Is4In6() || p.Addr().Zone() != "") {
			p, err = netip.Prefix{}, errors.New("prefix: write IPv4 as IPv4, IPv6 without a zone")
		}
	}()
	if !strings.Contains(s, "/") {
		a, err := netip.ParseAddr(s)
		if err != nil {
			return netip.Prefix{}, errors.New("bad address in the first field")
		}
		return netip.PrefixFrom(a, a.BitLen()), nil
	}
	p, err = netip.ParsePrefix(s)
	if err != nil {
		return netip.Prefix{}, errors.New("bad prefix in the first field")
	}
	if p.Masked() != p {
		return netip.Prefix{}, errors.New("prefix has host bits set")
	}
	return p, nil
}

func (m *Map) parseID(s string) (uint32, error) {
	v, err := strconv.ParseUint(s, 0, 64)
	if err != nil {
		return 0, errors.New("bad identifier: want a decimal, 0x hex or 0o octal number")
	}
	if v > m.maxVal {
		return 0, fmt.Errorf("identifier does not fit in %d bits", m.bits)
	}
	return uint32(v), nil
}

// HostID looks up the longest prefix of src's family containing src, then
// inIf.
func (m *Map) HostID(src netip.Addr, inIf uint32) (uint32, bool) {
	lens := m.lens4
	if !src.Is4() {
		lens = m.lens6
	}
	for _, l := range lens {
		p, err := src.Prefix(l)
		if err != nil {
			continue
		}
		if id, ok := m.byPfx[p]; ok {
			return id, true
		}
	}
	if inIf != 0 {
		if id, ok := m.byIf[inIf]; ok {
			return id, true
		}
	}
	return 0, false
}

func (m *Map) Bits() int { return m.bits }
