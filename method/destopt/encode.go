package destopt

import (
	"encoding/binary"

	"github.com/natreveal/natreveal/packet"
)

// DestOptType is the default option type of the HOST_ID Destination Option:
// 0x1E, the first of the RFC 4727 §2.3 experimental values (0x1E, 0x3E, ...,
// 0xFE: low five bits 11110). Its top bits (RFC 8200 §4.2) are act = 00,
// "skip over this option" for a destination that does not know it, and
// chg = 0, the data does not change en route. The other act values make
// such a destination discard the packet; chg = 1 would exclude the option
// from an AH ICV (RFC 4302 §3.3.3.1.2.2).
const DestOptType = 0x1E

const (
	optPad1        = 0    // RFC 8200 §4.2
	optPadN        = 1    // RFC 8200 §4.2
	maxExtHdrLen   = 2048 // (255 + 1) * 8: Hdr Ext Len is one byte (RFC 8200 §4.6)
	maxDestOpts    = 8    // non-padding options a receiver keeps; see AddDestOpt
	destOptMaxSize = 6    // our option: type, length, 4-byte HOST_ID
)

// IsDestOptType reports whether t is one of the RFC 4727 experimental
// option types (0x1E, 0x3E, 0x5E, 0x7E, 0x9E, 0xBE, 0xDE, 0xFE).
func IsDestOptType(t byte) bool { return t&0x1f == 0x1e }

// encodeDestOpt writes our option (type, Opt Data Len, HOST_ID big endian;
// RFC 8200 §4.2 TLV) and returns its length.
func encodeDestOpt(o *[destOptMaxSize]byte, optType byte, id uint32, idLen int) int {
	o[0], o[1] = optType, byte(idLen)
	if idLen == 2 {
		binary.BigEndian.PutUint16(o[2:], uint16(id))
	} else {
		binary.BigEndian.PutUint32(o[2:], id)
	}
	return 2 + idLen
}

// padOpts fills b with Pad1 or one PadN of zero bytes (RFC 8200 §4.2).
func padOpts(b []byte) {
	switch len(b) {
	case 0:
	case 1:
		b[0] = optPad1
	default:
		b[0], b[1] = optPadN, byte(len(b)-2)
		clear(b[2:])
	}
}

// destLayout describes a rebuilt Destination Options header.
type destLayout struct {
	len   int  // header length, a multiple of 8; 0 when no option is left
	found int  // options of optType removed
	same  bool // one of them equals ours
	kept  int  // other options kept (padding not counted)
}

// layoutDestOpts walks the options of the Destination Options header h[:hl]
// (RFC 8200 §4.2) and lays out its new content: the options other than
// optType in their order, each at its old offset modulo 8 so that any
// alignment requirement xn+y still holds (x <= 8), then ours at 4n+2 (4-byte
// HOST_ID) or 2n (2-byte), then padding to a multiple of 8 (§4.6). The old
// padding is dropped and every new padding run is shorter than 8 bytes: RFC
// 8504 §5.3 lets hosts drop packets with more, and Linux does, as it does a
// PadN with non-zero data.
//
// With write false it only measures. With write true it writes the new
// header into h (which must hold the new length) and sets Hdr Ext Len; kept
// options never move right, so writing in place is safe. BadHeader when an
// option overruns the header.
func layoutDestOpts(h []byte, hl int, optType byte, ours []byte, write bool) (destLayout, packet.Result) {
	var lay destLayout
	w := 2 // after Next Header and Hdr Ext Len
	for i := 2; i < hl; {
		o, l := i, optLen(h, i, hl)
		if l < 0 {
			return lay, packet.BadHeader
		}
		i += l
		switch h[o] {
		case optPad1, optPadN:
			continue
		case optType:
			lay.found++
			lay.same = lay.same || string(h[o:o+l]) == string(ours)
			continue
		}
		q := w + (o-w)&7 // the first q >= w with q = o (mod 8); w <= o
		if write {
			padOpts(h[w:q])
			copy(h[q:], h[o:o+l])
		}
		w = q + l
		lay.kept++
	}
	if len(ours) > 0 {
		q := w + w&1 // 2n
		if len(ours) == destOptMaxSize {
			q = w + (2-w)&3 // 4n+2
		}
		if write {
			padOpts(h[w:q])
			copy(h[q:], ours)
		}
		w = q + len(ours)
	}
	if lay.kept > 0 || len(ours) > 0 {
		lay.len = (w + 7) &^ 7
	}
	if write && lay.len > 0 {
		padOpts(h[w:lay.len])
		h[1] = byte(lay.len/8 - 1)
	}
	return lay, packet.Unchanged
}

