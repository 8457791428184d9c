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
	// Kernel is the in-kernel path (kernel.go), nil when it is off: the
	// daemon sets it on the step Config.Step built.
	Kernel *Kernel
}

func (Step) Name() string        { return Name }
func (Step) Layer() method.Layer { return method.LayerIP }
func (s Step) Needs() method.Needs {
	return method.Needs{SYN: true, Track: s.Scope == ScopeNew, UDP: s.UDPPackets, IDBits: 16}
}

// Rewrite writes the IP-ID of an IPv4 SYN, of the segments the scope
// names, and of the first UDPPackets datagrams of a UDP flow. With the
// in-kernel path, a SYN whose IP-ID the kernel wrote is left alone, and
// the host of one it did not write is learned.
func (s Step) Rewrite(v *packet.View, buf []byte, p method.Packet) (packet.Result, int) {
	if v.Version != 4 {
		return method.Skip, 0
	}
	if v.Proto == packet.ProtoUDP {
		if p.UDPSeq > s.UDPPackets {
			return method.Skip, 0
		}
	} else if p.SYN && s.Kernel != nil && s.Kernel.wrote(v.IP4, p) {
		return method.Skip, 0
	} else if !(p.SYN || p.Tracked && s.Scope != ScopeSYN || s.Scope == ScopeAll) {
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
