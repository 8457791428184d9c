package guard

// Privileged tests: each runs in a network namespace of its own, made and
// deleted here. Outside CI they skip without root; in CI (CI=true) that is a
// failure.

import (
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/nftables"
	"github.com/google/nftables/expr"
)

var netnsSeq atomic.Int32

// testNS makes a network namespace and returns its name and an nftables
// connection into it.
func testNS(t *testing.T) (string, *nftables.Conn) {
	t.Helper()
	if os.Geteuid() != 0 {
		if os.Getenv("CI") == "true" {
			t.Fatal("CI=true: guard's system tests need root")
		}
		t.Skip("needs root")
	}
	name := fmt.Sprintf("nrguard-%d-%d", os.Getpid(), netnsSeq.Add(1))
	if out, err := exec.Command("ip", "netns", "add", name).CombinedOutput(); err != nil {
		t.Fatalf("ip netns add: %v: %s", err, out)
	}
	t.Cleanup(func() {
		if out, err := exec.Command("ip", "netns", "del", name).CombinedOutput(); err != nil {
			t.Errorf("ip netns del %s: %v: %s", name, err, out)
		}
	})
	f, err := os.Open("/run/netns/" + name)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	c, err := nftables.New(nftables.WithNetNSFd(int(f.Fd())))
	if err != nil {
		t.Fatal(err)
	}
	return name, c
}

func nftList(t *testing.T, ns string, args ...string) string {
	t.Helper()
	out, err := exec.Command("ip", append([]string{"netns", "exec", ns, "nft"}, args...)...).CombinedOutput()
	if err != nil {
		t.Fatalf("nft %s: %v: %s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

func TestSystemInstallBlockListRemove(t *testing.T) {
	ns, c := testNS(t)
	// Someone else's table, which guard must leave as it is.
	nftList(t, ns, "add table ip theirs; add chain ip theirs c { type filter hook input priority 0; }; add rule ip theirs c tcp dport 22 counter accept")
	before := nftList(t, ns, "list ruleset")

	cfg := Config{NAT: []netip.Prefix{netip.MustParsePrefix("192.0.2.0/24"), netip.MustParsePrefix("2001:db8:2::/64")},
		Limit: &Rate{N: 10, Unit: expr.LimitTimeSecond, Burst: 10}}
	if err := Install(c, cfg, false); err != nil {
		t.Fatalf("install: %v", err)
	}
	text := nftList(t, ns, "list table inet natreveal_guard")
	for _, want := range []string{"set block_tcpopt4_2", "set block_ipid4_2", "set block_ipopt4_4", "set block_dstopt6_2",
		"set meter_tcpopt6_4", "tcp option @253,16,16 840", "ip saddr @nat4", "ip6 saddr @nat6", "limit rate over 10/second"} {
		if !strings.Contains(text, want) {
			t.Errorf("table lacks %q:\n%s", want, text)
		}
	}
	var ie *InputError
	if err := Install(c, cfg, false); err == nil || !asInput(err, &ie) {
		t.Errorf("second install: %v, want an input error", err)
	}

	a := netip.MustParseAddr("192.0.2.1")
	if err := Block(c, "", Pair{a, 2}, 0); err != nil {
		t.Fatalf("block: %v", err)
	}
	if err := Block(c, "", Pair{a, 0x10002}, 2*time.Second); err != nil {
		t.Fatalf("block 32-bit: %v", err)
	}
	if err := Block(c, "", Pair{netip.MustParseAddr("198.51.100.1"), 2}, 0); err == nil || !asInput(err, &ie) {
		t.Errorf("block outside --nat: %v, want an input error", err)
	}
	if err := Block(c, "", Pair{netip.MustParseAddr("2001:db8:2::1"), 7}, 0); err != nil {
		t.Fatalf("block v6: %v", err)
	}
	l, err := List(c, "", time.Now())
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]bool{}
	for _, e := range l {
		got[fmt.Sprintf("%s %s %s %v", e.Addr, e.HostID, e.Method, e.Expires != nil)] = true
	}
	for _, want := range []string{
		"192.0.2.1 0x0002 tcp-option false", "192.0.2.1 0x00000002 tcp-option false", "192.0.2.1 0x0002 ip-id false",
		"192.0.2.1 0x0002 ip-option false", "192.0.2.1 0x00000002 ip-option false",
		"192.0.2.1 0x00010002 tcp-option true", "192.0.2.1 0x00010002 ip-option true",
		"2001:db8:2::1 0x0007 tcp-option false", "2001:db8:2::1 0x0007 dest-opt false",
	} {
		if !got[want] {
			t.Errorf("list lacks %q: %v", want, got)
		}
	}
	if got["192.0.2.1 0x10002 ip-id true"] {
		t.Error("a 32-bit HOST_ID went into the 16-bit ip-id set")
	}
	if err := Unblock(c, "", Pair{a, 2}); err != nil {
		t.Fatalf("unblock: %v", err)
	}
	if err := Unblock(c, "", Pair{a, 2}); err == nil || !asInput(err, &ie) {
		t.Errorf("second unblock: %v, want an input error", err)
	} else if want := "192.0.2.1 0x0002 is not blocked"; err.Error() != want {
		t.Errorf("second unblock: %q, want %q", err, want)
	}
	time.Sleep(2500 * time.Millisecond)
	l, err = List(c, "", time.Now())
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range l {
		if e.Addr == a {
			t.Errorf("after unblock and expiry, still listed: %+v", e)
		}
	}
	// --replace keeps the pairs.
	if err := Install(c, cfg, true); err != nil {
		t.Fatalf("install --replace: %v", err)
	}
	if l, _ := List(c, "", time.Now()); len(l) != 4 {
		t.Errorf("after replace: %d entries, want the IPv6 pair in its 4 sets: %+v", len(l), l)
	}
	if err := Remove(c, ""); err != nil {
		t.Fatalf("remove: %v", err)
	}
	if after := nftList(t, ns, "list ruleset"); after != before {
		t.Errorf("ruleset after remove:\n%s\nwant as before:\n%s", after, before)
	}
	if err := Remove(c, ""); err != ErrNotInstalled {
		t.Errorf("second remove: %v, want ErrNotInstalled", err)
	}
}

func asInput(err error, target **InputError) bool {
	ie, ok := err.(*InputError)
	if ok {
		*target = ie
	}
	return ok
}
