package ipid

import (
	"github.com/natreveal/natreveal/method"
	"github.com/natreveal/natreveal/packet"
)

// Step is ip-id's packet step: the HOST_ID's low 16 bits in the
// Identification field of atomic IPv4 datagrams (RFC 6864 §4.1).
type Step struct {
	Scope      string // ScopeSYN, ScopeNew or ScopeAll
	UDPPackets int    // first datagrams of each UDP flow that carry it
}

func (Step) Name() string        { return Name }
func (Step) Layer() method.Layer { return method.LayerIP }
func (s Step) Needs() method.Needs {
	return method.Needs{SYN: true, Track: s.Scope == ScopeNew, UDP: s.UDPPackets, IDBits: 16}
}

// Rewrite writes the IP-ID of an IPv4 SYN, of the segments the scope
// names, and of the first UDPPackets datagrams of a UDP flow. A SYN whose
// IP-ID the kernel wrote is left alone.
func (s Step) Rewrite(v *packet.View, buf []byte, p method.Packet) (packet.Result, int) {
	if v.Version != 4 {
		return method.Skip, 0
	}
	if v.Proto == packet.ProtoUDP {
		if p.UDPSeq > s.UDPPackets {
			return method.Skip, 0
		}
	} else if !(p.SYN || p.Tracked && s.Scope != ScopeSYN || s.Scope == ScopeAll) || p.SYN && p.KernelWrote {
		return method.Skip, 0
	}
	r := SetIPID(v, buf, uint16(p.ID))
	if r == packet.Written {
		return r, v.N
	}
	return r, 0
}

// PerSegment: scopes new and all write the IP-ID of later segments
// (method.PerSegment).
func (s Step) PerSegment() bool { return s.Scope != ScopeSYN }

// Step returns c's packet step.
func (c Config) Step() Step { return Step{Scope: c.Scope, UDPPackets: c.UDPPackets} }
