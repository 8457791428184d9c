package conntrack

import (
	"bytes"
	"encoding/hex"
	"net/netip"
	"strings"
	"testing"
)

// The ctnetlink updates, byte for byte (host byte order of the netlink
// headers: little endian, as on the machines the tests run on).
func TestSeqAdjMessages(t *testing.T) {
	src := netip.MustParseAddrPort("100.64.0.2:40000")
	dst := netip.MustParseAddrPort("198.51.100.1:7000")
	// CTA_TUPLE_ORIG (1|NLA_F_NESTED), 52 bytes: CTA_TUPLE_IP {src, dst},
	// CTA_TUPLE_PROTO {proto 6, ports 40000 (0x9c40), 7000 (0x1b58)}.
	tuple := "3400 0180" +
		"1400 0180 0800 0100 64400002 0800 0200 c6336401" +
		"1c00 0280 0500 0100 06000000 0600 0200 9c400000 0600 0300 1b580000"
	nlhdr := func(l, typ string) string {
		// length, type IPCTNL_MSG_CT_NEW (subsys 1 << 8 | 0), flags
		// REQUEST|ACK, seq 7, pid 0; nfgenmsg AF_INET, v0, res_id 0.
		return l + "000000" + typ + "0500 07000000 00000000 02000000"
	}
	cases := []struct {
		name  string
		attrs func() ([]byte, error)
		want  string
	}{
		{"seqadj", func() ([]byte, error) { return seqAdjAttrs(src, dst, 0x01020304, -3) }, nlhdr("64", "0001") + tuple +
			// CTA_SEQ_ADJ_ORIG (15|NESTED): position, offset before, after (-3), big endian.
			"1c00 0f80 0800 0100 01020304 0800 0200 fffffffd 0800 0300 fffffffd"},
		{"drop helper", func() ([]byte, error) { return dropHelperAttrs(src, dst) }, nlhdr("54", "0001") + tuple +
			// CTA_HELP (5|NESTED) {CTA_HELP_NAME ""}: the NUL alone, padded.
			"0c00 0580 0500 0100 00000000"},
		{"clear mark", func() ([]byte, error) { return markAttrs(src, dst, 0, 0x00040000) }, nlhdr("58", "0001") + tuple +
			// CTA_MARK 0, CTA_MARK_MASK 0x00040000.
			"0800 0800 00000000 0800 1500 00040000"},
		{"set mark", func() ([]byte, error) { return markAttrs(src, dst, 0x00080000, 0x00080000) }, nlhdr("58", "0001") + tuple +
			// CTA_MARK 0x00080000, CTA_MARK_MASK 0x00080000: mark & ^bits ^ bits.
			"0800 0800 00080000 0800 1500 00080000"},
	}
	for _, c := range cases {
		a, err := c.attrs()
		if err != nil {
			t.Fatal(err)
		}
		got := message(ipctnlMsgCtNew, 7, a)
		want, err := hex.DecodeString(strings.ReplaceAll(c.want, " ", ""))
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, want) {
			t.Errorf("%s:\n got %x\nwant %x", c.name, got, want)
		}
	}
}

// CountMarked's dump request, byte for byte: length 36, type
// IPCTNL_MSG_CT_GET (subsys 1 << 8 | 1), flags REQUEST|DUMP (0x301), seq 7,
// pid 0; nfgenmsg AF_INET; CTA_MARK and CTA_MARK_MASK 0x00040000, big
// endian.
func TestCountRequest(t *testing.T) {
	got, err := countRequest(7, 0x00040000)
	if err != nil {
		t.Fatal(err)
	}
	want, _ := hex.DecodeString(strings.ReplaceAll("24000000 0101 0103 07000000 00000000 02000000"+
		"0800 0800 00040000 0800 1500 00040000", " ", ""))
	if !bytes.Equal(got, want) {
		t.Errorf("\n got %x\nwant %x", got, want)
	}
}
