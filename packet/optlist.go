package packet

import "encoding/binary"

// RoundUp4 rounds an option list's length up to whole 32-bit words: the
// unit of the IPv4 IHL (RFC 791 §3.1) and of the TCP Data Offset (RFC 9293
// §3.1).
func RoundUp4(x int) int { return (x + 3) &^ 3 }

// OptionID reads the 2- or 4-byte ID that follows hdr bytes of the first
// option of the list opts (TCP, RFC 9293 §3.1, or IPv4, RFC 791 §3.1: the
// same kind-length form) of kind (exID != 0: an RFC 6994 experimental
// option, its 16-bit ExID checked too); not ok when the list ends (EOL) or
// turns malformed before one, or that option has another length. No
// function value and nothing of opts returned: opts does not escape.
func OptionID(opts []byte, kind byte, exID uint16, hdr int) (id uint32, idLen int, ok bool) {
	for i := 0; i < len(opts); {
		l := OptLen(opts, i)
		if l <= 0 {
			return 0, 0, false
		}
		o := opts[i : i+l]
		if o[0] != kind || exID != 0 && (len(o) < 4 || binary.BigEndian.Uint16(o[2:]) != exID) {
			i += l
			continue
		}
		switch l - hdr {
		case 2:
			return uint32(binary.BigEndian.Uint16(o[hdr:])), 2, true
		case 4:
			return binary.BigEndian.Uint32(o[hdr:]), 4, true
		}
		return 0, 0, false
	}
	return 0, 0, false
}
