package encoders

import (
	"encoding/binary"
	"math/bits"

	"github.com/natreveal/natreveal/packet"
)

// MinMSS is the floor LowerMSS never goes below: the default send MSS of
// 536 bytes for IPv4 (RFC 9293 §3.7.1, RFC 1122 §4.2.2.6).
const MinMSS = 536

// LowerMSS lowers the MSS option (RFC 9293 §3.7.1) of an IPv4 SYN or
// SYN-ACK, buf[:v.N] parsed as v (v.TCP.MSS follows), by
// delta, to make room for bytes a middlebox adds later, but never below
// MinMSS and never raising it. The TCP checksum is updated incrementally
// (RFC 1624). Unchanged when the segment has no SYN, no MSS option, or the
// value would not change.
func LowerMSS(v *packet.View, buf []byte, delta uint16) Result {
	if res := v.Res4(); res != Unchanged {
		return res
	}
	if res := v.TCPRes(); res != Unchanged {
		return res
	}
	return lowerMSS(v, buf, delta, MinMSS)
}

// lowerMSS lowers the MSS option of the parsed TCP header of buf[:v.N] by
// delta, not below floor, and updates v.TCP.MSS.
func lowerMSS(v *packet.View, buf []byte, delta uint16, floor int) Result {
	t := &v.TCP
	if t.Flags&FlagSYN == 0 || int(t.MSS) <= floor || delta == 0 {
		return Unchanged
	}
	mss := floor
	if int(t.MSS)-int(delta) > floor {
		mss = int(t.MSS) - int(delta)
	}
	tcp := buf[t.Off : t.Off+t.HdrLen]
	p, _ := findOption(tcp[tcpMinHdr:], optMSS, 4) // found by the parse
	o := tcpMinHdr + p + 2                         // value offset in the TCP header
	old, nw := t.MSS, uint16(mss)
	binary.BigEndian.PutUint16(tcp[o:], nw)
	t.MSS = nw
	if o%2 == 1 {
		// An odd offset splits the value across two checksum words: its
		// contribution to the one's complement sum is byte-swapped.
		old, nw = bits.ReverseBytes16(old), bits.ReverseBytes16(nw)
	}
	binary.BigEndian.PutUint16(tcp[16:], packet.Adjust(binary.BigEndian.Uint16(tcp[16:18]), old, nw))
	return Written
}
