package packettest

import (
	"bytes"
	"encoding/binary"
	"net"
	"testing"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
	"github.com/natreveal/natreveal/packet"
)

func IPHdr() *layers.IPv4 {
	return &layers.IPv4{
		Version:  4,
		IHL:      5,
		TTL:      64,
		Id:       0x1234,
		Flags:    layers.IPv4DontFragment,
		Protocol: layers.IPProtocolTCP,
		SrcIP:    net.IPv4(100, 64, 0, 7).To4(),
		DstIP:    net.IPv4(198, 51, 100, 10).To4(),
	}
}

func SYNHdr(opts ...layers.TCPOption) *layers.TCP {
	return &layers.TCP{SrcPort: 40000, DstPort: 443, Seq: 0x01020304, SYN: true, Window: 64240, Options: opts}
}

func DataHdr(opts ...layers.TCPOption) *layers.TCP {
	return &layers.TCP{SrcPort: 40000, DstPort: 443, Seq: 0x01020305, Ack: 0xa0b0c0d0, ACK: true, PSH: true, Window: 502, Options: opts}
}

// SYNACK is a SYN-ACK with the given options.
func SYNACK(opts ...layers.TCPOption) *layers.TCP {
	h := SYNHdr(opts...)
	h.ACK, h.Ack = true, 99
	return h
}

func OMSS(v uint16) layers.TCPOption {
	return layers.TCPOption{OptionType: layers.TCPOptionKindMSS, OptionData: binary.BigEndian.AppendUint16(nil, v)}
}

func ONOP() layers.TCPOption { return layers.TCPOption{OptionType: layers.TCPOptionKindNop} }

func OEOL() layers.TCPOption { return layers.TCPOption{OptionType: layers.TCPOptionKindEndList} }

func OSACKPerm() layers.TCPOption {
	return layers.TCPOption{OptionType: layers.TCPOptionKindSACKPermitted}
}

func OWS(s byte) layers.TCPOption {
	return layers.TCPOption{OptionType: layers.TCPOptionKindWindowScale, OptionData: []byte{s}}
}

func OTS() layers.TCPOption {
	return layers.TCPOption{OptionType: layers.TCPOptionKindTimestamps, OptionData: []byte{0, 1, 2, 3, 0, 0, 0, 0}}
}

// OTFO is a TCP Fast Open cookie option (RFC 7413, kind 34) of n cookie bytes.
func OTFO(n int) layers.TCPOption {
	return layers.TCPOption{OptionType: 34, OptionData: bytes.Repeat([]byte{0xc0}, n)}
}

// OHostID is a HOST_ID option (RFC 7974 §3) with the given id bytes.
func OHostID(id ...byte) layers.TCPOption {
	return layers.TCPOption{OptionType: HostIDKind, OptionData: append([]byte{0x03, 0x48}, id...)}
}

// LinuxSYN is what Linux sends: MSS, SACK-permitted, timestamps, NOP, window
// scale: 20 option bytes.
func LinuxSYN() []layers.TCPOption {
	return []layers.TCPOption{OMSS(1460), OSACKPerm(), OTS(), ONOP(), OWS(7)}
}

// Build serializes ip/tcp/payload with gopacket (lengths and checksums
// computed by gopacket) into a buffer with Headroom spare capacity.
func Build(tb testing.TB, ip *layers.IPv4, tcp *layers.TCP, payload []byte) []byte {
	tb.Helper()
	if err := tcp.SetNetworkLayerForChecksum(ip); err != nil {
		tb.Fatal(err)
	}
	sb := gopacket.NewSerializeBuffer()
	opts := gopacket.SerializeOptions{FixLengths: true, ComputeChecksums: true}
	if err := gopacket.SerializeLayers(sb, opts, ip, tcp, gopacket.Payload(payload)); err != nil {
		tb.Fatal(err)
	}
	out := make([]byte, len(sb.Bytes()), len(sb.Bytes())+packet.Headroom)
	copy(out, sb.Bytes())
	return out
}

