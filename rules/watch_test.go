package rules

import (
	"encoding/binary"
	"slices"
	"testing"
	"time"

	"github.com/mdlayher/netlink"
	"golang.org/x/sys/unix"
)

// delTable is an NFT_MSG_DELTABLE notification as the kernel sends it
// (nf_tables_fill_table_info): nfgenmsg, then the table's attributes.
func delTable(family byte, name string) netlink.Message {
	ae := netlink.NewAttributeEncoder()
	ae.ByteOrder = binary.BigEndian
	ae.String(unix.NFTA_TABLE_NAME, name)
	ae.Uint32(unix.NFTA_TABLE_FLAGS, 0)
	ae.Uint32(unix.NFTA_TABLE_USE, 3)
	b, err := ae.Encode()
	if err != nil {
		panic(err)
	}
	return netlink.Message{
		Header: netlink.Header{Type: netlink.HeaderType(unix.NFNL_SUBSYS_NFTABLES<<8 | unix.NFT_MSG_DELTABLE)},
		Data:   append([]byte{family, unix.NFNETLINK_V0, 0, 7}, b...),
	}
}

func TestDeletedTable(t *testing.T) {
	for _, c := range []struct {
		m    netlink.Message
		want string
		ok   bool
	}{
		{delTable(unix.NFPROTO_IPV4, "natreveal"), "ip natreveal", true},
		{delTable(unix.NFPROTO_IPV6, "natreveal"), "ip6 natreveal", true},
		{delTable(unix.NFPROTO_INET, "fw4"), "inet fw4", true},
		// A new table is not a deletion.
		{func() netlink.Message {
			m := delTable(unix.NFPROTO_IPV4, "natreveal")
			m.Header.Type = netlink.HeaderType(unix.NFNL_SUBSYS_NFTABLES<<8 | unix.NFT_MSG_NEWTABLE)
			return m
		}(), "", false},
		// Truncated: no nfgenmsg, no attributes.
		{netlink.Message{Header: delTable(2, "x").Header, Data: []byte{2, 0}}, "", false},
		{netlink.Message{Header: delTable(2, "x").Header, Data: []byte{2, 0, 0, 0}}, "", false},
	} {
		got, ok := deletedTable(c.m)
		if got != c.want || ok != c.ok {
			t.Errorf("deletedTable(%x) = %q, %t; want %q, %t", c.m.Data, got, ok, c.want, c.ok)
		}
	}
}

func FuzzDeletedTable(f *testing.F) {
	f.Add(delTable(unix.NFPROTO_IPV4, "natreveal").Data)
	f.Add([]byte{2, 0, 0, 0, 4, 0, 1, 0})
	f.Fuzz(func(t *testing.T, data []byte) {
		m := netlink.Message{Header: delTable(2, "").Header, Data: data}
		if name, ok := deletedTable(m); ok && name == "" {
			t.Errorf("deletedTable(%x): ok with no name", data)
		}
	})
}

// Against the kernel, in a namespace of its own: a firewall reload's
// `flush ruleset` is seen as the deletion of every table, and Missing names
// natreveal's; Apply's own replacement (delete and add in one batch) leaves
// nothing missing; stop ends the subscription.
func TestSystemWatchDeleted(t *testing.T) {
	n, c, s := appliedExample(t, func(s *Spec) {
		s.Inside = prefixes("100.64.0.0/24", "2001:db8:1::/64")
		s.SYN6 = true
	})
	n.mustNft(t, userTable, "-f", "-")
	if got, want := s.Tables(), []string{"ip natreveal", "ip6 natreveal"}; !slices.Equal(got, want) {
		t.Fatalf("Tables = %q, want %q", got, want)
	}
	deleted, stop, err := WatchDeleted(int(n.fd.Fd()))
	if err != nil {
		t.Fatal(err)
	}
	defer stop()
	next := func() string {
		t.Helper()
		select {
		case name, ok := <-deleted:
			if !ok {
				t.Fatal("subscription ended")
			}
			return name
		case <-time.After(5 * time.Second):
			t.Fatal("no deletion seen")
		}
		return ""
	}

	if err := Apply(c, s); err != nil {
		t.Fatal(err)
	}
	if got := next(); got != "ip natreveal" && got != "ip6 natreveal" {
		t.Errorf("replacing the ruleset: deleted %q, want natreveal's", got)
	}
	if gone, err := Missing(c, s.Tables()); err != nil || len(gone) != 0 {
		t.Errorf("after Apply: Missing = %q, %v; want none", gone, err)
	}
	for len(deleted) > 0 {
		<-deleted
	}

	n.mustNft(t, "flush ruleset\n"+userTable, "-f", "-") // a firewall reload
	seen := map[string]bool{}
	for !seen["ip natreveal"] || !seen["ip6 natreveal"] || !seen["ip nat"] {
		seen[next()] = true
	}
	if gone, err := Missing(c, s.Tables()); err != nil || !slices.Equal(gone, []string{"ip natreveal", "ip6 natreveal"}) {
		t.Errorf("after flush ruleset: Missing = %q, %v; want both natreveal tables", gone, err)
	}

	stop()
	stop()
	select {
	case _, ok := <-deleted:
		for ok {
			_, ok = <-deleted
		}
	case <-time.After(5 * time.Second):
		t.Fatal("stop did not end the subscription")
	}
}
