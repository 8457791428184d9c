package tcpoption

import (
	"encoding/binary"

	"github.com/natreveal/natreveal/packet"
)

const (
	HostIDKind        = 253    // RFC 6994 §3 experimental option kind (RFC 4727)
	HostIDExID        = 0x0348 // RFC 7974 §3, RFC 7974 §10
	HostIDOptionSpace = 8      // header bytes our option takes: 8, or 6 plus 2 NOPs
	MaxTCPOptions     = 40     // RFC 9293 §3.1: Data Offset <= 15 words
)

// Option kinds, RFC 9293 §3.2.
const optNOP = 1

// maxIPv6Pay is the largest Payload Length without a jumbogram (RFC 8200 §3).
const maxIPv6Pay = 0xffff

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
func AddHostIDOption(v *packet.View, buf []byte, id uint32, idLen int, mtu int) (newLen int, res packet.Result, stripped bool) {
	return rewriteHostID(v, buf, id, idLen, mtu, addHostID)
}

// StripHostIDOption removes every HOST_ID option from buf[:v.N] (the header
// shrinks, same rebuild as AddHostIDOption). Unchanged when there is none.
func StripHostIDOption(v *packet.View, buf []byte) (newLen int, res packet.Result) {
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

// rewriteHostID rebuilds the option list of buf[:v.N]. Only the IP length
// fields (writeOptions) depend on the address family.
func rewriteHostID(v *packet.View, buf []byte, id uint32, idLen, mtu int, mode hostIDMode) (int, packet.Result, bool) {
	add, keep, v6 := mode&addHostID != 0, mode&keepHostID != 0, mode&hostIDv6 != 0
	n := v.N
	if n < 0 || n > cap(buf) {
		return n, packet.Truncated, false
	}
	if add && idLen != 2 && idLen != 4 {
		return n, packet.BadHeader, false
	}
	if res := v.SegmentRes(v6); res != packet.Unchanged {
		return n, res, false
	}
	pkt := buf[:n]
	tcpOff, total, tcpHdr := v.TCP.Off, v.Total, v.TCP.HdrLen
	opts := pkt[tcpOff+packet.TCPMinHdr : tcpOff+tcpHdr]

	var ours [HostIDOptionSpace]byte
	oursLen := 0
	if add {
		oursLen = encodeHostID(&ours, id, idLen)
	}

	var kept [MaxTCPOptions]byte
	keptList, w, same, found, lastSame, res := filterHostID(opts, &kept, ours[:oursLen], keep)
	if res != packet.Unchanged {
		return n, res, false
	}
	switch {
	case !add && found == 0,
		add && !keep && found == 1 && lastSame,
		add && keep && lastSame:
		return n, packet.Unchanged, false
	}
	stripped := found > 0 && !keep

	res = packet.Written
	if add && packet.RoundUp4(w+oursLen) > MaxTCPOptions {
		res, oursLen = packet.NoOptionSpace, 0 // RFC 7974 §6.1: avoid adding the option
		if !stripped {
			return n, res, false
		}
	}
	newLen, wr := writeOptions(buf, n, tcpOff, total, tcpHdr, keptList[:w], same, ours[:oursLen], mtu, v6)
	if wr == packet.Written {
		v.ResizeTCPHeader(newLen)
		return newLen, res, stripped
	}
	// OverMTU or NoBufferRoom: still remove received options (never grows).
	if stripped {
		if newLen, r := writeOptions(buf, n, tcpOff, total, tcpHdr, keptList[:w], same, nil, 0, v6); r == packet.Written {
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
func filterHostID(opts []byte, kept *[MaxTCPOptions]byte, ours []byte, keep bool) (list []byte, w, same, found int, lastSame bool, res packet.Result) {
	last, shifted := 0, false // last: w after the last option that is not a NOP
	for i := 0; i < len(opts); {
		l := packet.OptLen(opts, i)
		if l == 0 {
			break
		}
		if l < 0 {
			return nil, 0, 0, 0, false, packet.BadHeader
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
		return opts, last, last, found, lastSame, packet.Unchanged
	}
	return kept[:], last, same, found, lastSame, packet.Unchanged
}

// writeOptions replaces the TCP option list of the packet, whose TCP header
// (tcpHdr bytes) is at tcpOff and whose datagram is total bytes, with kept,
// NOP padding, then ours, moving the payload, and updates TCP Data Offset,
// the IP length field and the checksums (RFC 1624): IPv4 Total Length and
// header checksum or, v6, the IPv6 Payload Length (no header checksum; the
// pseudo-header's upper-layer length changes with it, RFC 8200 §8.1).
func writeOptions(buf []byte, n, tcpOff, total, tcpHdr int, kept []byte, same int, ours []byte, mtu int, v6 bool) (int, packet.Result) {
	maxTotal := 0xffff
	if v6 {
		maxTotal = packet.IPv6HdrLen + maxIPv6Pay
	}
	newTotal, r := spliceOptions(buf, total, total-tcpOff, tcpOff, tcpHdr, kept, same, ours, maxTotal, mtu)
	if r != packet.Written {
		return n, r
	}
	b := buf[:newTotal]
	if v6 {
		binary.BigEndian.PutUint16(b[4:], uint16(newTotal-packet.IPv6HdrLen)) // RFC 8200 §3
		return newTotal, packet.Written
	}
	// IPv4 Total Length and header checksum (RFC 791 §3.1, RFC 1624).
	binary.BigEndian.PutUint16(b[2:], uint16(newTotal))
	binary.BigEndian.PutUint16(b[10:], packet.Adjust(binary.BigEndian.Uint16(b[10:12]), uint16(total), uint16(newTotal)))
	return newTotal, packet.Written
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
func spliceOptions(buf []byte, total, l4Len, tcpOff, tcpHdr int, kept []byte, same int, ours []byte, maxTotal, mtu int) (int, packet.Result) {
	body := len(kept) + len(ours)
	pad := packet.RoundUp4(body) - body
	newOpt := body + pad
	delta := newOpt - (tcpHdr - packet.TCPMinHdr) // a multiple of 4
	newTotal := total + delta
	if delta > 0 {
		if newTotal > maxTotal || (mtu > 0 && newTotal > mtu) {
			return total, packet.OverMTU
		}
		if newTotal > cap(buf) {
			return total, packet.NoBufferRoom
		}
	}
	b := buf[:max(total, newTotal)]
	tcp := b[tcpOff:]

	// Old contributions to the TCP checksum: options, the Data Offset
	// word, the pseudo-header length (< 65536: one 16-bit word).
	// Only from an even offset on: the skipped bytes keep their 16-bit words.
	same = min(same, len(kept)) &^ 1
	oldSum := packet.Sum(tcp[packet.TCPMinHdr+same:tcpHdr], uint64(binary.BigEndian.Uint16(tcp[12:14]))+uint64(l4Len))

	// Move the payload (memmove). delta is a multiple of 4, so each payload
	// byte keeps its place in its 16-bit word and its checksum contribution.
	payStart := tcpOff + tcpHdr
	copy(b[payStart+delta:], b[payStart:total])

	o := tcp[packet.TCPMinHdr : packet.TCPMinHdr+newOpt]
	k := len(kept)
	copy(o[same:], kept[same:])
	for i := k; i < k+pad; i++ {
		o[i] = optNOP
	}
	copy(o[k+pad:], ours)
	tcp[12] = byte((packet.TCPMinHdr+newOpt)/4)<<4 | tcp[12]&0x0f
	newSum := packet.Sum(o[same:], uint64(binary.BigEndian.Uint16(tcp[12:14]))+uint64(l4Len+delta))

	// RFC 1624 eqn 3 over several words: HC' = ~(~HC + ~m + m').
	hc := binary.BigEndian.Uint16(tcp[16:18])
	binary.BigEndian.PutUint16(tcp[16:], packet.AdjustSum(hc, oldSum, newSum))
	return newTotal, packet.Written
}

// HostIDOption decodes the first HOST_ID option of an IPv4/TCP packet
// (RFC 7974 §3). ok is false when it is absent, when its length is neither 6
// nor 8, or when the option list is malformed before it. RFC 7974 §5: with
// several HOST_ID options, receivers should concatenate them; this returns
// only the first.
func HostIDOption(pkt []byte) (id uint32, idLen int, ok bool) {
	ip, res := packet.ParseIPv4(pkt)
	if res != packet.Unchanged || ip.Proto != packet.ProtoTCP || ip.IsFragment() {
		return 0, 0, false
	}
	return HostIDFromTCPHeader(pkt[ip.HdrLen:ip.TotalLen])
}

// HostIDFromTCPHeader does the same as HostIDOption from bytes starting at
// the TCP header (bytes past the header are ignored). For Linux
// TCP_SAVED_SYN, which starts at the IP header, use HostIDOption.
func HostIDFromTCPHeader(tcpHdr []byte) (id uint32, idLen int, ok bool) {
	if len(tcpHdr) < packet.TCPMinHdr {
		return 0, 0, false
	}
	hl := int(tcpHdr[12]>>4) * 4
	if hl < packet.TCPMinHdr || hl > len(tcpHdr) {
		return 0, 0, false
	}
	return packet.OptionID(tcpHdr[packet.TCPMinHdr:hl], HostIDKind, HostIDExID, 4) // kind, length, ExID
}

// AddHostIDOption6 is AddHostIDOption for IPv6/TCP (RFC 7974 does not
// depend on the address family): same option, same stripping of received
// HOST_ID options, same results and same stripped rule. The IPv6 Payload
// Length grows with the TCP header; the TCP checksum is updated
// incrementally (RFC 1624) for the new options and the new upper-layer
// length of the pseudo-header (RFC 8200 §8.1). mtu and the 65535-byte
// Payload Length limit play the role of the IPv4 limits.
//
// A packet with an Authentication Header is left alone as NotTCP: its ICV
// covers the Payload Length and the whole TCP segment (RFC 4302 §3.3.3), as
// an IPv4 packet with AH is NotTCP to AddHostIDOption.
func AddHostIDOption6(v *packet.View, buf []byte, id uint32, idLen int, mtu int) (newLen int, res packet.Result, stripped bool) {
	return rewriteHostID(v, buf, id, idLen, mtu, addHostID|hostIDv6)
}

// StripHostIDOption6 removes every HOST_ID option from the IPv6/TCP packet
// buf[:v.N], like StripHostIDOption. Unchanged when there is none.
func StripHostIDOption6(v *packet.View, buf []byte) (newLen int, res packet.Result) {
	newLen, res, _ = rewriteHostID(v, buf, 0, 0, 0, hostIDv6)
	return newLen, res
}

// HostIDOption6 decodes the first HOST_ID option of an IPv6/TCP packet, like
// HostIDOption (RFC 7974 §3, §5). ok is false for fragments.
func HostIDOption6(pkt []byte) (id uint32, idLen int, ok bool) {
	ip, res := packet.ParseIPv6(pkt)
	if res != packet.Unchanged || ip.Proto != packet.ProtoTCP || ip.Frag {
		return 0, 0, false
	}
	return HostIDFromTCPHeader(pkt[ip.Off:ip.TotalLen])
}