// Clone copies b into a new buffer with Headroom spare capacity.
func Clone(b []byte) []byte {
	out := make([]byte, len(b), len(b)+packet.Headroom)
	copy(out, b)
	return out
}

// FixChecksums recomputes the IPv4 and, for unfragmented TCP, the TCP
// checksum of pkt with gopacket's RFC 1071 code, when the headers allow it.
func FixChecksums(pkt []byte) {
	if len(pkt) < 20 || pkt[0]>>4 != 4 {
		return
	}
	hl := int(pkt[0]&0x0f) * 4
	tot := int(binary.BigEndian.Uint16(pkt[2:4]))
	if hl < 20 || hl > len(pkt) {
		return
	}
	pkt[10], pkt[11] = 0, 0
	binary.BigEndian.PutUint16(pkt[10:], gopacket.FoldChecksum(gopacket.ComputeChecksum(pkt[:hl], 0)))
	if pkt[9] != 6 || binary.BigEndian.Uint16(pkt[6:8])&0x3fff != 0 || tot < hl+20 || tot > len(pkt) {
		return
	}
	seg := pkt[hl:tot]
	seg[16], seg[17] = 0, 0
	ph := make([]byte, 0, 12)
	ph = append(ph, pkt[12:20]...)
	ph = append(ph, 0, 6)
	ph = binary.BigEndian.AppendUint16(ph, uint16(len(seg)))
	binary.BigEndian.PutUint16(seg[16:], gopacket.FoldChecksum(gopacket.ComputeChecksum(seg, gopacket.ComputeChecksum(ph, 0))))
}

// Patched builds a packet, applies edit to its bytes (offsets from the TCP
// options' start), and fixes the checksums: for headers gopacket refuses to
// serialize (malformed option lengths).
func Patched(tb testing.TB, tcp *layers.TCP, edit func(opts []byte)) []byte {
	pkt := Build(tb, IPHdr(), tcp, nil)
	edit(pkt[40:])
	FixChecksums(pkt)
	return pkt
}

// Decoded is a packet as gopacket sees it.
type Decoded struct {
	IP  *layers.IPv4
	TCP *layers.TCP
}

// Decode parses pkt with gopacket and fails unless it decodes cleanly as
// IPv4/TCP with both checksums valid (RFC 1071 receiver test).
func Decode(tb testing.TB, pkt []byte) Decoded {
	tb.Helper()
	p := gopacket.NewPacket(pkt, layers.LayerTypeIPv4, gopacket.DecodeOptions{})
	if el := p.ErrorLayer(); el != nil {
		tb.Fatalf("gopacket: %v", el.Error())
	}
	ip, _ := p.Layer(layers.LayerTypeIPv4).(*layers.IPv4)
	tcp, _ := p.Layer(layers.LayerTypeTCP).(*layers.TCP)
	if ip == nil || tcp == nil {
		tb.Fatalf("gopacket: not packet.IPv4/TCP: %v", p)
	}
	// Decoded layers do not know their network layer until told.
	if err := tcp.SetNetworkLayerForChecksum(ip); err != nil {
		tb.Fatal(err)
	}
	if err, bad := p.VerifyChecksums(); err != nil || len(bad) != 0 {
		tb.Fatalf("gopacket checksum verification: err=%v mismatches=%+v", err, bad)
	}
	if int(ip.Length) != len(pkt) {
		tb.Fatalf("IP total length %d, packet %d bytes", ip.Length, len(pkt))
	}
	return Decoded{ip, tcp}
}

// HostIDs returns the HOST_ID options gopacket found.
func HostIDs(tcp *layers.TCP) []layers.TCPOption {
	var out []layers.TCPOption
	for _, o := range tcp.Options {
		if o.OptionType == HostIDKind && len(o.OptionData) >= 2 && o.OptionData[0] == 0x03 && o.OptionData[1] == 0x48 {
			out = append(out, o)
		}
	}
	return out
}

