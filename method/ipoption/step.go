package ipoption

import (
	"github.com/natreveal/natreveal/method"
	"github.com/natreveal/natreveal/packet"
)

// Step is ip-option's packet step: the HOST_ID in an IPv4 option of the
// SYN and of the first UDPPackets datagrams of each UDP flow.
type Step struct {
	Type       byte // RFC 4727 §2.5 experimental option type
	Length     int  // HOST_ID bytes: 2 or 4
	UDPPackets int  // first datagrams of each UDP flow that carry it
}

func (Step) Name() string        { return Name }
func (Step) Layer() method.Layer { return method.LayerIP }
func (s Step) Needs() method.Needs {
	return method.Needs{SYN: true, UDP: s.UDPPackets, IDBits: 8 * s.Length}
}

// Rewrite adds the option (AddIPOption); a forged one is stripped
// even when ours does not fit.
func (s Step) Rewrite(v *packet.View, buf []byte, p method.Packet) (packet.Result, int) {
	if v.Version != 4 || v.Proto == packet.ProtoUDP && p.UDPSeq > s.UDPPackets ||
		v.Proto != packet.ProtoUDP && !p.SYN {
		return method.Skip, 0
	}
	nl, r, stripped := AddIPOption(v, buf, s.Type, p.ID, s.Length, p.MTU)
	if r == packet.Written || stripped {
		return r, nl
	}
	return r, 0
}

// Step returns c's packet step.
func (c Config) Step() Step {
	return Step{Type: c.Type, Length: c.Length, UDPPackets: c.UDPPackets}
}
