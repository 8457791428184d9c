package encoders

import "encoding/binary"

const (
	HostIDKind        = 253    // RFC 6994 §3 experimental option kind (RFC 4727)
	HostIDExID        = 0x0348 // RFC 7974 §3, RFC 7974 §10
	HostIDOptionSpace = 8      // header bytes our option takes: 8, or 6 plus 2 NOPs
	MaxTCPOptions     = 40     // RFC 9293 §3.1: Data Offset <= 15 words
	Headroom          = 40     // capacity callers reserve past the packet for insertions
)

// Option kinds, RFC 9293 §3.2.
const (
	optEOL = 0
	optNOP = 1
	optMSS = 2
)

// optLen returns the length of the option at opts[i]: 1 for NOP, 0 for EOL
// (end of list), -1 when malformed (RFC 9293 §3.1: a length byte below 2 or
// running past the option space).
func optLen(opts []byte, i int) int {
	switch opts[i] {
	case optEOL:
		return 0
	case optNOP:
		return 1
	}
	if i+1 >= len(opts) {
		return -1
	}
	l := int(opts[i+1])
	if l < 2 || l > len(opts)-i {
		return -1
	}
	return l
}

// findOption returns the offset in opts of the first option of kind with
// length want, or -1. It stops at EOL and reports a malformed list met
// before the option as BadHeader.
func findOption(opts []byte, kind byte, want int) (int, Result) {
	for i := 0; i < len(opts); {
		l := optLen(opts, i)
		if l == 0 {
			break
		}
		if l < 0 {
			return -1, BadHeader
		}
		if opts[i] == kind && l == want {
			return i, Unchanged
		}
		i += l
	}
	return -1, Unchanged
}

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

// AddHostIDOption rewrites the IPv4/TCP packet buf[:n] in place so that its
// TCP header carries exactly one HOST_ID option, ours: id in idLen (2 or 4)
// bytes, big endian (RFC 7974 §3; a 2-byte id keeps the low 16 bits). HOST_ID
// options already present are removed first (anti-spoofing; see
// RFC7974-NOTES.md on §4.3). The other options keep their order; NOPs that
// only padded before a removed option or at the end are dropped, ours is
// appended and NOP-padded so the list ends on a word boundary. Bytes after
// EOL are not kept.
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
// Checksums are updated incrementally (RFC 1624).
func AddHostIDOption(buf []byte, n int, id uint32, idLen int, mtu int) (newLen int, res Result, stripped bool) {
	return rewriteHostID(buf, n, id, idLen, mtu, true, false)
}

// StripHostIDOption removes every HOST_ID option from buf[:n] (the header
// shrinks, same rebuild as AddHostIDOption). Unchanged when there is none.
func StripHostIDOption(buf []byte, n int) (newLen int, res Result) {
	newLen, res, _ = rewriteHostID(buf, n, 0, 0, 0, false, false)
	return newLen, res
}

// rewriteHostID rebuilds the option list of buf[:n]. add appends ours; keep
// keeps received HOST_ID options (RFC 7974 §4.3 "MUST propagate forward"
// for address-derived IDs) instead of removing them.
func rewriteHostID(buf []byte, n int, id uint32, idLen, mtu int, add, keep bool) (int, Result, bool) {
	if n < 0 || n > cap(buf) {
		return n, Truncated, false
	}
	if add && idLen != 2 && idLen != 4 {
		return n, BadHeader, false
	}
	pkt := buf[:n]
	ip, t, res := parseIPv4TCP(pkt)
	if res != Unchanged {
		return n, res, false
	}
	opts := pkt[t.Off+tcpMinHdr : t.Off+t.HdrLen]

	var ours [HostIDOptionSpace]byte
	oursLen := 0
	if add {
		oursLen = encodeHostID(&ours, id, idLen)
	}

	// Copy the list without HOST_ID options, up to EOL (RFC 9293 §3.2).
	// kept never holds more than len(opts) <= 40 bytes.
	var kept [MaxTCPOptions]byte
	w, last := 0, 0 // last: w after the last option that is not a NOP
	found, lastSame := 0, false
	for i := 0; i < len(opts); {
		l := optLen(opts, i)
		if l == 0 {
			break
		}
		if l < 0 {
			return n, BadHeader, false
		}
		o := opts[i : i+l]
		i += l
		if isHostID(o) {
			found++
			lastSame = add && string(o) == string(ours[:oursLen])
			if !keep {
				w = last // drop the NOPs that aligned it
				continue
			}
		}
		w += copy(kept[w:], o)
		if o[0] != optNOP {
			last = w
		}
	}
	switch {
	case !add && found == 0,
		add && !keep && found == 1 && lastSame,
		add && keep && lastSame:
		return n, Unchanged, false
	}
	w = last // trailing NOPs were padding; we pad again
	stripped := found > 0 && !keep

	res = Written
	if add && roundUp4(w+oursLen) > MaxTCPOptions {
		res, oursLen = NoOptionSpace, 0 // RFC 7974 §6.1: avoid adding the option
		if !stripped {
			return n, res, false
		}
	}
	newLen, wr := writeOptions(buf, n, ip, t, kept[:w], ours[:oursLen], mtu)
	if wr == Written {
		return newLen, res, stripped
	}
	// OverMTU or NoBufferRoom: still remove received options (never grows).
	if stripped {
		if newLen, r := writeOptions(buf, n, ip, t, kept[:w], nil, 0); r == Written {
			return newLen, wr, true
		}
	}
	return n, wr, false
}

