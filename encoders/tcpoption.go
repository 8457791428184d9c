package encoders

import (
	"encoding/binary"

	"github.com/natreveal/natreveal/packet"
)

const (
	HostIDKind        = 253    // RFC 6994 §3 experimental option kind (RFC 4727)
	HostIDExID        = 0x0348 // RFC 7974 §3, RFC 7974 §10
	HostIDOptionSpace = 8      // header bytes our option takes: 8, or 6 plus 2 NOPs
	MaxTCPOptions     = 40     // RFC 9293 §3.1: Data Offset <= 15 words
	Headroom          = 40     // capacity callers reserve past the packet for insertions
)

// Option kinds, RFC 9293 §3.2.
const (
	optNOP = 1
	optMSS = 2
)

// isHostID reports whether option o is a HOST_ID option of any length:
// kind 253 with ExID 0x0348 (RFC 7974 §3). RFC 6994 §3.1: "All ExIDs MUST
// be unique based on their first 16 bits", so a 32-bit ExID cannot start
// with 0x0348.
func isHostID(o []byte) bool {
	return len(o) >= 4 && o[0] == HostIDKind && binary.BigEndian.Uint16(o[2:]) == HostIDExID
}

// encodeHostID writes our option (RFC 7974 §3: kind, length 6 or 8, ExID,
// HOST_ID big endian) and returns its length.
func encodeHostID(o *[HostIDOptionSpace]byte, id uint32, idLen int) int {
	o[0] = HostIDKind
	o[1] = byte(4 + idLen)
	binary.BigEndian.PutUint16(o[2:], HostIDExID)
	if idLen == 2 {
		binary.BigEndian.PutUint16(o[4:], uint16(id))
	} else {
		binary.BigEndian.PutUint32(o[4:], id)
	}
	return 4 + idLen
}

// AddHostIDOption rewrites the IPv4/TCP packet buf[:v.N], parsed as v, in
// place so that its TCP header carries exactly one HOST_ID option, ours: id
// in idLen (2 or 4) bytes, big endian (RFC 7974 §3; a 2-byte id keeps the
// low 16 bits). HOST_ID options already present are removed first
// (anti-spoofing; see RFC7974-NOTES.md on §4.3). The other options keep
// their order; NOPs that only padded before a removed option or at the end
// are dropped, ours is appended and NOP-padded so the list ends on a word
// boundary. Bytes after EOL are not kept.
//
// Results: Written (newLen is the new Total Length); Unchanged when exactly
// one HOST_ID option, equal to ours, is already there; NoOptionSpace when
// the list would exceed 40 bytes (RFC 7974 §6.1); OverMTU when the datagram
// would exceed mtu (mtu <= 0: only the 65535 limit; RFC 7974 §4.2.3) and
// NoBufferRoom when it would exceed cap(buf). On those three, received
// HOST_ID options are still removed and stripped is true when that changed
// the packet (newLen then shrinks); otherwise the packet is untouched.
// Truncated, BadHeader, NotTCP and Fragment leave it untouched too.
//
// Checksums are updated incrementally (RFC 1624). Whenever the packet
// changes, v is updated to match it (packet.View.ResizeTCPHeader).
func AddHostIDOption(v *packet.View, buf []byte, id uint32, idLen int, mtu int) (newLen int, res Result, stripped bool) {
	return rewriteHostID(v, buf, id, idLen, mtu, addHostID)
}

// StripHostIDOption removes every HOST_ID option from buf[:v.N] (the header
// shrinks, same rebuild as AddHostIDOption). Unchanged when there is none.
func StripHostIDOption(v *packet.View, buf []byte) (newLen int, res Result) {
	newLen, res, _ = rewriteHostID(v, buf, 0, 0, 0, 0)
	return newLen, res
}

// hostIDMode says what rewriteHostID does; 0: remove received HOST_ID
// options from an IPv4 packet.
type hostIDMode uint8

const (
	addHostID  hostIDMode = 1 << iota // append ours
	keepHostID                        // keep received HOST_ID options (RFC 7974 §4.3 "MUST propagate forward" for address-derived IDs)
	hostIDv6                          // the packet is IPv6 (AddHostIDOption6)
)

