package ipid

import (
	"bytes"
	"encoding/binary"
	"net"
	"testing"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"

	"github.com/natreveal/natreveal/packet"
)

// Packets are built and checked with gopacket, an independent encoder and
// decoder: tests never trust this package to verify itself.

func ipHdr() *layers.IPv4 {
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

func synHdr(opts ...layers.TCPOption) *layers.TCP {
	return &layers.TCP{SrcPort: 40000, DstPort: 443, Seq: 0x01020304, SYN: true, Window: 64240, Options: opts}
}

func dataHdr(opts ...layers.TCPOption) *layers.TCP {
	return &layers.TCP{SrcPort: 40000, DstPort: 443, Seq: 0x01020305, Ack: 0xa0b0c0d0, ACK: true, PSH: true, Window: 502, Options: opts}
}

// synAck is a SYN-ACK with the given options.
func synAck(opts ...layers.TCPOption) *layers.TCP {
	h := synHdr(opts...)
	h.ACK, h.Ack = true, 99
	return h
}

// lowerMSSCase is a TestLowerMSS or TestLowerMSS6 case: lowering the MSS of
// tcp by delta returns want and leaves MSS mss.
type lowerMSSCase struct {
	name  string
	tcp   *layers.TCP
	delta uint16
	want  Result
	mss   uint16
}

func oMSS(v uint16) layers.TCPOption {
	return layers.TCPOption{OptionType: layers.TCPOptionKindMSS, OptionData: binary.BigEndian.AppendUint16(nil, v)}
}
func oNOP() layers.TCPOption { return layers.TCPOption{OptionType: layers.TCPOptionKindNop} }
func oEOL() layers.TCPOption { return layers.TCPOption{OptionType: layers.TCPOptionKindEndList} }
func oSACKPerm() layers.TCPOption {
	return layers.TCPOption{OptionType: layers.TCPOptionKindSACKPermitted}
}
func oWS(s byte) layers.TCPOption {
	return layers.TCPOption{OptionType: layers.TCPOptionKindWindowScale, OptionData: []byte{s}}
}
func oTS() layers.TCPOption {
	return layers.TCPOption{OptionType: layers.TCPOptionKindTimestamps, OptionData: []byte{0, 1, 2, 3, 0, 0, 0, 0}}
}

// oTFO is a TCP Fast Open cookie option (RFC 7413, kind 34) of n cookie bytes.
func oTFO(n int) layers.TCPOption {
	return layers.TCPOption{OptionType: 34, OptionData: bytes.Repeat([]byte{0xc0}, n)}
}

// oHostID is a HOST_ID option (RFC 7974 §3) with the given id bytes.
func oHostID(id ...byte) layers.TCPOption {
	return layers.TCPOption{OptionType: HostIDKind, OptionData: append([]byte{0x03, 0x48}, id...)}
}

// linuxSYN is what Linux sends: MSS, SACK-permitted, timestamps, NOP, window
// scale: 20 option bytes.
func linuxSYN() []layers.TCPOption {
	return []layers.TCPOption{oMSS(1460), oSACKPerm(), oTS(), oNOP(), oWS(7)}
}

// build serializes ip/tcp/payload with gopacket (lengths and checksums
// computed by gopacket) into a buffer with Headroom spare capacity.
func build(tb testing.TB, ip *layers.IPv4, tcp *layers.TCP, payload []byte) []byte {
	tb.Helper()
	if err := tcp.SetNetworkLayerForChecksum(ip); err != nil {
		tb.Fatal(err)
	}
	sb := gopacket.NewSerializeBuffer()
	opts := gopacket.SerializeOptions{FixLengths: true, ComputeChecksums: true}
	if err := gopacket.SerializeLayers(sb, opts, ip, tcp, gopacket.Payload(payload)); err != nil {
		tb.Fatal(err)
	}
	out := make([]byte, len(sb.Bytes()), len(sb.Bytes())+Headroom)
	copy(out, sb.Bytes())
	return out
}

// clone copies b into a new buffer with Headroom spare capacity.
func clone(b []byte) []byte {
	out := make([]byte, len(b), len(b)+Headroom)
	copy(out, b)
	return out
}

// fixChecksums recomputes the IPv4 and, for unfragmented TCP, the TCP
// checksum of pkt with gopacket's RFC 1071 code, when the headers allow it.
func fixChecksums(pkt []byte) {
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

// patched builds a packet, applies edit to its bytes (offsets from the TCP
// options' start), and fixes the checksums: for headers gopacket refuses to
// serialize (malformed option lengths).
func patched(tb testing.TB, tcp *layers.TCP, edit func(opts []byte)) []byte {
	pkt := build(tb, ipHdr(), tcp, nil)
	edit(pkt[40:])
	fixChecksums(pkt)
	return pkt
}

// decoded is a packet as gopacket sees it.
type decoded struct {
	ip  *layers.IPv4
	tcp *layers.TCP
}

// decode parses pkt with gopacket and fails unless it decodes cleanly as
// IPv4/TCP with both checksums valid (RFC 1071 receiver test).
func decode(tb testing.TB, pkt []byte) decoded {
	tb.Helper()
	p := gopacket.NewPacket(pkt, layers.LayerTypeIPv4, gopacket.DecodeOptions{})
	if el := p.ErrorLayer(); el != nil {
		tb.Fatalf("gopacket: %v", el.Error())
	}
	ip, _ := p.Layer(layers.LayerTypeIPv4).(*layers.IPv4)
	tcp, _ := p.Layer(layers.LayerTypeTCP).(*layers.TCP)
	if ip == nil || tcp == nil {
		tb.Fatalf("gopacket: not IPv4/TCP: %v", p)
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
	return decoded{ip, tcp}
}

// hostIDs returns the HOST_ID options gopacket found.
func hostIDs(tcp *layers.TCP) []layers.TCPOption {
	var out []layers.TCPOption
	for _, o := range tcp.Options {
		if o.OptionType == HostIDKind && len(o.OptionData) >= 2 && o.OptionData[0] == 0x03 && o.OptionData[1] == 0x48 {
			out = append(out, o)
		}
	}
	return out
}

// otherOptions returns the options that are neither HOST_ID nor padding,
// up to EOL, as gopacket sees them.
func otherOptions(tcp *layers.TCP) []layers.TCPOption {
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

func optionsEqual(a, b []layers.TCPOption) bool {
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

// wantHostID is the option data RFC 7974 §3 prescribes for id.
func wantHostID(id uint32, idLen int) []byte {
	d := []byte{0x03, 0x48}
	if idLen == 2 {
		return binary.BigEndian.AppendUint16(d, uint16(id))
	}
	return binary.BigEndian.AppendUint32(d, id)
}

// checkRewritten compares before and after with gopacket: same headers but
// for lengths and checksums, same other options in the same order, same
// payload, and the HOST_ID options given (nil: none).
func checkRewritten(tb testing.TB, before, after []byte, want []byte) decoded {
	tb.Helper()
	b, a := decode(tb, before), decode(tb, after)
	checkTCPRewritten(tb, b.tcp, a.tcp, want)
	bi, ai := b.ip, a.ip
	if bi.Id != ai.Id || bi.TTL != ai.TTL || bi.Flags != ai.Flags || !bi.SrcIP.Equal(ai.SrcIP) || !bi.DstIP.Equal(ai.DstIP) || bi.TOS != ai.TOS {
		tb.Errorf("IP header fields changed")
	}
	if int(a.tcp.DataOffset)*4+len(a.tcp.Payload)+int(a.ip.IHL)*4 != len(after) {
		tb.Errorf("data offset %d inconsistent with length %d", a.tcp.DataOffset, len(after))
	}
	// Our own verifiers agree with gopacket's.
	if !TCPChecksumOK(after) || !IPv4ChecksumOK(after) {
		tb.Errorf("own checksum verification fails where gopacket's passes")
	}
	return a
}

// checkTCPRewritten is what checkRewritten and checkRewritten6 check of the
// TCP headers gopacket decoded before (bt) and after (at): no EOL padding,
// the same other options in the same order, the HOST_ID options given (nil:
// none), the same payload and the same header fields.
func checkTCPRewritten(tb testing.TB, bt, at *layers.TCP, want []byte) {
	tb.Helper()
	if len(at.Padding) != 0 {
		tb.Errorf("rewritten list has EOL padding %x", at.Padding)
	}
	if !optionsEqual(otherOptions(bt), otherOptions(at)) {
		tb.Errorf("options changed:\n before %v\n after  %v", bt.Options, at.Options)
	}
	ids := hostIDs(at)
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

// fuzzIDLen is the HOST_ID length the Add* fuzz targets' long argument
// picks: 4 bytes or 2.
func fuzzIDLen(long bool) int {
	if long {
		return 4
	}
	return 2
}

// checkAdded checks what every Add* fuzz target checks first of the result
// n, res, stripped of adding our option to pkt, of which before is a copy
// taken before the call: n within pkt's capacity and res a Result; and when
// nothing was written or stripped, the packet unchanged and, for
// Unchanged, ours already in it (hasOurs, called only then). It returns
// the output, pkt[:n], and whether the packet changed, i.e. whether the
// caller goes on to check the change.
func checkAdded(t *testing.T, pkt, before []byte, n int, res Result, stripped bool, hasOurs func(after []byte) bool) (after []byte, changed bool) {
	t.Helper()
	if n < 0 || n > cap(pkt) || res >= NumResults {
		t.Fatalf("n=%d res=%v", n, res)
	}
	after = pkt[:n]
	if res != Written && !stripped {
		if n != len(before) || !bytes.Equal(pkt[:len(before)], before) {
			t.Fatalf("%v but packet changed", res)
		}
		if res == Unchanged && !hasOurs(after) {
			t.Fatal("unchanged without our option")
		}
		return after, false
	}
	if stripped && res != Written && res != NoOptionSpace && res != OverMTU && res != NoBufferRoom {
		t.Fatalf("stripped with %v", res)
	}
	return after, true
}

func pv(buf []byte, n int) *packet.View {
	v, _ := packet.Parse(buf, n)
	return &v
}

// pvAt is pv into v: no allocation.
func pvAt(v *packet.View, buf []byte, n int) *packet.View {
	v.Parse(buf, n)
	return v
}

// checkView fails unless v, the view an encoder got and kept up to date,
// equals a fresh parse of the packet buf[:v.N].
func checkView(tb testing.TB, v *packet.View, buf []byte) {
	tb.Helper()
	if v.N < 0 || v.N > cap(buf) {
		return
	}
	if fresh, _ := packet.Parse(buf, v.N); fresh != *v {
		tb.Fatalf("view not kept up to date:\n got %+v\nwant %+v", *v, fresh)
	}
}