// OtherOptions returns the options that are neither HOST_ID nor padding,
// up to EOL, as gopacket sees them.
func OtherOptions(tcp *layers.TCP) []layers.TCPOption {
	var out []layers.TCPOption
	for _, o := range tcp.Options {
		switch {
		case o.OptionType == layers.TCPOptionKindEndList:
			return out
		case o.OptionType == layers.TCPOptionKindNop:
		case o.OptionType == HostIDKind && len(o.OptionData) >= 2 && o.OptionData[0] == 0x03 && o.OptionData[1] == 0x48:
		default:
			out = append(out, o)
		}
	}
	return out
}

func OptionsEqual(a, b []layers.TCPOption) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i].OptionType != b[i].OptionType || !bytes.Equal(a[i].OptionData, b[i].OptionData) {
			return false
		}
	}
	return true
}

// WantHostID is the option data RFC 7974 §3 prescribes for id.
func WantHostID(id uint32, idLen int) []byte {
	d := []byte{0x03, 0x48}
	if idLen == 2 {
		return binary.BigEndian.AppendUint16(d, uint16(id))
	}
	return binary.BigEndian.AppendUint32(d, id)
}

// CheckRewritten compares before and after with gopacket: same headers but
// for lengths and checksums, same other options in the same order, same
// payload, and the HOST_ID options given (nil: none).
func CheckRewritten(tb testing.TB, before, after []byte, want []byte) Decoded {
	tb.Helper()
	b, a := Decode(tb, before), Decode(tb, after)
	CheckTCPRewritten(tb, b.TCP, a.TCP, want)
	bi, ai := b.IP, a.IP
	if bi.Id != ai.Id || bi.TTL != ai.TTL || bi.Flags != ai.Flags || !bi.SrcIP.Equal(ai.SrcIP) || !bi.DstIP.Equal(ai.DstIP) || bi.TOS != ai.TOS {
		tb.Errorf("IP header fields changed")
	}
	if int(a.TCP.DataOffset)*4+len(a.TCP.Payload)+int(a.IP.IHL)*4 != len(after) {
		tb.Errorf("data offset %d inconsistent with length %d", a.TCP.DataOffset, len(after))
	}
	// Our own verifiers agree with gopacket's.
	if !packet.TCPChecksumOK(after) || !packet.IPv4ChecksumOK(after) {
		tb.Errorf("own checksum verification fails where gopacket's passes")
	}
	return a
}

// CheckTCPRewritten is what CheckRewritten and CheckRewritten6 check of the
// TCP headers gopacket decoded before (bt) and after (at): no EOL padding,
// the same other options in the same order, the HOST_ID options given (nil:
// none), the same payload and the same header fields.
func CheckTCPRewritten(tb testing.TB, bt, at *layers.TCP, want []byte) {
	tb.Helper()
	if len(at.Padding) != 0 {
		tb.Errorf("rewritten list has EOL padding %x", at.Padding)
	}
	if !OptionsEqual(OtherOptions(bt), OtherOptions(at)) {
		tb.Errorf("options changed:\n before %v\n after  %v", bt.Options, at.Options)
	}
	ids := HostIDs(at)
	switch {
	case want == nil && len(ids) != 0:
		tb.Errorf("HOST_ID options left: %v", ids)
	case want != nil && (len(ids) != 1 || !bytes.Equal(ids[0].OptionData, want)):
		tb.Errorf("HOST_ID options %v, want exactly one with data %x", ids, want)
	}
	if !bytes.Equal(bt.Payload, at.Payload) {
		tb.Errorf("payload changed (%d -> %d bytes)", len(bt.Payload), len(at.Payload))
	}
	if bt.SrcPort != at.SrcPort || bt.DstPort != at.DstPort || bt.Seq != at.Seq || bt.Ack != at.Ack ||
		bt.Window != at.Window || bt.Urgent != at.Urgent || bt.SYN != at.SYN || bt.ACK != at.ACK ||
		bt.PSH != at.PSH || bt.FIN != at.FIN || bt.RST != at.RST {
		tb.Errorf("TCP header fields changed")
	}
}

