package rules

// Golden tests: the netlink messages Apply, Remove and Probe send, byte for
// byte, against rules/testdata/*.golden. Each file starts with comment lines
// giving the nft command the batch stands for, then holds one message per
// line in hex (the whole message, nlmsg_seq and nlmsg_pid zeroed), batch
// begin and end included. Regenerate with: go test ./rules -update

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"encoding/hex"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/nftables"
	"github.com/mdlayher/netlink"
	"golang.org/x/sys/unix"
)

var update = flag.Bool("update", false, "rewrite rules/testdata/*.golden")

func isLittleEndian() bool {
	return binary.NativeEndian.Uint16([]byte{1, 0}) == 1
}

// captureConn returns a Conn that records every message it sends as a hex
// line and answers as if the kernel had accepted it (or with fail's error).
func captureConn(t *testing.T, lines *[]string, fail func([]netlink.Message) error) *nftables.Conn {
	t.Helper()
	c, err := nftables.New(nftables.WithTestDial(func(req []netlink.Message) ([]netlink.Message, error) {
		if len(req) == 0 {
			return nil, nil // Flush reading acknowledgements
		}
		for _, m := range req {
			b, err := m.MarshalBinary()
			if err != nil {
				t.Fatal(err)
			}
			clear(b[8:16]) // nlmsg_seq, nlmsg_pid
			*lines = append(*lines, hex.EncodeToString(b))
		}
		if fail != nil {
			if err := fail(req); err != nil {
				return nil, err
			}
		}
		return req, nil
	}))
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// indent prefixes each line of text with "# " and two spaces.
func indent(text string) string {
	var b strings.Builder
	for _, l := range strings.Split(strings.TrimSuffix(text, "\n"), "\n") {
		b.WriteString(strings.TrimRight("#   "+l, " ") + "\n")
	}
	return b.String()
}

// checkGolden compares lines with testdata/name.golden, or writes them with
// header when -update is given.
func checkGolden(t *testing.T, name, header string, lines []string) {
	t.Helper()
	path := filepath.Join("testdata", name+".golden")
	if *update {
		var b bytes.Buffer
		b.WriteString(header)
		for _, l := range lines {
			b.WriteString(l + "\n")
		}
		if err := os.MkdirAll("testdata", 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, b.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	f, err := os.Open(path)
	if err != nil {
		t.Fatalf("%v (run go test ./rules -update to create it)", err)
	}
	defer f.Close()
	var want []string
	sc := bufio.NewScanner(f)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		if l := strings.TrimSpace(sc.Text()); l != "" && !strings.HasPrefix(l, "#") {
			want = append(want, l)
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < max(len(lines), len(want)); i++ {
		switch {
		case i >= len(lines):
			t.Errorf("%s: message %d missing, want %s", path, i, want[i])
		case i >= len(want):
			t.Errorf("%s: extra message %d: %s", path, i, lines[i])
		case lines[i] != want[i]:
			t.Errorf("%s: message %d differs at byte %d:\n got %s\nwant %s", path, i, firstDiff(lines[i], want[i])/2, lines[i], want[i])
		}
	}
}

func firstDiff(a, b string) int {
	for i := range min(len(a), len(b)) {
		if a[i] != b[i] {
			return i
		}
	}
	return min(len(a), len(b))
}

// goldenSpecs are the Specs whose Apply batches are kept in testdata.
var goldenSpecs = []struct {
	name string
	spec Spec
}{
	{"apply-compat-prenat-q2-syn-track-alltcp", exampleSpec()},
	{"apply-compat-prenat-q1-syn", Spec{
		Inside: prefixes("100.64.0.0/24"), QueueNum: 0, QueueCount: 1,
		Mechanism: Compat, Placement: PreNAT, SYN: true,
	}},
	{"apply-native-prenat-q4-syn-track", Spec{
		Inside: prefixes("100.64.0.0/24"), QueueNum: 8, QueueCount: 4,
		Mechanism: Native, Placement: PreNAT, SYN: true, Track: true, TrackMSS: true, TrackPackets: 9,
		TrackBit: 0x00010000, DoneBit: 0x00020000,
	}},
	{"apply-native-postnat-q1-alltcp", Spec{
		Table: "nr0", Inside: prefixes("100.64.0.0/24"), QueueNum: 5, QueueCount: 1,
		Mechanism: Native, Placement: PostNAT, AllTCP: true,
	}},
	{"apply-compat-postnat-q4-syn-track-alltcp", Spec{
		Inside:   prefixes("100.64.1.0/24", "100.64.0.0/24", "198.18.0.7/32", "255.255.255.0/24"),
		QueueNum: 100, QueueCount: 4,
		Mechanism: Compat, Placement: PostNAT, SYN: true, Track: true, AllTCP: true,
		TrackBit: 0x80000000, DoneBit: 0x40000000,
	}},
	{"apply-compat-prenat-q1-syn-track-ipv6", Spec{
		Inside:   prefixes("100.64.0.0/24", "2001:db8:1::/64", "2001:db8:5::9/128"),
		QueueNum: 0, QueueCount: 1,
		Mechanism: Compat, Placement: PreNAT, SYN: true, Track: true, SYN6: true, Track6: true, UDP6: true,
		TrackMSS: true, TrackBit: 0x00010000, DoneBit: 0x00020000,
	}},
	{"apply-native-prenat-q1-syn-select", Spec{
		Inside: prefixes("100.64.0.0/24"), QueueNum: 0, QueueCount: 1,
		Mechanism: Native, Placement: PreNAT, SYN: true, Select: true, SelectBit: 0x00040000,
	}},
	{"apply-native-prenat-q1-syn-select-seqadj", Spec{
		Inside: prefixes("100.64.0.0/24"), QueueNum: 0, QueueCount: 1,
		Mechanism: Native, Placement: PreNAT, SYN: true, Select: true, SelectBit: 0x00040000, SeqAdjHelper: "ftp",
		SeqAdjBit: 0x00080000, UploadSize: 8192, UploadTimeout: 10 * time.Minute,
	}},
	{"apply-compat-prenat-q2-syn-track-select", Spec{
		Inside: prefixes("100.64.0.0/24"), QueueNum: 2, QueueCount: 2,
		Mechanism: Compat, Placement: PreNAT, SYN: true, Track: true, Select: true,
		TrackBit: 0x00010000, DoneBit: 0x00020000, SelectBit: 0x00040000,
	}},
	{"apply-compat-prenat-q1-syn-ipidmap", Spec{
		Inside: prefixes("100.64.0.0/24"), QueueNum: 0, QueueCount: 1,
		Mechanism: Compat, Placement: PreNAT, SYN: true,
		IPIDMap: &IPIDMap{Size: 65536, Timeout: time.Hour, SkipKnown: true},
	}},
	{"apply-native-prenat-q1-syn-closing", Spec{
		Inside: prefixes("100.64.0.0/24"), QueueNum: 0, QueueCount: 1,
		Mechanism: Native, Placement: PreNAT, SYN: true, CloseBit: 0x00040000,
	}},
	{"apply-native-prenat-q2-ipv6-only", Spec{
		Inside:   prefixes("2001:db8:1::/64"),
		QueueNum: 4, QueueCount: 2,
		Mechanism: Native, Placement: PreNAT, SYN6: true,
	}},
}

func specLine(s Spec) string {
	six := ""
	if s.SYN6 || s.Track6 || s.UDP6 {
		six = fmt.Sprintf(" SYN6:%v Track6:%v UDP6:%v", s.SYN6, s.Track6, s.UDP6)
	}
	sel := ""
	if s.Select {
		sel = fmt.Sprintf(" Select:true SelectBit:%#08x", s.SelectBit)
		if s.SeqAdjHelper != "" {
			sel += fmt.Sprintf(" SeqAdjHelper:%q", s.SeqAdjHelper)
		}
		if s.SeqAdjBit != 0 {
			sel += fmt.Sprintf(" SeqAdjBit:%#08x", s.SeqAdjBit)
		}
		if s.UploadSize != 0 {
			sel += fmt.Sprintf(" UploadSize:%d UploadTimeout:%v", s.UploadSize, s.UploadTimeout)
		}
	}
	if s.CloseBit != 0 {
		sel += fmt.Sprintf(" CloseBit:%#08x", s.CloseBit)
	}
	if s.TrackMSS || s.TrackPackets > 0 {
		sel += fmt.Sprintf(" TrackMSS:%v TrackPackets:%d", s.TrackMSS, s.TrackPackets)
	}
	if m := s.IPIDMap; m != nil {
		sel += fmt.Sprintf(" IPIDMap:{Size:%d Timeout:%v SkipKnown:%v}", m.Size, m.Timeout, m.SkipKnown)
	}
	return fmt.Sprintf("Spec{Table:%q Inside:%v QueueNum:%d QueueCount:%d Mechanism:%v Placement:%v SYN:%v Track:%v AllTCP:%v UDP:%v%s TrackBit:%#08x DoneBit:%#08x%s}",
		s.Table, s.Inside, s.QueueNum, s.QueueCount, s.Mechanism, s.Placement, s.SYN, s.Track, s.AllTCP, s.UDP, six, s.TrackBit, s.DoneBit, sel)
}

func TestGoldenApply(t *testing.T) {
	if !isLittleEndian() {
		t.Skip("golden files hold host-byte-order marks and NFQUEUE info of a little-endian host")
	}
	for _, g := range goldenSpecs {
		t.Run(g.name, func(t *testing.T) {
			var lines []string
			c := captureConn(t, &lines, nil)
			if err := Apply(c, g.spec); err != nil {
				t.Fatal(err)
			}
			name := g.spec.table()
			var h strings.Builder
			fmt.Fprintf(&h, "# Apply(%s)\n", specLine(g.spec))
			h.WriteString("# One batch, the same as this nft command:\n")
			h.WriteString("#   nft -f - <<'EOF'\n")
			fmt.Fprintf(&h, "#   add table ip %s\n#   delete table ip %s\n", name, name)
			fmt.Fprintf(&h, "#   add table ip6 %s\n#   delete table ip6 %s\n", name, name)
			h.WriteString(indent(Text(g.spec)))
			h.WriteString("#   EOF\n")
			if g.spec.Mechanism == Compat {
				fmt.Fprintf(&h, "# except that each queue statement is the xtables target of\n#   iptables-nft -j NFQUEUE %s\n", iptablesQueue(g.spec))
			}
			h.WriteString("# Messages: batch begin, new/delete table ip, new/delete table ip6, then per table\n")
			h.WriteString("# new table, new set, set elements, chains, rules; batch end. Hex, nlmsg_seq and\n")
			h.WriteString("# nlmsg_pid zeroed.\n")
			checkGolden(t, g.name, h.String(), lines)
		})
	}
}

func iptablesQueue(s Spec) string {
	q := fmt.Sprintf("--queue-num %d", s.QueueNum)
	if s.QueueCount > 1 {
		q = fmt.Sprintf("--queue-balance %d:%d", s.QueueNum, int(s.QueueNum)+int(s.QueueCount)-1)
	}
	q += " --queue-bypass"
	if s.QueueCount > 1 {
		q += " --queue-cpu-fanout"
	}
	return q
}

func TestGoldenRemove(t *testing.T) {
	var lines []string
	c := captureConn(t, &lines, nil)
	if err := Remove(c, ""); err != nil {
		t.Fatal(err)
	}
	checkGolden(t, "remove", "# Remove(c, \"natreveal\")\n"+
		"# One batch, the same as: nft 'add table ip natreveal; delete table ip natreveal;\n"+
		"#   add table ip6 natreveal; delete table ip6 natreveal'\n"+
		"# (succeeds whether or not the tables exist).\n"+
		"# Hex, nlmsg_seq and nlmsg_pid zeroed.\n", lines)
}

// Close: the closing table of a spec that selects flows; the same batch as
// Remove for one that does not.
func TestGoldenClose(t *testing.T) {
	sel := Spec{Inside: prefixes("100.64.0.0/24"), QueueNum: 0, QueueCount: 1,
		Mechanism: Native, Placement: PreNAT, SYN: true, Select: true, SelectBit: 0x00040000}
	var lines []string
	if err := Close(captureConn(t, &lines, nil), sel); err != nil {
		t.Fatal(err)
	}
	checkGolden(t, "close-select", "# Close("+specLine(sel)+")\n"+
		"# One batch, the same as this nft command:\n"+
		"#   nft -f - <<'EOF'\n"+
		"#   add table ip natreveal\n#   delete table ip natreveal\n"+
		"#   add table ip6 natreveal\n#   delete table ip6 natreveal\n"+
		indent(ClosingText(sel))+"#   EOF\n"+
		"# Hex, nlmsg_seq and nlmsg_pid zeroed.\n", lines)

	// A run that selects nothing but keeps resetting an earlier run's
	// flows (CloseBit) leaves the same table.
	var kept []string
	earlier := sel
	earlier.Select, earlier.SelectBit, earlier.CloseBit = false, 0, sel.SelectBit
	if err := Close(captureConn(t, &kept, nil), earlier); err != nil {
		t.Fatal(err)
	}
	if strings.Join(kept, "\n") != strings.Join(lines, "\n") || ClosingText(earlier) != ClosingText(sel) {
		t.Errorf("Close with CloseBit differs from Close with Select")
	}

	var closed, removed []string
	plain := sel
	plain.Select, plain.SelectBit = false, 0
	if err := Close(captureConn(t, &closed, nil), plain); err != nil {
		t.Fatal(err)
	}
	if err := Remove(captureConn(t, &removed, nil), ""); err != nil {
		t.Fatal(err)
	}
	if strings.Join(closed, "\n") != strings.Join(removed, "\n") || ClosingText(plain) != "" {
		t.Errorf("Close of a spec that selects nothing is not Remove:\n%v\n%v", closed, removed)
	}
}

func TestGoldenProbe(t *testing.T) {
	if !isLittleEndian() {
		t.Skip("golden file holds the NFQUEUE info of a little-endian host")
	}
	var lines []string
	// A kernel without nft_queue: the native batch fails, the compat one works.
	c := captureConn(t, &lines, func(req []netlink.Message) error {
		if hasExpr(req, "queue") {
			return unix.ENOENT
		}
		return nil
	})
	m, err := Probe(c)
	if err != nil || m != Compat {
		t.Fatalf("Probe = %v, %v", m, err)
	}
	checkGolden(t, "probe", "# Probe on a kernel without nft_queue: two batches.\n"+
		"# The first, refused (ENOENT), is: nft -f - <<'EOF'\n"+
		"#   add table ip natreveal_probe\n"+
		"#   add chain ip natreveal_probe probe\n"+
		"#   add rule ip natreveal_probe probe queue flags bypass to 0\n"+
		"#   delete table ip natreveal_probe\n"+
		"#   EOF\n"+
		"# the second is the same with the rule of\n"+
		"#   iptables-nft -j NFQUEUE --queue-num 0 --queue-bypass\n"+
		"# Hex, nlmsg_seq and nlmsg_pid zeroed.\n", lines)
}
