package handler

import (
	"encoding/binary"

	"github.com/natreveal/natreveal/method/tcpoption"
	"github.com/natreveal/natreveal/packet"
)

// Anti-spoofing for the RFC 7974 option (RFC 6967 §3: the server must not
// take an inside host's own claim for the NAT's): a TCP segment from an
// inside host that natreveal cannot give its HOST_ID option (no HOST_ID
// for the host, no conntrack answer, an encoder that failed) must not
// leave carrying a HOST_ID option of any kind. It loses the option, or,
// where that cannot be done, it is dropped and counted as refused.

// unmarked is the verdict v for the parsed segment in buf when natreveal
// could not write its HOST_ID option into it: unchanged when tcp-option is
// off or no HOST_ID option may be present, the IPv4 segment without its
// HOST_ID options when they can be removed, else a drop (Refused).
func (h *Handler) unmarked(v Verdict, pv *packet.View, buf []byte) Verdict {
	if !h.tcpOpt || !hostIDMayBePresent(pv, buf) {
		return v
	}
	if pv.Version == 4 {
		if nl, r := tcpoption.StripHostIDOption(pv, buf); r == packet.Written && !hostIDMayBePresent(pv, buf) {
			v.Len = nl
			return v
		}
	}
	h.stats.inc(Refused)
	return Verdict{Drop: true}
}

// unmarkedSYN is unmarked for SYNs only (SYN without ACK, RST, FIN: the
// segment a server reads the option from, RFC 7974 §4.1); other segments
// keep v.
func (h *Handler) unmarkedSYN(v Verdict, pv *packet.View, buf []byte) Verdict {
	f := pv.TCP.Flags & (packet.FlagSYN | packet.FlagACK | packet.FlagRST | packet.FlagFIN)
	if pv.Proto != packet.ProtoTCP || f != packet.FlagSYN {
		return v
	}
	return h.unmarked(v, pv, buf)
}

// hostIDMayBePresent reports whether the option space of the parsed TCP
// header holds the start of a HOST_ID option of any length (kind 253,
// length >= 4, ExID 0x0348; RFC 7974 §3) at any byte offset: past EOL and past a
// malformed option too, where a lenient receiver might still read one.
func hostIDMayBePresent(pv *packet.View, buf []byte) bool {
	off, n := pv.TCPOptOff(), pv.TCPOptLen()
	if pv.TCP.HdrLen < packet.TCPMinHdr || pv.N > cap(buf) || off+n > pv.N {
		return false
	}
	opts := buf[off : off+n]
	for i := 0; i+4 <= len(opts); i++ {
		if opts[i] == tcpoption.HostIDKind && opts[i+1] >= 4 &&
			binary.BigEndian.Uint16(opts[i+2:]) == tcpoption.HostIDExID {
			return true
		}
	}
	return false
}