// FuzzIDLen is the HOST_ID length the Add* fuzz targets' long argument
// picks: 4 bytes or 2.
func FuzzIDLen(long bool) int {
	if long {
		return 4
	}
	return 2
}

// CheckAdded checks what every Add* fuzz target checks first of the result
// n, res, stripped of adding our option to pkt, of which before is a copy
// taken before the call: n within pkt's capacity and res a Result; and when
// nothing was written or stripped, the packet unchanged and, for
// Unchanged, ours already in it (hasOurs, called only then). It returns
// the output, pkt[:n], and whether the packet changed, i.e. whether the
// caller goes on to check the change.
func CheckAdded(t *testing.T, pkt, before []byte, n int, res packet.Result, stripped bool, hasOurs func(after []byte) bool) (after []byte, changed bool) {
	t.Helper()
	if n < 0 || n > cap(pkt) || res >= packet.NumResults {
		t.Fatalf("n=%d res=%v", n, res)
	}
	after = pkt[:n]
	if res != packet.Written && !stripped {
		if n != len(before) || !bytes.Equal(pkt[:len(before)], before) {
			t.Fatalf("%v but packet changed", res)
		}
		if res == packet.Unchanged && !hasOurs(after) {
			t.Fatal("unchanged without our option")
		}
		return after, false
	}
	if stripped && res != packet.Written && res != packet.NoOptionSpace && res != packet.OverMTU && res != packet.NoBufferRoom {
		t.Fatalf("stripped with %v", res)
	}
	return after, true
}

func PV(buf []byte, n int) *packet.View {
	v, _ := packet.Parse(buf, n)
	return &v
}

// PVAt is PV into v: no allocation.
func PVAt(v *packet.View, buf []byte, n int) *packet.View {
	v.Parse(buf, n)
	return v
}

// CheckView fails unless v, the view an encoder got and kept up to date,
// equals a fresh parse of the packet buf[:v.N].
func CheckView(tb testing.TB, v *packet.View, buf []byte) {
	tb.Helper()
	if v.N < 0 || v.N > cap(buf) {
		return
	}
	if fresh, _ := packet.Parse(buf, v.N); fresh != *v {
		tb.Fatalf("view not kept up to date:\n got %+v\nwant %+v", *v, fresh)
	}
}