// tcpRes is what the TCP encoders of the family (v6: IPv6) say of the
// parsed packet before looking at the options: the IP header's result,
// NotTCP, Fragment, the TCP header's result; for IPv6 then NotTCP when an
// AH was walked (see AddHostIDOption6). ParseTCP's walk of the options up
// to MSS may have found them malformed: every caller walks the whole list
// and is BadHeader there too.
func tcpRes(v *packet.View, v6 bool) Result {
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

// rewriteHostID rebuilds the option list of buf[:v.N]. Only the IP length
// fields (writeOptions) depend on the address family.
func rewriteHostID(v *packet.View, buf []byte, id uint32, idLen, mtu int, mode hostIDMode) (int, Result, bool) {
	add, keep, v6 := mode&addHostID != 0, mode&keepHostID != 0, mode&hostIDv6 != 0
	n := v.N
	if n < 0 || n > cap(buf) {
		return n, Truncated, false
	}
	if add && idLen != 2 && idLen != 4 {
		return n, BadHeader, false
	}
	if res := tcpRes(v, v6); res != Unchanged {
		return n, res, false
	}
	pkt := buf[:n]
	tcpOff, total, tcpHdr := v.TCP.Off, v.Total, v.TCP.HdrLen
	opts := pkt[tcpOff+tcpMinHdr : tcpOff+tcpHdr]

	var ours [HostIDOptionSpace]byte
	oursLen := 0
	if add {
		oursLen = encodeHostID(&ours, id, idLen)
	}

	var kept [MaxTCPOptions]byte
	keptList, w, same, found, lastSame, res := filterHostID(opts, &kept, ours[:oursLen], keep)
	if res != Unchanged {
		return n, res, false
	}
	switch {
	case !add && found == 0,
		add && !keep && found == 1 && lastSame,
		add && keep && lastSame:
		return n, Unchanged, false
	}
	stripped := found > 0 && !keep

	res = Written
	if add && roundUp4(w+oursLen) > MaxTCPOptions {
		res, oursLen = NoOptionSpace, 0 // RFC 7974 §6.1: avoid adding the option
		if !stripped {
			return n, res, false
		}
	}
	newLen, wr := writeOptions(buf, n, tcpOff, total, tcpHdr, keptList[:w], same, ours[:oursLen], mtu, v6)
	if wr == Written {
		v.ResizeTCPHeader(newLen)
		return newLen, res, stripped
	}
	// OverMTU or NoBufferRoom: still remove received options (never grows).
	if stripped {
		if newLen, r := writeOptions(buf, n, tcpOff, total, tcpHdr, keptList[:w], same, nil, 0, v6); r == Written {
			v.ResizeTCPHeader(newLen)
			return newLen, wr, true
		}
	}
	return n, wr, false
}

// filterHostID returns the TCP option list opts up to EOL (RFC 9293 §3.2)
// without HOST_ID options (keep: with them) and without the NOPs that
// aligned a removed option: list[:w], w its length without trailing NOPs
// (they only padded; the list is padded again). Until the first option is
// removed the list is a prefix of opts, read in place; from then on it is
// copied into kept (never more than len(opts) <= 40 bytes). list[:same]
// equals opts[:same] (those bytes stay in place). found counts the HOST_ID
// options; lastSame: the last one equals ours.
func filterHostID(opts []byte, kept *[MaxTCPOptions]byte, ours []byte, keep bool) (list []byte, w, same, found int, lastSame bool, res Result) {
	last, shifted := 0, false // last: w after the last option that is not a NOP
	for i := 0; i < len(opts); {
		l := optLen(opts, i)
		if l == 0 {
			break
		}
		if l < 0 {
			return nil, 0, 0, 0, false, BadHeader
		}
		o := opts[i : i+l]
		i += l
		if isHostID(o) {
			found++
			lastSame = len(ours) > 0 && string(o) == string(ours)
			if !keep {
				w = last // drop the NOPs that aligned it
				if !shifted {
					shifted, same = true, w
					copy(kept[:], opts[:w])
				}
				continue
			}
		}
		if shifted {
			copy(kept[w:], o)
		}
		w += l
		if o[0] != optNOP {
			last = w
		}
	}
	if !shifted {
		return opts, last, last, found, lastSame, Unchanged
	}
	return kept[:], last, same, found, lastSame, Unchanged
}

func roundUp4(x int) int { return (x + 3) &^ 3 }

// writeOptions replaces the TCP option list of the packet, whose TCP header
// (tcpHdr bytes) is at tcpOff and whose datagram is total bytes, with kept,
// NOP padding, then ours, moving the payload, and updates TCP Data Offset,
// the IP length field and the checksums (RFC 1624): IPv4 Total Length and
// header checksum or, v6, the IPv6 Payload Length (no header checksum; the
// pseudo-header's upper-layer length changes with it, RFC 8200 §8.1).
func writeOptions(buf []byte, n, tcpOff, total, tcpHdr int, kept []byte, same int, ours []byte, mtu int, v6 bool) (int, Result) {
	maxTotal := 0xffff
	if v6 {
		maxTotal = ipv6HdrLen + maxIPv6Pay
	}
	newTotal, r := spliceOptions(buf, total, total-tcpOff, tcpOff, tcpHdr, kept, same, ours, maxTotal, mtu)
	if r != Written {
		return n, r
	}
	b := buf[:newTotal]
	if v6 {
		binary.BigEndian.PutUint16(b[4:], uint16(newTotal-ipv6HdrLen)) // RFC 8200 §3
		return newTotal, Written
	}
	// IPv4 Total Length and header checksum (RFC 791 §3.1, RFC 1624).
	binary.BigEndian.PutUint16(b[2:], uint16(newTotal))
	binary.BigEndian.PutUint16(b[10:], packet.Adjust(binary.BigEndian.Uint16(b[10:12]), uint16(total), uint16(newTotal)))
	return newTotal, Written
}

// spliceOptions replaces the option list of the TCP header at tcpOff (tcpHdr
// bytes long) in a datagram of total bytes with kept, NOP padding, then
// ours: it moves the payload and updates Data Offset and the TCP checksum,
// whose pseudo-header upper-layer length is l4Len before the change (RFC
// 9293 §3.1, RFC 8200 §8.1). The IP length fields are the caller's. A datagram past maxTotal or mtu (> 0) is
// OverMTU, past cap(buf) NoBufferRoom; nothing is changed then.
//
// kept[:same] must equal the first same bytes of the old option list: they
// stay where they are, and neither their copy nor their checksum
// contribution (unchanged: same place, same word alignment) is computed.
func spliceOptions(buf []byte, total, l4Len, tcpOff, tcpHdr int, kept []byte, same int, ours []byte, maxTotal, mtu int) (int, Result) {
	body := len(kept) + len(ours)
	pad := roundUp4(body) - body
	newOpt := body + pad
	delta := newOpt - (tcpHdr - tcpMinHdr) // a multiple of 4
	newTotal := total + delta
	if delta > 0 {
		if newTotal > maxTotal || (mtu > 0 && newTotal > mtu) {
			return total, OverMTU
		}
		if newTotal > cap(buf) {
			return total, NoBufferRoom
		}
	}
	b := buf[:max(total, newTotal)]
	tcp := b[tcpOff:]

	// Old contributions to the TCP checksum: options, the Data Offset
	// word, the pseudo-header length (< 65536: one 16-bit word).
	// Only from an even offset on: the skipped bytes keep their 16-bit words.
	same = min(same, len(kept)) &^ 1
	oldSum := packet.Sum(tcp[tcpMinHdr+same:tcpHdr], uint64(binary.BigEndian.Uint16(tcp[12:14]))+uint64(l4Len))

	// Move the payload (memmove). delta is a multiple of 4, so each payload
	// byte keeps its place in its 16-bit word and its checksum contribution.
	payStart := tcpOff + tcpHdr
	copy(b[payStart+delta:], b[payStart:total])

	o := tcp[tcpMinHdr : tcpMinHdr+newOpt]
	k := len(kept)
	copy(o[same:], kept[same:])
	for i := k; i < k+pad; i++ {
		o[i] = optNOP
	}
	copy(o[k+pad:], ours)
	tcp[12] = byte((tcpMinHdr+newOpt)/4)<<4 | tcp[12]&0x0f
	newSum := packet.Sum(o[same:], uint64(binary.BigEndian.Uint16(tcp[12:14]))+uint64(l4Len+delta))

	// RFC 1624 eqn 3 over several words: HC' = ~(~HC + ~m + m').
	hc := binary.BigEndian.Uint16(tcp[16:18])
	binary.BigEndian.PutUint16(tcp[16:], packet.AdjustSum(hc, oldSum, newSum))
	return newTotal, Written
}

// HostIDOption decodes the first HOST_ID option of an IPv4/TCP packet
// (RFC 7974 §3). ok is false when it is absent, when its length is neither 6
// nor 8, or when the option list is malformed before it. RFC 7974 §5: with
// several HOST_ID options, receivers should concatenate them; this returns
// only the first.
func HostIDOption(pkt []byte) (id uint32, idLen int, ok bool) {
	ip, res := ParseIPv4(pkt)
	if res != Unchanged || ip.Proto != protoTCP || ip.IsFragment() {
		return 0, 0, false
	}
	return HostIDFromTCPHeader(pkt[ip.HdrLen:ip.TotalLen])
}

// HostIDFromTCPHeader does the same as HostIDOption from bytes starting at
// the TCP header (bytes past the header are ignored). For Linux
// TCP_SAVED_SYN, which starts at the IP header, use HostIDOption.
func HostIDFromTCPHeader(tcpHdr []byte) (id uint32, idLen int, ok bool) {
	if len(tcpHdr) < tcpMinHdr {
		return 0, 0, false
	}
	hl := int(tcpHdr[12]>>4) * 4
	if hl < tcpMinHdr || hl > len(tcpHdr) {
		return 0, 0, false
	}
	return optionID(tcpHdr[tcpMinHdr:hl], HostIDKind, true, 4) // kind, length, ExID
}

// optionID reads the 2- or 4-byte ID that follows hdr bytes of the first
// option of the list opts (TCP, RFC 9293 §3.1, or IPv4, RFC 791 §3.1: the
// same kind-length form) of kind (hostID: a HOST_ID option, its ExID
// checked too); not ok when the list ends (EOL) or turns malformed before
// one, or that option has another length. No function value and nothing of
// opts returned: opts does not escape.
func optionID(opts []byte, kind byte, hostID bool, hdr int) (id uint32, idLen int, ok bool) {
	for i := 0; i < len(opts); {
		l := optLen(opts, i)
		if l <= 0 {
			return 0, 0, false
		}
		o := opts[i : i+l]
		if o[0] != kind || hostID && !isHostID(o) {
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
