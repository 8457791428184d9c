package ipoption

import (
	"encoding/binary"

	"github.com/natreveal/natreveal/packet"
)

// IPv4 option types that may carry the HOST_ID. RFC 791 §3.1: the type
// octet is copied flag (1 bit) | class (2 bits) | number (5 bits); "copied"
// means a router that fragments the datagram copies the option into every
// fragment, otherwise only the first fragment has it (RFC 791 §3.2: the
// reassembled datagram takes the first fragment's header, so either kind
// reaches the receiver). Class 0 is control, 2 debugging and measurement.
// RFC 4727 §2.1 reserves number 30 for RFC 3692-style experiments with
// these four type values. natreveal uses IPOptionExp (30) unless configured.
const (
	IPOptionExp             = 0x1e // 30: not copied, class 0; the default
	IPOptionExpClass2       = 0x5e // 94: not copied, class 2
	IPOptionExpCopied       = 0x9e // 158: copied, class 0
	IPOptionExpCopiedClass2 = 0xde // 222: copied, class 2

	MaxIPOptions     = 40 // RFC 791 §3.1: IHL <= 15 words, 5 of them fixed
	ipOptionMaxSpace = 6  // our option: type, length, 4-byte HOST_ID
	optNOP           = 1  // RFC 791 §3.1: No Operation
)

// IPOptionTypeValid reports whether t is one of the four RFC 4727 §2.1
// experimental option types.
func IPOptionTypeValid(t byte) bool {
	switch t {
	case IPOptionExp, IPOptionExpClass2, IPOptionExpCopied, IPOptionExpCopiedClass2:
		return true
	}
	return false
}

// encodeIPOption writes our option (type, length 2+idLen, HOST_ID big
// endian; RFC 791 §3.1 option format "case 2") and returns its length.
func encodeIPOption(o *[ipOptionMaxSpace]byte, optType byte, id uint32, idLen int) int {
	o[0] = optType
	o[1] = byte(2 + idLen)
	if idLen == 2 {
		binary.BigEndian.PutUint16(o[2:], uint16(id))
	} else {
		binary.BigEndian.PutUint32(o[2:], id)
	}
	return 2 + idLen
}

// AddIPOption rewrites the IPv4 datagram buf[:v.N], parsed as v (any upper
// protocol), in place so that its header carries exactly one option of type optType,
// ours: id in idLen (2 or 4) bytes, big endian (a 2-byte id keeps the low
// 16 bits). Options of any of the four RFC 4727 experimental types already
// present are removed first (anti-spoofing: the inside host must not choose
// its own HOST_ID, under optType or a type a server may be configured to
// read instead). The
// other options keep their order; NOPs that only padded before a removed
// option or at the end are dropped, ours is appended and the list is padded
// with EOL (zero) octets to a 32-bit boundary (RFC 791 §3.1 "Padding").
// Bytes after EOL are not kept. The payload moves by a multiple of 4 bytes
// and is not modified: TCP and UDP checksums cover a pseudo-header of
// addresses, protocol and upper-layer length, none of which changes
// (RFC 9293 §3.1, RFC 768), so they stay valid.
//
// Results: Written (newLen is the new Total Length); Unchanged when exactly
// one option of type optType, equal to ours, is already there;
// NoOptionSpace when the options would exceed 40 bytes; OverMTU when the
// datagram would exceed mtu (mtu <= 0: only the 65535 limit) and
// NoBufferRoom when it would exceed cap(buf). On those three, received
// options of type optType are still removed and stripped is true when that
// changed the packet (newLen never grows then; a 2-byte forged option may
// leave it the same, as padding); otherwise the packet is untouched. Truncated, BadHeader (also: optType not valid, idLen not 2 or
// 4) and Fragment (MF or offset set: only whole datagrams are rewritten)
// leave it untouched too.
//
// The header checksum is updated incrementally (RFC 1624). Whenever the
// packet changes, v is updated to match it (packet.View.ResizeIPv4Header).
func AddIPOption(v *packet.View, buf []byte, optType byte, id uint32, idLen int, mtu int) (newLen int, res packet.Result, stripped bool) {
	return rewriteIPOption(v, buf, optType, id, idLen, mtu, true)
}

// StripIPOption removes every option of an RFC 4727 experimental type
// (optType must be one) from the IPv4 header
// of buf[:v.N] (the header shrinks, same rebuild as AddIPOption). Unchanged
// when there is none; results as for AddIPOption otherwise.
func StripIPOption(v *packet.View, buf []byte, optType byte) (newLen int, res packet.Result) {
	newLen, res, _ = rewriteIPOption(v, buf, optType, 0, 0, 0, false)
	return newLen, res
}

