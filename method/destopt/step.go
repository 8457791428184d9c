package destopt

import (
	"github.com/natreveal/natreveal/method"
	"github.com/natreveal/natreveal/packet"
)

// Step is dest-opt's packet step: the HOST_ID in a Destination Option of
// the IPv6 SYN and of the first UDPPackets datagrams of each IPv6 UDP flow.
type Step struct{ c Config }

// Step returns c's packet step.
func (c Config) Step() Step { return Step{c} }

func (Step) Name() string          { return Name }
func (Step) Layer() method.Layer   { return method.LayerIP }
func (s Step) Needs() method.Needs { return s.c.Needs() }

// Rewrite adds the option (AddDestOpt); a forged one is stripped even when
// ours does not fit.
func (s Step) Rewrite(v *packet.View, buf []byte, p method.Packet) (packet.Result, int) {
	if v.Version != 6 || v.Proto == packet.ProtoUDP && p.UDPSeq > s.c.UDPPackets ||
		v.Proto != packet.ProtoUDP && !p.SYN {
		return method.Skip, 0
	}
	nl, r, stripped := AddDestOpt(v, buf, s.c.Type, p.ID, s.c.Length, p.MTU)
	if r == packet.Written || stripped {
		return r, nl
	}
	return r, 0
}