func roundUp4(x int) int { return (x + 3) &^ 3 }

// writeOptions replaces the TCP option list of the parsed packet with kept,
// NOP padding, then ours, moving the payload, and updates TCP Data Offset,
// IPv4 Total Length and both checksums (RFC 1624).
func writeOptions(buf []byte, n int, ip IPv4, t TCP, kept, ours []byte, mtu int) (int, Result) {
	body := len(kept) + len(ours)
	pad := roundUp4(body) - body
	newOpt := body + pad
	delta := newOpt - (t.HdrLen - tcpMinHdr) // a multiple of 4
	newTotal := ip.TotalLen + delta
	if delta > 0 {
		if newTotal > 0xffff || (mtu > 0 && newTotal > mtu) {
			return n, OverMTU
		}
		if newTotal > cap(buf) {
			return n, NoBufferRoom
		}
	}
	b := buf[:max(ip.TotalLen, newTotal)]
	tcp := b[t.Off:]

	// Old contributions to the TCP checksum: options, the Data Offset
	// word, the pseudo-header TCP length (RFC 9293 §3.1).
	oldSum := sum(tcp[tcpMinHdr:t.HdrLen], uint64(binary.BigEndian.Uint16(tcp[12:14]))+uint64(ip.TotalLen-ip.HdrLen))

	// Move the payload (memmove). delta is a multiple of 4, so each payload
	// byte keeps its place in its 16-bit word and its checksum contribution.
	payStart := t.Off + t.HdrLen
	copy(b[payStart+delta:], b[payStart:ip.TotalLen])

	o := tcp[tcpMinHdr : tcpMinHdr+newOpt]
	k := copy(o, kept)
	for i := k; i < k+pad; i++ {
		o[i] = optNOP
	}
	copy(o[k+pad:], ours)
	tcp[12] = byte((tcpMinHdr+newOpt)/4)<<4 | tcp[12]&0x0f
	newSum := sum(o, uint64(binary.BigEndian.Uint16(tcp[12:14]))+uint64(newTotal-ip.HdrLen))

	// RFC 1624 eqn 3 over several words: HC' = ~(~HC + ~m + m').
	hc := binary.BigEndian.Uint16(tcp[16:18])
	binary.BigEndian.PutUint16(tcp[16:], ^fold(uint64(^hc)+uint64(^fold(oldSum))+newSum))

	// IPv4 Total Length and header checksum (RFC 791 §3.1, RFC 1624).
	binary.BigEndian.PutUint16(b[2:], uint16(newTotal))
	binary.BigEndian.PutUint16(b[10:], ChecksumAdjust(binary.BigEndian.Uint16(b[10:12]), uint16(ip.TotalLen), uint16(newTotal)))
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
	opts := tcpHdr[tcpMinHdr:hl]
	for i := 0; i < len(opts); {
		l := optLen(opts, i)
		if l <= 0 {
			return 0, 0, false
		}
		o := opts[i : i+l]
		i += l
		if !isHostID(o) {
			continue
		}
		switch l {
		case 6:
			return uint32(binary.BigEndian.Uint16(o[4:])), 2, true
		case 8:
			return binary.BigEndian.Uint32(o[4:]), 4, true
		}
		return 0, 0, false
	}
	return 0, 0, false
}