// rewriteIPOption rebuilds the option list of buf[:v.N]; add appends ours.
func rewriteIPOption(v *packet.View, buf []byte, optType byte, id uint32, idLen, mtu int, add bool) (int, packet.Result, bool) {
	n := v.N
	if n < 0 || n > cap(buf) {
		return n, packet.Truncated, false
	}
	if !IPOptionTypeValid(optType) || add && idLen != 2 && idLen != 4 {
		return n, packet.BadHeader, false
	}
	if res := v.Res4(); res != packet.Unchanged {
		return n, res, false
	}
	pkt := buf[:n]
	ip := v.IP4
	if ip.IsFragment() {
		return n, packet.Fragment, false
	}
	opts := pkt[packet.IPv4MinHdr:ip.HdrLen]

	var ours [ipOptionMaxSpace]byte
	oursLen := 0
	if add {
		oursLen = encodeIPOption(&ours, optType, id, idLen)
	}

	// Copy the list without options of type optType, up to EOL. The
	// encoding (EOL, NOP, type-length-value) is RFC 791 §3.1's, which
	// TCP's optLen shares. kept never holds more than len(opts) <= 40.
	var kept [MaxIPOptions]byte
	w, last := 0, 0 // last: w after the last option that is not a NOP
	found, lastSame := 0, false
	for i := 0; i < len(opts); {
		l := packet.OptLen(opts, i)
		if l == 0 {
			break
		}
		if l < 0 {
			return n, packet.BadHeader, false
		}
		o := opts[i : i+l]
		i += l
		if IPOptionTypeValid(o[0]) { // every RFC 4727 type, not only optType: a server may read any
			found++
			lastSame = add && string(o) == string(ours[:oursLen])
			w = last // drop the NOPs that aligned it
			continue
		}
		w += copy(kept[w:], o)
		if o[0] != optNOP {
			last = w
		}
	}
	if !add && found == 0 || add && found == 1 && lastSame {
		return n, packet.Unchanged, false
	}
	w = last // trailing NOPs were padding; we pad again
	stripped := found > 0

	res := packet.Written
	if add && packet.RoundUp4(w+oursLen) > MaxIPOptions {
		res, oursLen = packet.NoOptionSpace, 0
		if !stripped {
			return n, res, false
		}
	}
	newLen, wr := writeIPOptions(buf, n, ip, kept[:w], ours[:oursLen], mtu)
	if wr == packet.Written {
		v.ResizeIPv4Header(newLen)
		return newLen, res, stripped
	}
	// OverMTU or NoBufferRoom: still remove received options (never grows).
	if stripped {
		if newLen, r := writeIPOptions(buf, n, ip, kept[:w], nil, 0); r == packet.Written {
			v.ResizeIPv4Header(newLen)
			return newLen, wr, true
		}
	}
	return n, wr, false
}

// writeIPOptions replaces the option list of the parsed datagram with kept,
// then ours, then EOL padding, moves the payload, and updates IHL, Total
// Length and the header checksum (RFC 791 §3.1, RFC 1624).
func writeIPOptions(buf []byte, n int, ip packet.IPv4, kept, ours []byte, mtu int) (int, packet.Result) {
	newOpt := packet.RoundUp4(len(kept) + len(ours))
	delta := newOpt - (ip.HdrLen - packet.IPv4MinHdr) // a multiple of 4
	newTotal := ip.TotalLen + delta
	if delta > 0 {
		if newTotal > 0xffff || (mtu > 0 && newTotal > mtu) {
			return n, packet.OverMTU
		}
		if newTotal > cap(buf) {
			return n, packet.NoBufferRoom
		}
	}
	b := buf[:max(ip.TotalLen, newTotal)]

	// Old contributions to the header checksum: version/IHL/TOS, Total
	// Length, the options. Taken before the move overwrites them.
	oldSum := packet.Sum(b[0:4], packet.Sum(b[packet.IPv4MinHdr:ip.HdrLen], 0))

	// Move the payload (memmove); it keeps its bytes and its checksum.
	copy(b[packet.IPv4MinHdr+newOpt:], b[ip.HdrLen:ip.TotalLen])

	o := b[packet.IPv4MinHdr : packet.IPv4MinHdr+newOpt]
	k := copy(o, kept)
	k += copy(o[k:], ours)
	clear(o[k:]) // EOL, then zero padding (RFC 791 §3.1)
	b[0] = b[0]&0xf0 | byte((packet.IPv4MinHdr+newOpt)/4)
	binary.BigEndian.PutUint16(b[2:], uint16(newTotal))
	newSum := packet.Sum(b[0:4], packet.Sum(o, 0))

	// RFC 1624 eqn 3 over several words: HC' = ~(~HC + ~m + m').
	hc := binary.BigEndian.Uint16(b[10:12])
	binary.BigEndian.PutUint16(b[10:], packet.AdjustSum(hc, oldSum, newSum))
	return newTotal, packet.Written
}

// IPOptionHostID decodes the first option of type optType in the IPv4
// header at the start of pkt: length 4 gives a 2-byte HOST_ID, length 6 a
// 4-byte one. ok is false when it is absent (options end at EOL), has
// another length, when the list is malformed before it, or when optType is
// not valid. Only the header must be present (a capture cut after it will
// do), and fragments are read too: a first fragment, or any fragment for a
// copied type, carries the option, which lets callers spot a forged one in
// a fragment that AddIPOption refuses to rewrite.
func IPOptionHostID(pkt []byte, optType byte) (id uint32, idLen int, ok bool) {
	if len(pkt) < packet.IPv4MinHdr || pkt[0]>>4 != 4 {
		return 0, 0, false
	}
	hl := int(pkt[0]&0x0f) * 4
	if hl < packet.IPv4MinHdr || hl > len(pkt) {
		return 0, 0, false
	}
	return HostIDFromIPOptions(pkt[packet.IPv4MinHdr:hl], optType)
}

// HostIDFromIPOptions does the same as IPOptionHostID from the option bytes
// alone (the header past its 20 fixed bytes).
func HostIDFromIPOptions(opts []byte, optType byte) (id uint32, idLen int, ok bool) {
	if !IPOptionTypeValid(optType) {
		return 0, 0, false
	}
	return packet.OptionID(opts, optType, 0, 2) // type, length
}
