package tcpoption

import (
	"github.com/natreveal/natreveal/method"
	"github.com/natreveal/natreveal/packet"
)

// Step is tcp-option's packet step: the RFC 7974 option in the SYN and the
// client segments of the tracked phase (RFC 7974 §4.2), IPv4 and IPv6.
type Step struct {
	Length int // HOST_ID bytes: 2 or 4
}

func (Step) Name() string        { return Name }
func (Step) Layer() method.Layer { return method.LayerTransport }
func (s Step) Needs() method.Needs {
	return method.Needs{SYN: true, SYN6: true, Track: true, Track6: true, MSS: true, IDBits: 8 * s.Length}
}

// Rewrite adds the option (AddHostIDOption, AddHostIDOption6); forged ones
// are stripped even when ours does not fit.
func (s Step) Rewrite(v *packet.View, buf []byte, p method.Packet) (packet.Result, int) {
	if v.Proto != packet.ProtoTCP || !p.Tracked {
		return method.Skip, 0
	}
	var nl int
	var r packet.Result
	var stripped bool
	if v.Version == 6 {
		nl, r, stripped = AddHostIDOption6(v, buf, p.ID, s.Length, p.MTU)
	} else {
		nl, r, stripped = AddHostIDOption(v, buf, p.ID, s.Length, p.MTU)
	}
	if r == packet.Written || stripped {
		return r, nl
	}
	return r, 0
}

// Step returns c's packet step.
func (c Config) Step() Step { return Step{Length: c.Length} }
