package rules

// Privileged tests: each runs in a network namespace of its own (ip netns
// add nrtest-<pid>-<n>, always deleted), never against the host's ruleset.
// They skip without root, unless CI=true, where they fail.

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/nftables"
)

// userTable is a table of someone else's that must stay untouched.
const userTable = `table ip nat {
	chain postrouting {
		type nat hook postrouting priority srcnat; policy accept;
		masquerade
	}
}
`

func requirePrivileged(t *testing.T) {
	t.Helper()
	need := func(why string) {
		if os.Getenv("CI") == "true" {
			t.Fatalf("privileged test cannot run (%s) and CI=true", why)
		}
		t.Skipf("privileged test skipped: %s", why)
	}
	if os.Geteuid() != 0 {
		need("not root")
	}
	for _, bin := range []string{"ip", "nft"} {
		if _, err := exec.LookPath(bin); err != nil {
			need(bin + " not found")
		}
	}
}

type netns struct {
	name string
	fd   *os.File
}

var netnsSeq atomic.Int32

// newNetNS creates a network namespace that is deleted when t ends.
func newNetNS(t *testing.T) *netns {
	t.Helper()
	requirePrivileged(t)
	name := fmt.Sprintf("nrtest-%d-%d", os.Getpid(), netnsSeq.Add(1))
	if out, err := exec.Command("ip", "netns", "add", name).CombinedOutput(); err != nil {
		t.Fatalf("ip netns add %s: %v: %s", name, err, out)
	}
	t.Cleanup(func() {
		if out, err := exec.Command("ip", "netns", "del", name).CombinedOutput(); err != nil {
			t.Errorf("ip netns del %s: %v: %s", name, err, out)
		}
	})
	fd, err := os.Open("/run/netns/" + name)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { fd.Close() })
	return &netns{name: name, fd: fd}
}

func (n *netns) conn(t *testing.T) *nftables.Conn {
	t.Helper()
	c, err := nftables.New(nftables.WithNetNSFd(int(n.fd.Fd())))
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// nft runs nft in the namespace and returns its standard output; nft writes
// its warnings (such as "table ... is managed by iptables-nft") to stderr.
func (n *netns) nft(stdin string, args ...string) (string, error) {
	cmd := exec.Command("ip", append([]string{"netns", "exec", n.name, "nft"}, args...)...)
	if stdin != "" {
		cmd.Stdin = strings.NewReader(stdin)
	}
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return stdout.String(), fmt.Errorf("nft %s: %v: %s", strings.Join(args, " "), err, stderr.String())
	}
	return stdout.String(), nil
}

