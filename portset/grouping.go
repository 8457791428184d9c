package portset

import (
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"math/bits"
)

// Grouping is the server side of draft-boucadair-intarea-nat-reveal-analysis §3.6.1, for when the operator publishes
// no policy: the source ports seen from one public address are grouped into
// port sets, each presumed to be one inside host, so that a misbehaving host
// can be handled (rate-limited, blocked) without punishing every host behind
// the address. Sets are either contiguous port ranges of a configurable width
// or, with a key, a keyed random partition of the port space into sets of
// that width. A set can be narrowed (split in two) when the misbehaviour goes
// on, which spares the innocent hosts it held, or widened (merged with its
// neighbour) when it stopped, as the analysis describes.
//
// Internally every port has a position: itself for contiguous sets, a keyed
// pseudo-random permutation of it otherwise. Sets are aligned power-of-two
// runs of positions (a buddy system), so narrowing and widening keep them a
// partition. One Grouping serves one public address; it is not safe for
// concurrent use.
type Grouping struct {
	keyed bool
	keys  [4][8]byte   // Feistel round keys (keyed only)
	lw    [65536]uint8 // log2 of the width of the set holding each position
}

// NewGrouping returns a grouping whose sets hold width ports each; width is
// a power of two, 1..65536. A nil key groups contiguous port ranges
// ([0,width), [width,2*width), ...); a key (any length, at least 16 bytes
// recommended) selects a keyed random partition.
func NewGrouping(width int, key []byte) (*Grouping, error) {
	if width < 1 || width > 65536 || width&(width-1) != 0 {
		return nil, fmt.Errorf("grouping: width %d is not a power of two from 1 to 65536", width)
	}
	g := &Grouping{}
	lw := uint8(bits.TrailingZeros(uint(width)))
	for i := range g.lw {
		g.lw[i] = lw
	}
	if key != nil {
		g.keyed = true
		for r := range g.keys {
			h := sha256.Sum256(append([]byte{byte(r)}, key...))
			copy(g.keys[r][:], h[:8])
		}
	}
	return g, nil
}

// round is the Feistel round function: 8 bits from the round key and the
// right half.
func (g *Grouping) round(r int, half uint8) uint8 {
	k := g.keys[r]
	h := sha256.Sum256([]byte{k[0], k[1], k[2], k[3], k[4], k[5], k[6], k[7], half})
	return h[0]
}

// position is the place of port in the set order: a 4-round Feistel
// permutation of the 16 bits when keyed (a bijection whatever the round
// function), the port itself otherwise.
func (g *Grouping) position(port uint16) uint16 {
	if !g.keyed {
		return port
	}
	l, r := uint8(port>>8), uint8(port)
	for i := range g.keys {
		l, r = r, l^g.round(i, r)
	}
	return uint16(l)<<8 | uint16(r)
}

// port is the inverse of position.
func (g *Grouping) port(pos uint16) uint16 {
	if !g.keyed {
		return pos
	}
	l, r := uint8(pos>>8), uint8(pos)
	for i := len(g.keys) - 1; i >= 0; i-- {
		l, r = r^g.round(i, l), l
	}
	return uint16(l)<<8 | uint16(r)
}

// Set identifies one port set: the first position of its run and its width.
// For a contiguous grouping, First is the first port.
type Set struct {
	First uint16 `json:"first"`
	Width int    `json:"width"`
}

func (s Set) String() string { return fmt.Sprintf("%d+%d", s.First, s.Width) }

// SetOf returns the set that holds port.
func (g *Grouping) SetOf(port uint16) Set {
	pos := g.position(port)
	w := 1 << g.lw[pos]
	return Set{First: uint16(int(pos) &^ (w - 1)), Width: w}
}

// Ports lists the ports of s, ascending for a contiguous grouping.
func (g *Grouping) Ports(s Set) []uint16 {
	out := make([]uint16, 0, s.Width)
	for i := range s.Width {
		out = append(out, g.port(s.First+uint16(i)))
	}
	return out
}

// Narrow halves the set holding port (the analysis, §3.6.1: "reduce ... the width of
// the ports set of the misbehaving" host); a set of one port stays. It
// returns the new set of port.
func (g *Grouping) Narrow(port uint16) Set {
	s := g.SetOf(port)
	if s.Width > 1 {
		g.fill(s.First, s.Width, g.lw[g.position(port)]-1)
	}
	return g.SetOf(port)
}

// Widen doubles the set holding port, merging it with its aligned neighbour
// (whatever that neighbour was split into); the whole port space is the
// widest set. It returns the new set of port.
func (g *Grouping) Widen(port uint16) Set {
	s := g.SetOf(port)
	if s.Width < 65536 {
		w := s.Width * 2
		g.fill(uint16(int(s.First)&^(w-1)), w, g.lw[g.position(port)]+1)
	}
	return g.SetOf(port)
}

func (g *Grouping) fill(first uint16, width int, lw uint8) {
	for i := range width {
		g.lw[int(first)+i] = lw
	}
}

// TraceStats measures a grouping against the truth of a synthetic trace.
type TraceStats struct {
	Hosts  int     // hosts with at least one connection
	Shared float64 // fraction of those hosts that share a set with another host
	Split  float64 // fraction of hosts with two or more connections whose ports span more than one set
}

// Conn is one connection of a trace: the inside host (the truth) and the
// public source port the NAT gave it.
type Conn struct {
	Host int
	Port uint16
}

// Measure groups the ports of trace with g and compares the sets with the
// hosts that really used them.
func Measure(g *Grouping, trace []Conn) TraceStats {
	hostsOfSet := map[Set]map[int]bool{}
	setsOfHost := map[int]map[Set]bool{}
	conns := map[int]int{}
	for _, c := range trace {
		s := g.SetOf(c.Port)
		if hostsOfSet[s] == nil {
			hostsOfSet[s] = map[int]bool{}
		}
		hostsOfSet[s][c.Host] = true
		if setsOfHost[c.Host] == nil {
			setsOfHost[c.Host] = map[Set]bool{}
		}
		setsOfHost[c.Host][s] = true
		conns[c.Host]++
	}
	var st TraceStats
	st.Hosts = len(setsOfHost)
	shared, split, multi := 0, 0, 0
	for h, sets := range setsOfHost {
		for s := range sets {
			if len(hostsOfSet[s]) > 1 {
				shared++
				break
			}
		}
		if conns[h] > 1 {
			multi++
			if len(sets) > 1 {
				split++
			}
		}
	}
	if st.Hosts > 0 {
		st.Shared = float64(shared) / float64(st.Hosts)
	}
	if multi > 0 {
		st.Split = float64(split) / float64(multi)
	}
	return st
}

// Rand is a small deterministic generator (SplitMix64) for synthetic traces.
type Rand struct{ s uint64 }

// NewRand seeds a generator.
func NewRand(seed uint64) *Rand { return &Rand{s: seed} }

// Uint64 returns the next value.
func (r *Rand) Uint64() uint64 {
	r.s += 0x9e3779b97f4a7c15
	z := r.s
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9
	z = (z ^ (z >> 27)) * 0x94d049bb133111eb
	return z ^ (z >> 31)
}

// Intn returns a value in [0, n).
func (r *Rand) Intn(n int) int { return int(r.Uint64() % uint64(n)) }

// keyFromUint64 is a convenience for tests and tools: 16 key bytes.
func keyFromUint64(v uint64) []byte {
	return binary.BigEndian.AppendUint64(binary.BigEndian.AppendUint64(nil, v), ^v)
}
