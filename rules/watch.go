package rules

import (
	"encoding/binary"
	"fmt"
	"sync"

	"github.com/google/nftables"
	"github.com/mdlayher/netlink"
	"golang.org/x/sys/unix"
)

// Tables names the tables Apply installs for s, as nft writes them
// ("ip natreveal", "ip6 natreveal").
func (s Spec) Tables() []string {
	var out []string
	for _, f := range s.families() {
		if f.v6 {
			out = append(out, "ip6 "+s.table())
		} else {
			out = append(out, "ip "+s.table())
		}
	}
	return out
}

// TableName names the port-set table ApplyPortSet installs.
func (s PortSetSpec) TableName() string { return "ip " + s.table() }

// Missing returns those of tables (as Tables names them) that the kernel
// does not hold, in one dump of the namespace's tables.
func Missing(c *nftables.Conn, tables []string) ([]string, error) {
	have, err := c.ListTables()
	if err != nil {
		return nil, fmt.Errorf("rules: listing tables: %w", err)
	}
	present := make(map[string]bool, len(have))
	for _, t := range have {
		present[tableName(t)] = true
	}
	var out []string
	for _, t := range tables {
		if !present[t] {
			out = append(out, t)
		}
	}
	return out, nil
}

func tableName(t *nftables.Table) string {
	switch t.Family {
	case nftables.TableFamilyIPv4:
		return "ip " + t.Name
	case nftables.TableFamilyIPv6:
		return "ip6 " + t.Name
	case nftables.TableFamilyINet:
		return "inet " + t.Name
	}
	return fmt.Sprintf("family-%d %s", t.Family, t.Name)
}

// WatchDeleted subscribes to the namespace's nftables changes
// (NFNLGRP_NFTABLES) and sends the name of every table deleted (as Tables
// names them), by anyone: a firewall reload's `flush ruleset`, `nft delete
// table`, natreveal's own batches (which add the table back in the same
// transaction). Each name comes once the transaction that deleted it has
// committed, with the rest of its changes. The channel closes when the subscription fails (the kernel
// dropped events it could not buffer: some deletions may be lost) or stop
// is called; stop is safe to call more than once. netns is a network
// namespace's file descriptor, or 0 for the caller's.
//
// It reads the messages itself rather than through nftables.Monitor, which
// decodes every kind of object (about 100 KB of the router binary) and
// leaves its socket open once an error has ended it.
func WatchDeleted(netns int) (deleted <-chan string, stop func(), err error) {
	c, err := netlink.Dial(unix.NETLINK_NETFILTER, &netlink.Config{NetNS: netns})
	if err != nil {
		return nil, nil, fmt.Errorf("rules: watching nftables: %w", err)
	}
	if err := c.JoinGroup(unix.NFNLGRP_NFTABLES); err != nil {
		c.Close()
		return nil, nil, fmt.Errorf("rules: watching nftables: %w", err)
	}
	out := make(chan string, 16)
	go func() {
		defer close(out)
		var pending []string // deleted by the transaction not yet committed
		for {
			msgs, err := c.Receive()
			if err != nil {
				return // closed by stop, or ENOBUFS: events lost
			}
			for _, m := range msgs {
				if name, ok := deletedTable(m); ok {
					pending = append(pending, name)
					continue
				}
				// A transaction's notifications end with its new generation
				// (nf_tables_commit): only then is what it deleted and
				// added, both, in place.
				if m.Header.Type != netlink.HeaderType(unix.NFNL_SUBSYS_NFTABLES<<8|unix.NFT_MSG_NEWGEN) {
					continue
				}
				for _, name := range pending {
					select {
					case out <- name:
					default: // the reader checks every table on any deletion
					}
				}
				pending = pending[:0]
			}
		}
	}()
	var once sync.Once
	return out, func() { once.Do(func() { c.Close() }) }, nil
}

// deletedTable reads an NFT_MSG_DELTABLE notification: nfgenmsg (family,
// version, resource id), then the table's attributes.
func deletedTable(m netlink.Message) (string, bool) {
	if m.Header.Type != netlink.HeaderType(unix.NFNL_SUBSYS_NFTABLES<<8|unix.NFT_MSG_DELTABLE) || len(m.Data) < 4 {
		return "", false
	}
	ad, err := netlink.NewAttributeDecoder(m.Data[4:])
	if err != nil {
		return "", false
	}
	ad.ByteOrder = binary.BigEndian
	for ad.Next() {
		if ad.Type() == unix.NFTA_TABLE_NAME {
			return tableName(&nftables.Table{Family: nftables.TableFamily(m.Data[0]), Name: ad.String()}), true
		}
	}
	return "", false
}
