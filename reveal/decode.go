package reveal

import (
	"encoding/binary"
	"slices"
	"sync"

	"github.com/natreveal/natreveal/method"
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
	// Types are the option types (RFC 4727) of the methods whose carrier is
	// an option, by method; a method not here reads its registry entry's
	// default (method.Decoder.Types[0]).
	Types map[Method]byte
}

// scratchLen bounds the copy Decode makes of a packet cut short after its
// headers: IPv6 with a few extension headers and a full TCP header fits.
const scratchLen = 512

// scratch holds the copies of cut packets. The registry's decoders are
// called through function values, so the compiler cannot prove that a
// stack copy stays on the stack; a pooled one keeps Decode allocation-free.
var scratch = sync.Pool{New: func() any { return new([scratchLen]byte) }}

// Decode appends to out what pkt carries for each enabled method, in the
// order of d.Methods, and returns out. pkt starts at the IPv4 or IPv6
// header. It may be cut short (NFLOG copy range, pcap snap length): then
// the IP length field is taken to be the captured length, so the headers
// that were captured still decode. Decode allocates nothing when out has
// room for what it finds. Each method is read as its registry entry
// (method/all) says: its family, the IP protocol and IPv6 extension header
// that carry it, and its decoder.
func (d *Decoder) Decode(pkt []byte, out []Found) []Found {
	fl, ok := ParseFlow(pkt)
	if !ok {
		return out
	}
	if cut(pkt) {
		s := scratch.Get().(*[scratchLen]byte)
		defer scratch.Put(s)
		pkt = whole(pkt, s)
	} else {
		pkt = whole(pkt, nil)
	}
	fam := method.IPv6
	if pkt[0]>>4 == 4 {
		fam = method.IPv4
	}
	methods := d.Methods
	if methods == nil {
		methods = DefaultMethods
	}
	for _, m := range methods {
		md := lookup(m)
		if md == nil || !md.Family.Has(fam) {
			continue
		}
		dec := &md.Decoder
		if dec.Proto != 0 && fl.Proto != dec.Proto {
			continue
		}
		if dec.Ext == ProtoDstOpts && (fam != method.IPv6 || fl.DstOpts == 0) {
			continue
		}
		var id uint32
		var n int
		switch {
		case dec.HIT != nil:
			if hit, ok := dec.HIT(pkt); ok {
				out = append(out, Found{Method: m, Len: 16, HIT: hit})
			}
			continue
		case dec.Typed != nil:
			id, n, ok = dec.Typed(pkt, d.optionType(m, dec))
		case dec.Packet != nil:
			id, n, ok = dec.Packet(pkt)
		default:
			continue
		}
		if ok {
			out = append(out, Found{Method: m, HostID: id, Len: n})
		}
	}
	return out
}

// optionType is the option type d reads for m.
func (d *Decoder) optionType(m Method, dec *method.Decoder) byte {
	if t, ok := d.Types[m]; ok && t != 0 {
		return t
	}
	return dec.Types[0]
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
	ipLen, hdr, field := ipLength(pkt)
	if ipLen <= len(pkt) {
		return pkt[:ipLen]
	}
	n := copy(s[:], pkt)
	binary.BigEndian.PutUint16(s[field:], uint16(n-hdr))
	return s[:n]
}

// cut reports whether pkt (parsed by ParseFlow) is shorter than its IP
// length says.
func cut(pkt []byte) bool {
	ipLen, _, _ := ipLength(pkt)
	return ipLen > len(pkt)
}

// ipLength returns the packet's length by its IP header, the offset its
// length field counts from and the field's offset.
func ipLength(pkt []byte) (ipLen, hdr, field int) {
	if pkt[0]>>4 == 4 {
		return int(binary.BigEndian.Uint16(pkt[2:4])), 0, 2
	}
	return 40 + int(binary.BigEndian.Uint16(pkt[4:6])), 40, 4
}
