package rules

import (
	"fmt"

	"github.com/google/nftables"
	"github.com/google/nftables/expr"
)

// Apply installs the ruleset of s on c in one batch and flushes it. The batch
// adds the table, deletes it and adds it again with all its contents: an
// older copy of the table is replaced atomically (packets see either the old
// ruleset or the new one, never none), and a missing one is simply created.
//
// Apply flushes c: commands that were already buffered on c go into the same
// batch. c must not be used by another goroutine meanwhile.
func Apply(c *nftables.Conn, s Spec) error {
	fail := func(err error) error { return fmt.Errorf("rules: apply table %s: %w", s.table(), err) }
	if err := s.validate(); err != nil {
		return fail(fmt.Errorf("invalid spec: %w", err))
	}
	rs := build(s)
	if s.Placement == PostNAT {
		// Check the ct workaround on a scratch connection before anything is
		// buffered on c, so that a failure leaves c untouched.
		if err := ctWorkaroundOK(); err != nil {
			return fail(err)
		}
	}

	c.AddTable(rs.Table)
	c.DelTable(rs.Table)
	c.AddTable(rs.Table)
	if err := c.AddSet(rs.Set, rs.Elements); err != nil {
		return fail(fmt.Errorf("set %s: %w", rs.Set.Name, err))
	}
	for _, ch := range rs.Chains {
		c.AddChain(ch)
	}
	for _, r := range rs.Rules {
		if err := addRule(c, r); err != nil {
			return fail(fmt.Errorf("chain %s: %w", r.Chain.Name, err))
		}
	}
	if err := c.Flush(); err != nil {
		return fail(err)
	}
	return nil
}

// Remove deletes the table and everything in it. A missing table is not an
// error: the batch adds the table (a no-op when it exists) and deletes it.
// An empty name means DefaultTable. Like Apply, Remove flushes c.
func Remove(c *nftables.Conn, table string) error {
	if table == "" {
		table = DefaultTable
	}
	t := &nftables.Table{Family: nftables.TableFamilyIPv4, Name: table}
	c.AddTable(t)
	c.DelTable(t)
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
