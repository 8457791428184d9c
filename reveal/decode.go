package reveal

import (
	"encoding/binary"
	"slices"

	"github.com/natreveal/natreveal/method/destopt"
	"github.com/natreveal/natreveal/method/hip"
	"github.com/natreveal/natreveal/method/ipid"
	"github.com/natreveal/natreveal/method/ipoption"
	"github.com/natreveal/natreveal/method/tcpoption"
)

// Found is one HOST_ID read from a packet.
type Found struct {
	Method Method
	// HostID is the identifier, Len bytes of it (2 or 4; ip-id: 2). Zero
	// for hip.
	HostID uint32
	// Len is the HOST_ID's length in bytes as it travelled: 2 or 4, 16 for
	// hip (the HIT).
	Len int
	// HIT is the sender's Host Identity Tag (hip only, RFC 7401 §5.1).
	HIT [16]byte
}

// Decoder reads HOST_IDs from packets. Its zero value decodes
// DefaultMethods with the default option types.
type Decoder struct {
	// Methods are tried in this order; nil means DefaultMethods. ip-id is
	// reported only when named here (and only for atomic IPv4 datagrams).
	Methods []Method
	// IPOptionType is the IPv4 option type of ip-option (RFC 4727 §2.5);
	// 0 means DefaultIPOptionType (30).
	IPOptionType byte
	// DestOptType is the IPv6 option type of dest-opt (RFC 4727 §2.6);
	// 0 means DefaultDestOptType (0x1E).
	DestOptType byte
}

// scratchLen bounds the copy Decode makes of a packet cut short after its
// headers: IPv6 with a few extension headers and a full TCP header fits.
const scratchLen = 512

// Decode appends to out what pkt carries for each enabled method, in the
// order of d.Methods, and returns out. pkt starts at the IPv4 or IPv6
// header. It may be cut short (NFLOG copy range, pcap snap length): then
// the IP length field is taken to be the captured length, so the headers
// that were captured still decode. Decode allocates nothing when out has
// room for what it finds.
func (d *Decoder) Decode(pkt []byte, out []Found) []Found {
	fl, ok := ParseFlow(pkt)
	if !ok {
		return out
	}
	var scratch [scratchLen]byte
	pkt = whole(pkt, &scratch)
	v4 := pkt[0]>>4 == 4
	methods := d.Methods
	if methods == nil {
		methods = DefaultMethods
	}
	for _, m := range methods {
		switch m {
		case TCPOption:
			if fl.Proto != ProtoTCP {
				continue
			}
			var id uint32
			var n int
			var ok bool
			if v4 {
				id, n, ok = tcpoption.HostIDOption(pkt)
			} else {
				id, n, ok = tcpoption.HostIDOption6(pkt)
			}
			if ok {
				out = append(out, Found{Method: m, HostID: id, Len: n})
			}
		case IPID:
			if !v4 {
				continue
			}
			// RFC 6864 §4: only an atomic datagram's ID is free to carry data.
			if id, atomic, ok := ipid.IPID(pkt); ok && atomic {
				out = append(out, Found{Method: m, HostID: uint32(id), Len: 2})
			}
		case IPOption:
			if !v4 {
				continue
			}
			if id, n, ok := ipoption.IPOptionHostID(pkt, d.ipOptionType()); ok {
				out = append(out, Found{Method: m, HostID: id, Len: n})
			}
		case DestOpt:
			if v4 || fl.DestOpts == 0 {
				continue
			}
			if id, n, ok := destopt.DestOptHostID(pkt, d.destOptType()); ok {
				out = append(out, Found{Method: m, HostID: id, Len: n})
			}
		case HIP:
			if fl.Proto != ProtoHIP {
				continue
			}
			if hit, ok := hip.HIPSenderHIT(pkt); ok {
				out = append(out, Found{Method: m, Len: 16, HIT: hit})
			}
		}
	}
	return out
}

func (d *Decoder) ipOptionType() byte {
	if d.IPOptionType == 0 {
		return DefaultIPOptionType
	}
	return d.IPOptionType
}

func (d *Decoder) destOptType() byte {
	if d.DestOptType == 0 {
		return DefaultDestOptType
	}
	return d.DestOptType
}

// Enabled reports whether d decodes m.
func (d *Decoder) Enabled(m Method) bool {
	methods := d.Methods
	if methods == nil {
		methods = DefaultMethods
	}
	return slices.Contains(methods, m)
}

// whole returns pkt (parsed by ParseFlow) cut to its IP length, or, when it
// is shorter than its IP length says (a capture cut short), a copy of at
// most scratchLen bytes in s whose IPv4 Total Length or IPv6 Payload Length
// is the copied length. The IPv4 header checksum of such a copy is stale;
// nothing here checks it.
func whole(pkt []byte, s *[scratchLen]byte) []byte {
	var ipLen, hdr, field int
	if pkt[0]>>4 == 4 {
		ipLen, hdr, field = int(binary.BigEndian.Uint16(pkt[2:4])), 0, 2
	} else {
		ipLen, hdr, field = 40+int(binary.BigEndian.Uint16(pkt[4:6])), 40, 4
	}
	if ipLen <= len(pkt) {
		return pkt[:ipLen]
	}
	n := copy(s[:], pkt)
	binary.BigEndian.PutUint16(s[field:], uint16(n-hdr))
	return s[:n]
}