// AddDestOpt writes the HOST_ID into the IPv6 packet buf[:v.N], parsed as
// v, as a
// Destination Option of type optType (an IsDestOptType value, normally
// DestOptType) whose data is id in idLen (2 or 4) bytes, big endian.
//
// When a final Destination Options header exists (the one right before the
// upper-layer header, RFC 8200 §4.1), options of optType already in it are
// removed (anti-spoofing) and ours is added, the header re-laid out as
// layoutDestOpts says. Otherwise a new 8-byte header is inserted right
// before the upper-layer header and the previous Next Header field names it.
// The Payload Length changes; upper-layer checksums do not (their
// pseudo-header length excludes extension headers, RFC 8200 §8.1). Any upper
// layer qualifies.
//
// Results: Written; Unchanged when exactly one option of optType, equal to
// ours, is there; NoOptionSpace when the header would exceed 2048 bytes or
// hold more than 8 options (Linux's default net.ipv6.conf.*.max_dst_opts_number;
// RFC 8504 §5.3 allows such limits); OverMTU (mtu <= 0: only the 65535-byte
// Payload Length limit) and NoBufferRoom (cap(buf)). On those three, received
// options of optType are still removed, stripped is true when that changed
// the packet (a header left with no option is removed), else the packet is
// untouched. Fragment (any Fragment header), NotTCP (an AH is present: its
// ICV covers the Payload Length and the headers after it, RFC 4302
// §3.3.3), Truncated and BadHeader (also for a bad optType or idLen, or a
// malformed final Destination Options header) leave it untouched. Whenever
// the packet changes, v is updated to match it.
func AddDestOpt(v *packet.View, buf []byte, optType byte, id uint32, idLen int, mtu int) (newLen int, res packet.Result, stripped bool) {
	return rewriteDestOpt(v, buf, optType, id, idLen, mtu, true)
}

// StripDestOpt removes every option of optType from the final Destination
// Options header of buf[:v.N], and the header itself when no other option
// is left. Unchanged when there is none; other results as for AddDestOpt.
func StripDestOpt(v *packet.View, buf []byte, optType byte) (newLen int, res packet.Result) {
	newLen, res, _ = rewriteDestOpt(v, buf, optType, 0, 0, 0, false)
	return newLen, res
}

func rewriteDestOpt(v *packet.View, buf []byte, optType byte, id uint32, idLen, mtu int, add bool) (int, packet.Result, bool) {
	n := v.N
	if n < 0 || n > cap(buf) {
		return n, packet.Truncated, false
	}
	if !IsDestOptType(optType) || (add && idLen != 2 && idLen != 4) {
		return n, packet.BadHeader, false
	}
	if res := v.Res6(); res != packet.Unchanged {
		return n, res, false
	}
	pkt := buf[:n]
	ip := &v.IP6
	if ip.Frag {
		return n, packet.Fragment, false
	}
	if ip.AH {
		return n, packet.NotTCP, false
	}
	var ours [destOptMaxSize]byte
	oursLen := 0
	if add {
		oursLen = encodeDestOpt(&ours, optType, id, idLen)
	}

	if ip.DestOff == 0 {
		if !add {
			return n, packet.Unchanged, false
		}
		// A new header: ours at offset 2 is 4n+2 and 2n aligned.
		var h [8]byte
		h[0] = ip.Proto
		copy(h[2:], ours[:oursLen])
		padOpts(h[2+oursLen:])
		newTotal := ip.TotalLen + len(h)
		if r := growOK(buf, newTotal, mtu); r != packet.Written {
			return n, r, false
		}
		b := buf[:newTotal]
		copy(b[ip.Off+len(h):], b[ip.Off:ip.TotalLen])
		copy(b[ip.Off:], h[:])
		b[ip.ProtoField] = packet.ProtoDstOpts
		binary.BigEndian.PutUint16(b[4:], uint16(newTotal-packet.IPv6HdrLen))
		v.InsertDstOpts(len(h))
		return newTotal, packet.Written, false
	}

	hl := packet.ExtLen(pkt[ip.DestOff+1])
	hdr := pkt[ip.DestOff:]
	lay, res := layoutDestOpts(hdr, hl, optType, ours[:oursLen], false)
	if res != packet.Unchanged {
		return n, res, false
	}
	switch {
	case !add && lay.found == 0,
		add && lay.found == 1 && lay.same:
		return n, packet.Unchanged, false
	}
	stripped := lay.found > 0

	res = packet.Written
	if add && (lay.len > maxExtHdrLen || lay.kept >= maxDestOpts) {
		res, oursLen = packet.NoOptionSpace, 0
		if !stripped {
			return n, res, false
		}
		lay, _ = layoutDestOpts(hdr, hl, optType, nil, false)
	}
	newLen, wr := writeDestOpts(buf, n, ip, hl, lay.len, optType, ours[:oursLen], mtu)
	if wr == packet.Written {
		destOptsResized(v, buf, newLen, hl, lay.len)
		return newLen, res, stripped
	}
	if stripped { // packet.OverMTU or packet.NoBufferRoom: still remove received options
		lay, _ = layoutDestOpts(hdr, hl, optType, nil, false)
		if newLen, r := writeDestOpts(buf, n, ip, hl, lay.len, optType, nil, 0); r == packet.Written {
			destOptsResized(v, buf, newLen, hl, lay.len)
			return newLen, wr, true
		}
	}
	return n, wr, false
}

