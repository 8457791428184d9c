package rules

import (
	"fmt"

	"github.com/google/nftables"
	"github.com/google/nftables/expr"
	"golang.org/x/sys/unix"
)

// Apply installs the ruleset of s on c in one batch and flushes it. The batch
// adds and deletes the table of each family (ip and ip6), then adds the
// tables s needs again with all their contents: older copies are replaced
// atomically (packets see either the old ruleset or the new one, never
// none), missing ones are simply created, and a leftover table of a family
// s no longer uses goes.
//
// Apply flushes c: commands that were already buffered on c go into the same
// batch. c must not be used by another goroutine meanwhile.
func Apply(c *nftables.Conn, s Spec) error { return apply(c, s, nil) }

// Replace is Apply that also deletes the tables named old (ip and ip6; ""
// is DefaultTable) in the same batch, when they are not s's: a reload that
// renames the table leaves neither both tables nor none, whatever fails.
func Replace(c *nftables.Conn, s Spec, old string) error {
	o := Spec{Table: old}.table()
	if o == s.table() {
		return apply(c, s, nil)
	}
	return apply(c, s, tables(o))
}

func apply(c *nftables.Conn, s Spec, alsoGone []*nftables.Table) error {
	fail := func(err error) error { return fmt.Errorf("rules: apply table %s: %w", s.table(), err) }
	if err := s.validate(); err != nil {
		return fail(fmt.Errorf("invalid spec: %w", err))
	}
	rss := build(s)
	if s.Placement == PostNAT {
		// Check the ct workaround on a scratch connection before anything is
		// buffered on c, so that a failure leaves c untouched.
		if err := ctWorkaroundOK(); err != nil {
			return fail(err)
		}
	}

	for _, t := range append(tables(s.table()), alsoGone...) {
		c.AddTable(t)
		c.DelTable(t)
	}
	for _, rs := range rss {
		c.AddTable(rs.Table)
		for _, o := range rs.Objs {
			c.AddObj(o)
		}
		if err := c.AddSet(rs.Set, rs.Elements); err != nil {
			return fail(fmt.Errorf("set %s: %w", rs.Set.Name, err))
		}
		if rs.Map != nil {
			if err := addHostIDMap(c, rs.Map); err != nil {
				return fail(fmt.Errorf("map %s: %w", rs.Map.Name, err))
			}
		}
		if rs.Uploads != nil {
			if err := c.AddSet(rs.Uploads, nil); err != nil {
				return fail(fmt.Errorf("set %s: %w", rs.Uploads.Name, err))
			}
		}
		for _, ch := range rs.Chains {
			c.AddChain(ch)
		}
		for _, r := range rs.Rules {
			if err := addRule(c, r); err != nil {
				return fail(fmt.Errorf("chain %s: %w", r.Chain.Name, err))
			}
		}
	}
	if err := c.Flush(); err != nil {
		return fail(err)
	}
	return nil
}

// tables are natreveal's tables of name: ip and ip6.
func tables(name string) []*nftables.Table {
	return []*nftables.Table{
		{Family: nftables.TableFamilyIPv4, Name: name},
		{Family: nftables.TableFamilyIPv6, Name: name},
	}
}

// Remove deletes the tables of that name (ip and ip6) and everything in
// them, in one batch. A missing table is not an error: the batch adds each
// table (a no-op when it exists) and deletes it. An empty name means
// DefaultTable. Like Apply, Remove flushes c.
func Remove(c *nftables.Conn, table string) error {
	if table == "" {
		table = DefaultTable
	}
	for _, t := range tables(table) {
		c.AddTable(t)
		c.DelTable(t)
	}
	if err := c.Flush(); err != nil {
		return fmt.Errorf("rules: remove table %s: %w", table, err)
	}
	return nil
}

// Probe tells which queue mechanism this kernel accepts. It loads a throwaway
// table "natreveal_probe" holding a chain with one queue rule, native first,
// else compat; each batch deletes the table again before it ends, so nothing
// is ever committed (the kernel still checks every expression). It returns an
// error naming both failures when neither works. Like Apply, Probe flushes c.
func Probe(c *nftables.Conn) (Mechanism, error) {
	native := tryQueue(c, &expr.Queue{Num: 0, Total: 1, Flag: expr.QueueFlagBypass})
	if native == nil {
		return Native, nil
	}
	compat := tryQueue(c, nfqueueTarget(0, 1, nfqFlagBypass))
	if compat == nil {
		return Compat, nil
	}
	return 0, fmt.Errorf("rules: probe: no queue mechanism works: %v: %w; %v: %w", Native, native, Compat, compat)
}

// tryQueue loads and deletes a table with one rule holding q, in one batch.
func tryQueue(c *nftables.Conn, q expr.Any) error {
	t := &nftables.Table{Family: nftables.TableFamilyIPv4, Name: probeTable}
	c.AddTable(t)
	ch := c.AddChain(&nftables.Chain{Name: "probe", Table: t}) // no hook: sees no packets
	c.AddRule(&nftables.Rule{Table: t, Chain: ch, Exprs: []expr.Any{q}})
	c.DelTable(t)
	return c.Flush()
}

// ProbeHelper reports whether the kernel has the conntrack helper name for
// TCP over IPv4 (Spec.SeqAdjHelper): it loads a throwaway table holding a ct
// helper object of that type and deletes it in the same batch, so nothing
// is committed. Like Apply, ProbeHelper flushes c.
func ProbeHelper(c *nftables.Conn, name string) error {
	t := &nftables.Table{Family: nftables.TableFamilyIPv4, Name: probeTable}
	c.AddTable(t)
	c.AddObj(&nftables.NamedObj{Table: t, Name: SeqAdjObject, Type: nftables.ObjTypeCtHelper,
		Obj: &expr.CtHelper{Name: name, L3Proto: unix.NFPROTO_IPV4, L4Proto: unix.IPPROTO_TCP}})
	c.DelTable(t)
	if err := c.Flush(); err != nil {
		return fmt.Errorf("rules: conntrack helper %q: %w", name, err)
	}
	return nil
}
