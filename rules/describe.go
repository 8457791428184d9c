package rules

// The ruleset is described once (describeTable) as tables of chains of
// rules, each rule a list of terms that carry both their netlink
// expressions and the text nft lists for them. Build renders the
// description to google/nftables objects and Text to nft text, so the bytes
// Apply sends and the text the system tests compare with `nft list` cannot
// drift apart.

import (
	"fmt"
	"strings"

	"github.com/google/nftables"
	"github.com/google/nftables/expr"
)

// term is one match or statement of a rule: its expressions and how nft
// 1.0.6 lists them. The zero term stands for nothing (an optional part of a
// rule that this Spec leaves out).
type term struct {
	exprs []expr.Any
	text  string
}

// rule is a rule as the terms it is made of, in order.
type rule []term

func (r rule) exprs() []expr.Any {
	var all []expr.Any
	for _, t := range r {
		all = append(all, t.exprs...)
	}
	return all
}

func (r rule) text() string {
	parts := make([]string, 0, len(r))
	for _, t := range r {
		if t.text != "" {
			parts = append(parts, t.text)
		}
	}
	return strings.Join(parts, " ")
}

// chainDesc is one chain: a base chain hooked at postrouting with a
// priority relative to srcnat (at forward with priority filter: forward),
// or a regular chain (jumped to) when !base.
type chainDesc struct {
	name    string
	base    bool
	nat     bool // type nat rather than filter
	forward bool // hooked at forward, priority filter (the closing table)
	prio    int  // offset from prioSrcNAT
	rules   []rule
}

// add appends a rule. Not inlined: describeTable calls it some thirty
// times, and the copies made the router build outgrow 8 MiB (a cold path).
//
//go:noinline
func (c *chainDesc) add(terms ...term) { c.rules = append(c.rules, rule(terms)) }

func (c *chainDesc) chain(t *nftables.Table) *nftables.Chain {
	if !c.base {
		return &nftables.Chain{Name: c.name, Table: t}
	}
	accept := nftables.ChainPolicyAccept
	typ := nftables.ChainTypeFilter
	if c.nat {
		typ = nftables.ChainTypeNAT
	}
	if c.forward {
		return &nftables.Chain{Name: c.name, Table: t, Type: typ, Hooknum: nftables.ChainHookForward,
			Priority: nftables.ChainPriorityFilter, Policy: &accept}
	}
	return &nftables.Chain{
		Name:     c.name,
		Table:    t,
		Type:     typ,
		Hooknum:  nftables.ChainHookPostrouting,
		Priority: nftables.ChainPriorityRef(nftables.ChainPriority(prioSrcNAT + c.prio)),
		Policy:   &accept,
	}
}

func (c *chainDesc) text() string {
	var b strings.Builder
	fmt.Fprintf(&b, "\n\tchain %s {\n", c.name)
	if c.base {
		typ, sign, off := "filter", "+", c.prio
		if c.nat {
			typ = "nat"
		}
		if off < 0 {
			sign, off = "-", -off
		}
		if c.forward {
			fmt.Fprintf(&b, "\t\ttype %s hook forward priority filter; policy accept;\n", typ)
		} else {
			fmt.Fprintf(&b, "\t\ttype %s hook postrouting priority srcnat %s %d; policy accept;\n", typ, sign, off)
		}
	}
	for _, r := range c.rules {
		fmt.Fprintf(&b, "\t\t%s\n", r.text())
	}
	b.WriteString("\t}\n")
	return b.String()
}

// object is a named object of a table and how nft lists it.
type object struct {
	obj  *nftables.NamedObj
	text string
}

// tableDesc is one table: its objects, the set (or map) its rules look
// up, an optional second map, and its chains, each in the order Apply adds
// them and nft lists them.
type tableDesc struct {
	table    *nftables.Table
	objs     []object
	set      *nftables.Set
	elements []nftables.SetElement
	setText  string // the set (with its elements) as nft lists it
	hostID   *nftables.Set
	mapText  string // hostID as nft lists it
	uploads  *nftables.Set
	upText   string // uploads as Text prints it (typeof, uploads.go)
	chains   []chainDesc
}

// ruleset renders d as google/nftables objects.
func (d *tableDesc) ruleset() *Ruleset {
	rs := &Ruleset{Table: d.table, Set: d.set, Elements: d.elements, Map: d.hostID, Uploads: d.uploads}
	for _, o := range d.objs {
		rs.Objs = append(rs.Objs, o.obj)
	}
	for i := range d.chains {
		c := &d.chains[i]
		ch := c.chain(d.table)
		rs.Chains = append(rs.Chains, ch)
		for _, r := range c.rules {
			rs.Rules = append(rs.Rules, &nftables.Rule{Table: d.table, Chain: ch, Exprs: r.exprs()})
		}
	}
	return rs
}

// text renders d as `nft list table` prints it.
func (d *tableDesc) text() string {
	var b strings.Builder
	fam := "ip"
	if d.table.Family == nftables.TableFamilyIPv6 {
		fam = "ip6"
	}
	fmt.Fprintf(&b, "table %s %s {\n", fam, d.table.Name)
	head := b.Len()
	for _, o := range d.objs {
		b.WriteString(o.text) // nft lists objects first, in the order they were added
	}
	b.WriteString(d.setText)
	b.WriteString(d.mapText)
	b.WriteString(d.upText)
	for i := range d.chains {
		c := d.chains[i].text()
		if b.Len() == head {
			c = c[1:] // nft puts an empty line between blocks, not after the table's brace
		}
		b.WriteString(c)
	}
	b.WriteString("}\n")
	return b.String()
}
