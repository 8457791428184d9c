package test

import (
	"encoding/json"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/natreveal/natreveal/lab"
	"github.com/natreveal/natreveal/portset"
)

// A firewall reload while natreveal runs: Debian's nftables.conf, and many
// scripts, begin with `flush ruleset`, which deletes natreveal's tables with
// everyone's. The daemon puts them back at once and says so: new
// connections carry their HOST_ID through the tcp-option steer rules and
// take their port-set block, and kept-alive http-header connections whose
// offset the daemon holds go on being translated.
func TestFirewallReloadRestoresTables(t *testing.T) {
	l := payloadLab(t)
	startHTTP(t, l)
	s := listen(t, l)
	pol, err := (portset.Policy{
		Inside: []netip.Prefix{netip.MustParsePrefix(lab.InsidePrefix)},
		Public: []netip.Addr{netip.MustParseAddr(lab.NATPublic)}, BlockSize: 256,
	}).Normalize()
	if err != nil {
		t.Fatal(err)
	}
	polFile := filepath.Join(t.TempDir(), "policy.json")
	b, _ := json.Marshal(pol)
	if err := os.WriteFile(polFile, b, 0o644); err != nil {
		t.Fatal(err)
	}
	cfg := writeConfig(t, `inside: [100.64.0.0/24]
methods: [tcp-option, http-header, port-set]
http_header:
  ports: [80]
  fields: [x-forwarded-for, forwarded]
port_set:
  policy_file: `+polFile+"\n")
	d := startDaemon(t, l, "--config", cfg)
	ks := dialKeptHTTP(t, l, 2, 2) // two insertions each: the offset moved
	list := func(family, table string) string {
		out, err := l.Exec(l.NAT, "nft", "list", "table", family, table)
		if err != nil {
			return ""
		}
		return out
	}
	portsetBefore := list("ip", "natreveal_portset")
	if portsetBefore == "" || list("ip", "natreveal") == "" {
		t.Fatalf("tables not installed:\n%s", d.Output())
	}
	// block checks that a connection of c1's (100.64.0.2) carried its
	// HOST_ID and took a port of its RFC 7422 block.
	block := func(label string) {
		t.Helper()
		seen := connect(t, s, l.C1, label, 0)
		if !seen.HasOption || seen.OptionID != 2 {
			t.Errorf("%s: server saw HOST_ID option %t %d, want 2", label, seen.HasOption, seen.OptionID)
		}
		ap, err := netip.ParseAddrPort(seen.Src)
		if err != nil {
			t.Fatal(err)
		}
		if got, ok := pol.Lookup(ap); !ok || got != netip.MustParseAddr("100.64.0.2") {
			t.Errorf("%s: source %s is not in 100.64.0.2's block (lookup: %v %t)", label, ap, got, ok)
		}
	}
	block("before-reload")

	const restored = "was deleted while natreveal runs (a firewall reload?): installed again"
	for i := 1; i <= 2; i++ {
		// The reload: one transaction, as `nft -f /etc/nftables.conf`.
		cmd := "flush ruleset\n" + lab.UserNAT
		if err := l.Nft(l.NAT, cmd); err != nil {
			t.Fatal(err)
		}
		d.waitLog(t, "table ip natreveal "+restored, i)
		d.waitLog(t, "port-set: table ip natreveal_portset "+restored, i)
		if got := list("ip", "natreveal_portset"); got != portsetBefore {
			t.Errorf("reload %d: table ip natreveal_portset is\n%s\nwas\n%s", i, got, portsetBefore)
		}
		if !strings.Contains(list("ip", "natreveal"), "chain steer") {
			t.Errorf("reload %d: table ip natreveal lacks its steer chain:\n%s", i, list("ip", "natreveal"))
		}
		block("after-reload-" + strconv.Itoa(i))
		for j, k := range ks {
			if got, err := k.request(10 * time.Second); err != nil || !strings.HasPrefix(got, keptWant) {
				t.Errorf("reload %d, kept connection %d: %q %v; want %q", i, j, got, err, keptWant)
			}
		}
	}
	if n := d.stop(t)["tables-restored"]; n != 4 {
		t.Errorf("tables-restored = %d, want 4 (two tables, two reloads)", n)
	}
}
