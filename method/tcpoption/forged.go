package tcpoption

import (
	"encoding/binary"

	"github.com/natreveal/natreveal/method"
	"github.com/natreveal/natreveal/packet"
)

// Anti-spoofing for the RFC 7974 option (RFC 6967 §3: the server must not
// take an inside host's own claim for the NAT's): a TCP segment from an
// inside host that natreveal cannot give its HOST_ID option (no HOST_ID
// for the host, no conntrack answer, an encoder that failed) must not
// leave carrying a HOST_ID option of any kind. It loses the option, or,
// where that cannot be done, it is dropped and counted as refused.

var _ method.AntiSpoof = Step{}

// Unmarked implements method.AntiSpoof: the segment is unchanged when no
// HOST_ID option may be present, an IPv4 segment loses its HOST_ID options
// when they can be removed, anything else is dropped (IPv6: no strip).
func (Step) Unmarked(v *packet.View, buf []byte) (n int, drop bool) {
	if !hostIDMayBePresent(v, buf) {
		return 0, false
	}
	if v.Version == 4 {
		if nl, r := StripHostIDOption(v, buf); r == packet.Written && !hostIDMayBePresent(v, buf) {
			return nl, false
		}
	}
	return 0, true
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
		if opts[i] == HostIDKind && opts[i+1] >= 4 &&
			binary.BigEndian.Uint16(opts[i+2:]) == HostIDExID {
			return true
		}
	}
	return false
}