// destOptsResized updates v for its final Destination Options header
// rewritten from hl to newHL bytes. A header removed (newHL 0) may leave
// another Destination Options header last in the chain: v is parsed again
// then (only when a forged option was the header's only one).
func destOptsResized(v *packet.View, buf []byte, newLen, hl, newHL int) {
	if newHL == 0 {
		v.Parse(buf, newLen)
		return
	}
	v.ResizeDstOpts(newHL - hl)
	v.N = newLen
}

// writeDestOpts replaces the final Destination Options header of the parsed
// packet (hl bytes) with its new layout of newHL bytes (0: remove the
// header), moving what follows, and updates the Payload Length.
func writeDestOpts(buf []byte, n int, ip *packet.IPv6, hl, newHL int, optType byte, ours []byte, mtu int) (int, packet.Result) {
	d := ip.DestOff
	delta := newHL - hl // a multiple of 8
	newTotal := ip.TotalLen + delta
	if delta > 0 {
		if r := growOK(buf, newTotal, mtu); r != packet.Written {
			return n, r
		}
	}
	b := buf[:max(ip.TotalLen, newTotal)]
	if delta > 0 { // make room first; the old header stays in place
		copy(b[d+newHL:], b[d+hl:ip.TotalLen])
	}
	if newHL > 0 {
		layoutDestOpts(b[d:d+max(hl, newHL)], hl, optType, ours, true)
	} else {
		b[ip.DestField] = ip.Proto // RFC 8200 §4: the chain skips the header
	}
	if delta < 0 { // the new header is written; close the gap
		copy(b[d+newHL:], b[d+hl:ip.TotalLen])
	}
	binary.BigEndian.PutUint16(b[4:], uint16(newTotal-packet.IPv6HdrLen))
	return newTotal, packet.Written
}

// DestOptHostID decodes the first option of optType in the final
// Destination Options header of an IPv6 packet: id in 2 or 4 bytes. ok is
// false when there is none, when its length is neither 2 nor 4, when an
// option of the header overruns it (RFC 8200 §4.2; a receiver drops such a
// packet), and for fragments.
func DestOptHostID(pkt []byte, optType byte) (id uint32, idLen int, ok bool) {
	ip, res := packet.ParseIPv6(pkt)
	if res != packet.Unchanged || ip.Frag || ip.DestOff == 0 {
		return 0, 0, false
	}
	return HostIDFromDestOpts(pkt[ip.DestOff:ip.Off], optType)
}

// HostIDFromDestOpts does the same as DestOptHostID from bytes starting at
// a Destination Options header, e.g. the IPV6_DSTOPTS ancillary data that
// Linux delivers with IPV6_RECVDSTOPTS (RFC 3542).
func HostIDFromDestOpts(hdr []byte, optType byte) (id uint32, idLen int, ok bool) {
	if len(hdr) < 2 {
		return 0, 0, false
	}
	hl := packet.ExtLen(hdr[1])
	if hl > len(hdr) {
		return 0, 0, false
	}
	first := 0 // offset of the first option of optType
	for i := 2; i < hl; {
		l := optLen(hdr, i, hl)
		if l < 0 {
			return 0, 0, false
		}
		if hdr[i] == optType && optType != optPad1 && optType != optPadN && first == 0 {
			first = i
		}
		i += l
	}
	switch {
	case first == 0:
	case hdr[first+1] == 2:
		return uint32(binary.BigEndian.Uint16(hdr[first+2:])), 2, true
	case hdr[first+1] == 4:
		return binary.BigEndian.Uint32(hdr[first+2:]), 4, true
	}
	return 0, 0, false
}

// optLen returns the length of the option at h[i] of an options header hl
// bytes long (RFC 8200 §4.2): 1 for Pad1, else 2 plus its Opt Data Len; -1
// when the option runs past hl.
func optLen(h []byte, i, hl int) int {
	if h[i] == optPad1 {
		return 1
	}
	if i+1 >= hl {
		return -1
	}
	l := 2 + int(h[i+1])
	if i+l > hl {
		return -1
	}
	return l
}

// maxIPv6Pay is the largest IPv6 Payload Length (RFC 8200 §3; no
// jumbograms, RFC 2675).
const maxIPv6Pay = 0xffff

// growOK checks a datagram growing to newTotal bytes against the Payload
// Length limit and mtu (OverMTU) and against cap(buf) (NoBufferRoom).
func growOK(buf []byte, newTotal, mtu int) packet.Result {
	if newTotal-packet.IPv6HdrLen > maxIPv6Pay || (mtu > 0 && newTotal > mtu) {
		return packet.OverMTU
	}
	if newTotal > cap(buf) {
		return packet.NoBufferRoom
	}
	return packet.Written
}