func (n *netns) mustNft(t *testing.T, stdin string, args ...string) string {
	t.Helper()
	out, err := n.nft(stdin, args...)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// probe runs Probe in a namespace of its own.
func probe(t *testing.T) Mechanism {
	t.Helper()
	n := newNetNS(t)
	m, err := Probe(n.conn(t))
	if err != nil {
		t.Fatalf("Probe: %v", err)
	}
	return m
}

// systemSpecs are applied one after the other in the same namespace, each
// replacing the one before.
func systemSpecs(m Mechanism) []Spec {
	specs := []Spec{
		exampleSpec(),
		{Inside: prefixes("100.64.0.0/24"), QueueNum: 3, QueueCount: 1, Placement: PreNAT, SYN: true},
		{Inside: prefixes("100.64.1.0/24", "100.64.0.0/24", "10.0.0.1/32", "192.168.0.0/16", "0.0.0.0/8"),
			QueueNum: 10, QueueCount: 4, Placement: PostNAT, SYN: true, Track: true, AllTCP: true,
			TrackBit: 0x80000000, DoneBit: 0x40000000, TrackMSS: true},
		{Inside: prefixes("255.255.255.255/32", "1.2.3.4/32"), QueueNum: 65534, QueueCount: 2, Placement: PostNAT,
			Track: true, TrackBit: 1, DoneBit: 0x80000000, TrackPackets: 4},
		{Inside: prefixes("0.0.0.0/0"), QueueCount: 1, Placement: PreNAT, AllTCP: true},
		{Inside: prefixes("100.64.0.0/24"), QueueCount: 1, Placement: PreNAT, SYN: true, UDP: true,
			TrackBit: 0x10000, DoneBit: 0x20000},
		{Inside: prefixes("100.64.0.0/24"), QueueCount: 2, Placement: PostNAT, SYN: true, Track: true, UDP: true,
			TrackBit: 0x10000, DoneBit: 0x20000},
		// IPv6: the ip6 table beside the ip one, then alone (the ip table
		// goes in the same batch), then both again.
		{Inside: prefixes("100.64.0.0/24", "2001:db8:1::/64", "2001:db8:5::9/128"), QueueCount: 1, Placement: PreNAT,
			SYN: true, Track: true, SYN6: true, Track6: true, UDP6: true, TrackBit: 0x10000, DoneBit: 0x20000,
			TrackMSS: true, TrackPackets: 9},
		// Payload insertion: selected flows, alone and beside tracking.
		{Inside: prefixes("100.64.0.0/24"), QueueCount: 1, Placement: PreNAT, SYN: true, Select: true, SelectBit: 0x40000},
		{Inside: prefixes("100.64.0.0/24"), QueueCount: 1, Placement: PreNAT, SYN: true, Select: true, SelectBit: 0x40000,
			SeqAdjHelper: "ftp", SeqAdjBit: 0x80000},
		// The uploads set (uploads.go) in the pureack chain.
		{Inside: prefixes("100.64.0.0/24"), QueueCount: 2, Placement: PreNAT, SYN: true, Select: true, SelectBit: 0x40000,
			SeqAdjHelper: "ftp", SeqAdjBit: 0x80000, UploadSize: 4096, UploadTimeout: 90*time.Minute + 1500*time.Millisecond},
		{Inside: prefixes("100.64.0.0/24", "2001:db8:1::/64"), QueueCount: 2, Placement: PreNAT, SYN: true, Track: true, UDP: true,
			Select: true, SYN6: true, TrackBit: 0x10000, DoneBit: 0x20000, SelectBit: 0x40000},
		{Inside: prefixes("8000::/2", "ffff:ffff::/32", "2001:db8:1::/64"), QueueNum: 7, QueueCount: 3, Placement: PreNAT, SYN6: true},
		{Inside: prefixes("::/0", "0.0.0.0/0"), QueueNum: 1, QueueCount: 1, Placement: PreNAT, AllTCP: true,
			Track6: true, TrackBit: 0x80000000, DoneBit: 1},
		// ip-id in the kernel (ipidmap.go): SYNs of known hosts skip the
		// queue; then beside tracking (SYNs still queued), no timeout.
		{Inside: prefixes("100.64.0.0/24"), QueueCount: 1, Placement: PreNAT, SYN: true,
			IPIDMap: &IPIDMap{Size: 65536, Timeout: time.Hour, SkipKnown: true}},
		{Inside: prefixes("100.64.0.0/24", "2001:db8:1::/64"), QueueCount: 2, Placement: PreNAT, SYN: true, Track: true,
			SYN6: true, TrackBit: 0x10000, DoneBit: 0x20000, IPIDMap: &IPIDMap{Size: 10, Timeout: 90*time.Minute + 1500*time.Millisecond}},
		{Inside: prefixes("100.64.0.0/24"), QueueCount: 1, Placement: PreNAT, SYN: true, UDP: true,
			TrackBit: 0x10000, DoneBit: 0x20000, IPIDMap: &IPIDMap{Size: 1, SkipKnown: true}},
	}
	for i := range specs {
		specs[i].Mechanism = m
	}
	return specs
}

func TestSystemApplyReplaceRemove(t *testing.T) {
	m := probe(t)
	n := newNetNS(t)
	c := n.conn(t)
	n.mustNft(t, userTable, "-f", "-")
	natBefore := n.mustNft(t, "", "list", "table", "ip", "nat")
	before := n.mustNft(t, "", "list", "ruleset")

	check := func(t *testing.T, s Spec) {
		t.Helper()
		got, tables := "", "table ip nat\n"
		for _, f := range s.families() {
			fam := "ip"
			if f.v6 {
				fam = "ip6"
			}
			got += fromListing(n.mustNft(t, "", "list", "table", fam, s.table()))
			tables += "table " + fam + " " + s.table() + "\n"
		}
		if want := Text(s); got != want {
			t.Errorf("nft list table ip/ip6 %s:\n%s\nText:\n%s", s.table(), got, want)
		}
		if got, want := n.mustNft(t, "", "list", "tables"), tables; got != want {
			t.Errorf("nft list tables:\n%s\nwant:\n%s", got, want)
		}
		if got := n.mustNft(t, "", "list", "table", "ip", "nat"); got != natBefore {
			t.Errorf("table ip nat changed:\n%s\nwas:\n%s", got, natBefore)
		}
	}
	for i, s := range systemSpecs(m) {
		t.Run(fmt.Sprint(i), func(t *testing.T) {
			if err := Apply(c, s); err != nil {
				t.Fatal(err)
			}
			check(t, s)
			// Applying the same again replaces the table by an identical one.
			if err := Apply(c, s); err != nil {
				t.Fatal(err)
			}
			check(t, s)
		})
	}

	if err := Remove(c, ""); err != nil {
		t.Fatal(err)
	}
	if got := n.mustNft(t, "", "list", "ruleset"); got != before {
		t.Errorf("after Remove:\n%s\nbefore Apply:\n%s", got, before)
	}
	if err := Remove(c, ""); err != nil {
		t.Errorf("Remove of an absent table: %v", err)
	}
	if got := n.mustNft(t, "", "list", "ruleset"); got != before {
		t.Errorf("after the second Remove:\n%s\nbefore Apply:\n%s", got, before)
	}

	// A table of another name is independent of the default one.
	s := exampleSpec()
	s.Table = "nr_other"
	if err := Apply(c, s); err != nil {
		t.Fatal(err)
	}
	check(t, s)
	if err := Remove(c, "nr_other"); err != nil {
		t.Fatal(err)
	}
	if got := n.mustNft(t, "", "list", "ruleset"); got != before {
		t.Errorf("after Remove(nr_other):\n%s\nbefore:\n%s", got, before)
	}
}

// appliedExample applies exampleSpec, changed by edit, in a namespace of
// its own, with the mechanism this kernel has.
func appliedExample(t *testing.T, edit func(*Spec)) (*netns, *nftables.Conn, Spec) {
	t.Helper()
	m := probe(t)
	n := newNetNS(t)
	c := n.conn(t)
	s := exampleSpec()
	s.Mechanism = m
	if edit != nil {
		edit(&s)
	}
	if err := Apply(c, s); err != nil {
		t.Fatal(err)
	}
	return n, c, s
}

func TestSystemApplyFailureKeepsOldTable(t *testing.T) {
	n, c, s := appliedExample(t, nil)
	m := s.Mechanism
	before := n.mustNft(t, "", "list", "ruleset")
	// The other mechanism fails on a kernel that has only one of them; the
	// whole batch is refused and the old table stays as it was.
	other := s
	other.Mechanism = Native + Compat - m
	other.Inside = prefixes("198.51.100.0/24")
	err := Apply(c, other)
	if err == nil {
		t.Skipf("this kernel accepts both %v and %v", Native, Compat)
	}
	if !strings.HasPrefix(err.Error(), "rules: apply table natreveal: ") {
		t.Errorf("error %q lacks context", err)
	}
	if got := n.mustNft(t, "", "list", "ruleset"); got != before {
		t.Errorf("a refused Apply changed the ruleset:\n%s\nwas:\n%s", got, before)
	}
}

func TestSystemProbe(t *testing.T) {
	n := newNetNS(t)
	n.mustNft(t, userTable, "-f", "-")
	before := n.mustNft(t, "", "list", "ruleset")
	m, err := Probe(n.conn(t))
	if err != nil {
		t.Fatalf("Probe: %v", err)
	}
	// An independent answer: does the kernel take a rule that nft compiles
	// to the native queue expression?
	want := Compat
	if _, err := n.nft("table ip natreveal_check {\n\tchain c {\n\t\tqueue num 0 bypass\n\t}\n}\n", "-c", "-f", "-"); err == nil {
		want = Native
	}
	t.Logf("Probe: %v", m)
	if m != want {
		t.Errorf("Probe = %v, want %v", m, want)
	}
	if got := n.mustNft(t, "", "list", "ruleset"); got != before {
		t.Errorf("Probe left the ruleset changed:\n%s\nwas:\n%s", got, before)
	}
}

// queueStmtRE matches the queue statement that ends each steer rule, in
// either of nft's two syntaxes.
var queueStmtRE = regexp.MustCompile(`(?m) queue (?:num|flags|to) [^\n]*$`)

// fromListing undoes the three places where nft lists a natreveal rule in a
// form it cannot read back: the tag rule's raw `meta mark set @nh,96,32`
// shows as `meta mark set ip saddr` (see markFromSource), the mss
// chain's xor operand gets an `[invalid type]` suffix (mssChainText), and
// the uploads set's typeof lists as a type ending in a zero-length integer
// (uploads.go).
func fromListing(listed string) string {
	listed = strings.ReplaceAll(listed, " [invalid type] return\n", " return\n")
	for _, f := range []family{{}, {v6: true}} {
		listed = strings.ReplaceAll(listed, "\t\t"+f.uploadsListedType()+"\n", "\t\ttypeof "+f.uploadsFields()+"\n")
	}
	return strings.ReplaceAll(listed, "meta mark set ip saddr\n", "meta mark set @nh,96,32\n")
}

// acceptQueues replaces just the queue statements of text by accept, so that
// nft can load every other line on a kernel without the native queue
// expression (nft always compiles `queue` to it).
func acceptQueues(text string) (string, int) {
	n := len(queueStmtRE.FindAllStringIndex(text, -1))
	return queueStmtRE.ReplaceAllString(text, " accept"), n
}

func TestAcceptQueues(t *testing.T) {
	got, n := acceptQueues(Text(exampleSpec()))
	if n != 3 || strings.Contains(got, "queue") || strings.Count(got, " accept\n") != 3 {
		t.Errorf("acceptQueues replaced %d statements:\n%s", n, got)
	}
	if !strings.Contains(got, "\t\ttcp flags syn / fin,syn,rst,ack accept\n") {
		t.Errorf("acceptQueues:\n%s", got)
	}
}

func TestSystemTextLoads(t *testing.T) {
	m := probe(t)
	for _, mech := range []Mechanism{Native, Compat} {
		for i, s := range systemSpecs(mech) {
			t.Run(fmt.Sprintf("%v/%d", mech, i), func(t *testing.T) {
				n := newNetNS(t)
				text := Text(s)
				_, err := n.nft(text, "-c", "-f", "-")
				if m == Native {
					if err != nil {
						t.Errorf("nft -c refused Text on a kernel with the native queue: %v", err)
					}
				} else {
					// nft compiles `queue` to the native expression, which
					// this kernel lacks: the text as is cannot load here.
					if err == nil {
						t.Errorf("nft -c accepted a queue statement although Probe says %v", m)
					} else if !strings.Contains(err.Error(), "Could not process rule") || !strings.Contains(err.Error(), "queue") {
						t.Errorf("nft -c failed for another reason than the queue statement: %v", err)
					}
				}
				// Every line but the queue statements, checked by the kernel.
				accepted, k := acceptQueues(text)
				if want := strings.Count(text, " queue "); k != want || k == 0 {
					t.Fatalf("replaced %d queue statements, want %d", k, want)
				}
				if _, err := n.nft(accepted, "-c", "-f", "-"); err != nil {
					t.Errorf("nft -c refused the text with queue replaced by accept: %v\n%s", err, accepted)
				}
				if got := n.mustNft(t, "", "list", "ruleset"); got != "" {
					t.Errorf("nft -c changed the ruleset:\n%s", got)
				}
			})
		}
	}
}

// Replace renames the table in one batch: the old name's tables go with
// the new one's arrival, and a refused batch leaves the old ones.
func TestSystemReplaceRenames(t *testing.T) {
	n, c, s := appliedExample(t, nil)
	bad := s
	bad.Table = "nr_other"
	bad.QueueCount = 0 // invalid: refused before anything is sent
	if err := Replace(c, bad, s.Table); err == nil {
		t.Fatal("Replace with an invalid spec succeeded")
	}
	if got := n.mustNft(t, "", "list", "tables"); got != "table ip natreveal\n" {
		t.Errorf("after a refused Replace:\n%s", got)
	}
	renamed := s
	renamed.Table = "nr_other"
	if err := Replace(c, renamed, s.Table); err != nil {
		t.Fatal(err)
	}
	if got := n.mustNft(t, "", "list", "tables"); got != "table ip nr_other\n" {
		t.Errorf("after Replace:\n%s", got)
	}
}
