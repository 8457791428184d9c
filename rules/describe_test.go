package rules

import "testing"

// Every term of every described rule has both renderings or neither: a
// term with expressions but no text (or the reverse) would let Build and
// Text drift apart.
func TestDescribeTermsRenderBoth(t *testing.T) {
	specs := systemSpecs(Native)
	for _, g := range goldenSpecs {
		specs = append(specs, g.spec)
	}
	var tables []*tableDesc
	for _, s := range specs {
		for _, f := range s.families() {
			tables = append(tables, describeTable(s, f))
		}
	}
	for _, p := range portSetSpecs(t) {
		tables = append(tables, describePortSet(p.spec))
	}
	for _, d := range tables {
		for _, c := range d.chains {
			if len(c.rules) == 0 {
				t.Errorf("table %s chain %s: no rules", d.table.Name, c.name)
			}
			for i, r := range c.rules {
				for _, tm := range r {
					if (len(tm.exprs) == 0) != (tm.text == "") {
						t.Errorf("table %s chain %s rule %d: term %q has %d expressions", d.table.Name, c.name, i, tm.text, len(tm.exprs))
					}
				}
			}
		}
	}
}
