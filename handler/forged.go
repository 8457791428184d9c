package handler

import (
	"github.com/natreveal/natreveal/method"
	"github.com/natreveal/natreveal/packet"
)

// Anti-spoofing (RFC 6967 §3: the server must not take an inside host's
// own claim for the NAT's): a packet from an inside host that natreveal
// could not mark must not leave carrying a HOST_ID the host forged. The
// steps whose carrier a host can fill say so (method.AntiSpoof); each
// removes its forged HOST_ID, or the packet is dropped and counted as
// refused.

// unmarked is the verdict v for the parsed packet in buf when the step a
// could not write its HOST_ID into it: v, with the new length when a
// removed a forged HOST_ID, or a drop (Refused).
func (h *Handler) unmarked(v Verdict, pv *packet.View, buf []byte, a method.AntiSpoof) Verdict {
	n, drop := a.Unmarked(pv, buf)
	if drop {
		h.stats.inc(Refused)
		return Verdict{Drop: true}
	}
	if n > 0 {
		v.Len = n
	}
	return v
}

// unmarkedSYN is unmarked by every enabled step that has anti-spoofing,
// for a segment no step saw, SYNs only (SYN without ACK, RST, FIN: the
// segment a server reads the HOST_ID from, RFC 7974 §4.1); other segments
// keep v.
func (h *Handler) unmarkedSYN(v Verdict, pv *packet.View, buf []byte) Verdict {
	f := pv.TCP.Flags & (packet.FlagSYN | packet.FlagACK | packet.FlagRST | packet.FlagFIN)
	if pv.Proto != packet.ProtoTCP || f != packet.FlagSYN {
		return v
	}
	for i := range h.steps {
		if a := h.steps[i].spoof; a != nil {
			if v = h.unmarked(v, pv, buf, a); v.Drop {
				return v
			}
		}
	}
	return v
}