// Corpus adds the edge cases every fuzzer starts from; each is also mutated
// by the fuzzing engine. add receives the packet bytes.
func Corpus(f *testing.F, add func(pkt []byte)) {
	b := func(tcp *layers.TCP, payload []byte) []byte { return Build(f, IPHdr(), tcp, payload) }
	// Plain SYN, no options.
	add(b(SYNHdr(), nil))
	// Linux SYN: MSS, SACK-permitted, TS, NOP, WS (20 option bytes).
	add(b(SYNHdr(LinuxSYN()...), nil))
	// Forged 2-byte HOST_ID, NOP aligned.
	add(b(SYNHdr(append(LinuxSYN(), ONOP(), ONOP(), OHostID(1, 2))...), nil))
	// Forged 4-byte HOST_ID first.
	add(b(SYNHdr(append([]layers.TCPOption{OHostID(1, 2, 3, 4)}, LinuxSYN()...)...), nil))
	// Options fill 40 bytes, no HOST_ID.
	add(b(SYNHdr(append(LinuxSYN(), OTFO(16), ONOP(), ONOP())...), nil))
	// Options fill 40 bytes with a forged HOST_ID inside.
	add(b(SYNHdr(append(LinuxSYN(), OTFO(12), OHostID(1, 2))...), nil))
	// ExID-only HOST_ID (length 4) and an IPv6-sized one (length 12).
	add(b(SYNHdr(OMSS(1400), OHostID(), OHostID(1, 2, 3, 4, 5, 6, 7, 8)), nil))
	// EOL in the middle, forged HOST_ID after it.
	add(b(SYNHdr(OMSS(1400), OEOL(), OHostID(1, 2, 3, 4)), nil))
	// MSS at an odd offset.
	add(b(SYNHdr(ONOP(), OMSS(1460), OWS(7)), nil))
	// Data segment with odd-length payload.
	add(b(DataHdr(ONOP(), ONOP(), OTS()), []byte("GET / HTTP/1.1\r\nHost: x\r\n\r\n!")))
	// 1500-byte data segment.
	add(b(DataHdr(ONOP(), ONOP(), OTS()), make([]byte, 1448)))
	// Malformed option length 1.
	add(Patched(f, SYNHdr(layers.TCPOption{OptionType: 30, OptionData: []byte{0, 0}}, OHostID(1, 2)), func(o []byte) { o[1] = 1 }))
	// IP options (IHL 6).
	ip := IPHdr()
	ip.Options = []layers.IPv4Option{{OptionType: 1}, {OptionType: 1}, {OptionType: 1}, {OptionType: 0}}
	add(Build(f, ip, SYNHdr(LinuxSYN()...), nil))
	// Not atomic (DF clear), and a first fragment.
	ip = IPHdr()
	ip.Flags = 0
	add(Build(f, ip, SYNHdr(OMSS(1400)), nil))
	ip.Flags = layers.IPv4MoreFragments
	add(Build(f, ip, SYNHdr(OMSS(1400)), nil))
	// Garbage and truncation.
	add(nil)
	add([]byte{0x45})
	add(bytes.Repeat([]byte{0x4f}, 60))
	add(b(SYNHdr(LinuxSYN()...), nil)[:45])
}

// Prepare copies data into a buffer with Headroom and, when fix is set,
// makes Total Length match and recomputes checksums (with gopacket) so that
// the fuzzer reaches the deep paths.
func Prepare(data []byte, fix bool) []byte {
	pkt := make([]byte, len(data), len(data)+packet.Headroom)
	copy(pkt, data)
	if fix && len(pkt) >= 20 && len(pkt) <= 0xffff {
		binary.BigEndian.PutUint16(pkt[2:], uint16(len(pkt)))
		FixChecksums(pkt)
	}
	return pkt
}

func ChecksumsOK(pkt []byte) bool { return packet.IPv4ChecksumOK(pkt) && packet.TCPChecksumOK(pkt) }

// GopacketValid reports whether gopacket, the independent decoder, decodes
// pkt as IPv4/TCP without error and with both checksums valid.
func GopacketValid(pkt []byte) bool {
	p := gopacket.NewPacket(pkt, layers.LayerTypeIPv4, gopacket.DecodeOptions{})
	ip, _ := p.Layer(layers.LayerTypeIPv4).(*layers.IPv4)
	tcp, _ := p.Layer(layers.LayerTypeTCP).(*layers.TCP)
	if p.ErrorLayer() != nil || ip == nil || tcp == nil || int(ip.Length) != len(pkt) {
		return false
	}
	if tcp.SetNetworkLayerForChecksum(ip) != nil {
		return false
	}
	err, bad := p.VerifyChecksums()
	return err == nil && len(bad) == 0
}

// Segment returns a parsed packet's options and payload.
func Segment(t *testing.T, pkt []byte) (opts, payload []byte) {
	ip, tcp, res := packet.ParseIPv4TCP(pkt)
	if res != packet.Unchanged {
		t.Fatalf("does not parse: %v", res)
	}
	return pkt[tcp.Off+20 : tcp.Off+tcp.HdrLen], pkt[tcp.Off+tcp.HdrLen : ip.TotalLen]
}
