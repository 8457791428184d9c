package rules

import (
	"fmt"
	"net/netip"
	"strings"
	"testing"

	"github.com/natreveal/natreveal/portset"
)

// portSetSpecs: the lab's /24 policy cut to its first hosts, a two-address
// staggered plan with an interface and two-port blocks.
func portSetSpecs(t *testing.T) []struct {
	name string
	spec PortSetSpec
} {
	t.Helper()
	lab := portset.Policy{
		Inside: []netip.Prefix{netip.MustParsePrefix("100.64.0.0/29")},
		Public: []netip.Addr{netip.MustParseAddr("192.0.2.1")}, BlockSize: 256,
	}
	stag := portset.Policy{
		Inside: []netip.Prefix{netip.MustParsePrefix("100.64.1.0/30"), netip.MustParsePrefix("255.255.255.255/32")},
		Public: []netip.Addr{netip.MustParseAddr("192.0.2.1"), netip.MustParseAddr("192.0.2.7")},
		Ports:  portset.PortRange{First: 5000, Last: 5009}, BlockSize: 2, Assignment: portset.Staggered,
		IncludeBoundary: true,
	}
	for _, p := range []portset.Policy{lab, stag} {
		if err := p.Validate(); err != nil {
			t.Fatal(err)
		}
	}
	return []struct {
		name string
		spec PortSetSpec
	}{
		{"portset-lab", PortSetSpec{Blocks: lab.Plan()}},
		{"portset-staggered-oif", PortSetSpec{Table: "ps1", Blocks: stag.Plan(), OutIface: "pub"}},
	}
}

func TestPortSetText(t *testing.T) {
	s := portSetSpecs(t)[0].spec
	want := `table ip natreveal_portset {
	map blocks {
		type ipv4_addr : interval ipv4_addr . inet_service
		flags interval
		elements = { 100.64.0.1 : 192.0.2.1 . 1024-1279, 100.64.0.2 : 192.0.2.1 . 1280-1535,
			     100.64.0.3 : 192.0.2.1 . 1536-1791, 100.64.0.4 : 192.0.2.1 . 1792-2047,
			     100.64.0.5 : 192.0.2.1 . 2048-2303, 100.64.0.6 : 192.0.2.1 . 2304-2559 }
	}

	chain postrouting {
		type nat hook postrouting priority srcnat - 5; policy accept;
		ip protocol tcp snat ip to ip saddr map @blocks
		ip protocol udp snat ip to ip saddr map @blocks
	}
}
`
	if got := PortSetText(s); got != want {
		t.Errorf("PortSetText:\n%s\nwant:\n%s", got, want)
	}
	for _, bad := range []PortSetSpec{
		{},
		{Table: "a b", Blocks: s.Blocks},
		{Blocks: append(s.Blocks[:1:1], s.Blocks[0])},
		{Blocks: s.Blocks, OutIface: "name-longer-than-15"},
		{Blocks: []portset.Block{{Inside: netip.MustParseAddr("2001:db8::1"), Public: netip.MustParseAddr("192.0.2.1"), Ports: portset.PortRange{First: 1, Last: 2}}}},
	} {
		if err := bad.Validate(); err == nil {
			t.Errorf("Validate(%+v) accepted", bad)
		}
		if !strings.HasPrefix(PortSetText(bad), "# natreveal: invalid") {
			t.Errorf("PortSetText of an invalid spec: %q", PortSetText(bad))
		}
	}
}

func TestGoldenPortSet(t *testing.T) {
	for _, g := range portSetSpecs(t) {
		t.Run(g.name, func(t *testing.T) {
			var lines []string
			c := captureConn(t, &lines, nil)
			if err := ApplyPortSet(c, g.spec); err != nil {
				t.Fatal(err)
			}
			name := g.spec.table()
			var h strings.Builder
			fmt.Fprintf(&h, "# ApplyPortSet(%d blocks, table %q, oifname %q)\n", len(g.spec.Blocks), name, g.spec.OutIface)
			h.WriteString("# One batch, the same as this nft command:\n#   nft -f - <<'EOF'\n")
			fmt.Fprintf(&h, "#   add table ip %s\n#   delete table ip %s\n", name, name)
			h.WriteString(indent(PortSetText(g.spec)))
			h.WriteString("#   EOF\n")
			h.WriteString("# Messages: batch begin, new/delete table, new table, new set (user data as nft\n")
			h.WriteString("# sends it), set elements, chain, rules; batch end. Hex, nlmsg_seq and nlmsg_pid zeroed.\n")
			checkGolden(t, g.name, h.String(), lines)
		})
	}
	var lines []string
	c := captureConn(t, &lines, nil)
	if err := RemovePortSet(c, ""); err != nil {
		t.Fatal(err)
	}
	checkGolden(t, "portset-remove", "# RemovePortSet(c, \"\"): nft 'add table ip natreveal_portset; delete table ip natreveal_portset'\n"+
		"# Hex, nlmsg_seq and nlmsg_pid zeroed.\n", lines)
}

// The kernel takes the table, nft lists exactly PortSetText (and can read
// it back), the user's masquerade stays, and RemovePortSet leaves only it.
func TestSystemPortSet(t *testing.T) {
	n := newNetNS(t)
	n.mustNft(t, userTable, "-f", "-")
	c := n.conn(t)
	for _, g := range portSetSpecs(t) {
		if err := ApplyPortSet(c, g.spec); err != nil {
			t.Fatalf("%s: %v", g.name, err)
		}
		// Twice: the second replaces the first atomically.
		if err := ApplyPortSet(c, g.spec); err != nil {
			t.Fatalf("%s again: %v", g.name, err)
		}
		got := n.mustNft(t, "", "list", "table", "ip", g.spec.table())
		if want := PortSetText(g.spec); got != want {
			t.Errorf("%s: nft lists:\n%s\nPortSetText:\n%s", g.name, got, want)
		}
		n.mustNft(t, "", "delete", "table", "ip", g.spec.table())
		n.mustNft(t, got, "-f", "-") // nft reads its own listing back
		if err := RemovePortSet(c, g.spec.table()); err != nil {
			t.Fatal(err)
		}
	}
	if got := n.mustNft(t, "", "list", "ruleset"); got != userTable {
		t.Errorf("ruleset after RemovePortSet:\n%s\nwant only the user's table:\n%s", got, userTable)
	}
	if err := RemovePortSet(c, ""); err != nil {
		t.Errorf("removing a missing table: %v", err)
	}
}
