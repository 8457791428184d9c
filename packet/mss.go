package packet

import (
	"encoding/binary"
	"math/bits"
)

// Headroom is the capacity callers reserve past a queued packet for the
// bytes a packet step inserts (the longest: 40 bytes of options).
const Headroom = 40

// MinMSS is the floor LowerMSS never goes below: the default send MSS of
// 536 bytes for IPv4 (RFC 9293 §3.7.1, RFC 1122 §4.2.2.6).
const MinMSS = 536

// MinMSS6 is the floor LowerMSS6 never goes below: the default send MSS for
// IPv6, 1280 - 40 - 20 (RFC 9293 §3.7.1, RFC 8200 §5).
const MinMSS6 = 1220

// LowerMSS lowers the MSS option (RFC 9293 §3.7.1) of an IPv4 SYN or
// SYN-ACK, buf[:v.N] parsed as v (v.TCP.MSS follows), by
// delta, to make room for bytes a middlebox adds later, but never below
// MinMSS and never raising it. The TCP checksum is updated incrementally
// (RFC 1624). Unchanged when the segment has no SYN, no MSS option, or the
// value would not change.
func LowerMSS(v *View, buf []byte, delta uint16) Result {
	if res := v.Res4(); res != Unchanged {
		return res
	}
	if res := v.TCPRes(); res != Unchanged {
		return res
	}
	return lowerMSS(v, buf, delta, MinMSS)
}

// LowerMSS6 is LowerMSS for IPv6/TCP, with the IPv6 floor MinMSS6. The
// checksum is updated incrementally (RFC 1624). AH: NotTCP (View.SegmentRes).
func LowerMSS6(v *View, buf []byte, delta uint16) Result {
	if res := v.SegmentRes(true); res != Unchanged {
		return res
	}
	return lowerMSS(v, buf, delta, MinMSS6)
}

// SegmentRes is what the TCP rewriters of the family (v6: IPv6) say of the
// parsed packet before looking at the options: the IP header's result,
// NotTCP, Fragment, the TCP header's result; for IPv6 then NotTCP when an
// AH was walked: its ICV covers the Payload Length and the whole segment
// (RFC 4302 §3.3.3). ParseTCP's walk of the options up to MSS may have
// found them malformed: every caller walks the whole list and is BadHeader
// there too.
func (v *View) SegmentRes(v6 bool) Result {
	res := v.Res4()
	if v6 {
		res = v.Res6()
	}
	if res == Unchanged {
		res = v.TCPRes()
	}
	if res == Unchanged && v6 && v.IP6.AH {
		return NotTCP
	}
	return res
}

// lowerMSS lowers the MSS option of the parsed TCP header of buf[:v.N] by
// delta, not below floor, and updates v.TCP.MSS.
func lowerMSS(v *View, buf []byte, delta uint16, floor int) Result {
	t := &v.TCP
	if t.Flags&FlagSYN == 0 || int(t.MSS) <= floor || delta == 0 {
		return Unchanged
	}
	mss := floor
	if int(t.MSS)-int(delta) > floor {
		mss = int(t.MSS) - int(delta)
	}
	tcp := buf[t.Off : t.Off+t.HdrLen]
	p, _ := FindOption(tcp[TCPMinHdr:], optMSS, 4) // found by the parse
	o := TCPMinHdr + p + 2                         // value offset in the TCP header
	old, nw := t.MSS, uint16(mss)
	binary.BigEndian.PutUint16(tcp[o:], nw)
	t.MSS = nw
	if o%2 == 1 {
		// An odd offset splits the value across two checksum words: its
		// contribution to the one's complement sum is byte-swapped.
		old, nw = bits.ReverseBytes16(old), bits.ReverseBytes16(nw)
	}
	binary.BigEndian.PutUint16(tcp[16:], Adjust(binary.BigEndian.Uint16(tcp[16:18]), old, nw))
	return Written
}
