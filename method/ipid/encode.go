package ipid

import (
	"encoding/binary"

	"github.com/natreveal/natreveal/packet"
)

// SetIPID writes id into the Identification field of an atomic datagram
// (RFC 6864 §4: DF=1, MF=0, offset 0; §4.1: "Originating sources MAY set the
// IPv4 ID field of atomic datagrams to any value"). A non-atomic datagram's
// ID is used for reassembly and must not change: Fragment when MF or the
// offset is set, NotAtomic when DF is clear. The header checksum is updated
// incrementally (RFC 1624 eqn 3). Unchanged when the ID already equals id.
// The packet is buf[:v.N], parsed as v; v.IP4.ID follows.
func SetIPID(v *packet.View, buf []byte, id uint16) packet.Result {
	if res := v.Res4(); res != packet.Unchanged {
		return res
	}
	ip := &v.IP4
	if ip.IsFragment() {
		return packet.Fragment
	}
	if !ip.DF {
		return packet.NotAtomic
	}
	if ip.ID == id {
		return packet.Unchanged
	}
	binary.BigEndian.PutUint16(buf[4:], id)
	binary.BigEndian.PutUint16(buf[10:], packet.Adjust(binary.BigEndian.Uint16(buf[10:12]), ip.ID, id))
	ip.ID = id
	return packet.Written
}

// IPID reads the Identification field and whether the datagram is atomic
// (RFC 6864 §4). ok is false when the IPv4 header does not parse.
func IPID(pkt []byte) (id uint16, atomic bool, ok bool) {
	ip, res := packet.ParseIPv4(pkt)
	if res != packet.Unchanged {
		return 0, false, false
	}
	return ip.ID, ip.DF && !ip.IsFragment(), true
}
