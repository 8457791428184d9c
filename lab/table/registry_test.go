package table

import (
	"slices"
	"strings"
	"testing"

	"github.com/natreveal/natreveal/method"
	"github.com/natreveal/natreveal/method/all"
)

// TestRegistryColumns checks the lab's methods against the registry
// (method/all): each registered method has a lab method with the column
// title, family, transports and NAT arguments its package declares, and the
// lab runs no method the registry lacks.
func TestRegistryColumns(t *testing.T) {
	for _, m := range all.List {
		i := slices.IndexFunc(Methods, func(lm Method) bool { return lm.Name == m.Name })
		if i < 0 {
			t.Errorf("%s: registered but not in the lab", m.Name)
			continue
		}
		lm := Methods[i]
		if lm.Column != m.Lab.Column || lm.Family != m.Lab.Family {
			t.Errorf("%s: lab column %q family %d, registry %q family %d", m.Name, lm.Column, lm.Family, m.Lab.Column, m.Lab.Family)
		}
		var tr []string
		for _, x := range lm.Transports {
			tr = append(tr, string(x))
		}
		if !slices.Equal(tr, m.Lab.Transports) {
			t.Errorf("%s: lab transports %v, registry %v", m.Name, tr, m.Lab.Transports)
		}
		if len(lm.NATArgs) < len(m.Lab.NATArgs) || !slices.Equal(lm.NATArgs[:len(m.Lab.NATArgs)], m.Lab.NATArgs) {
			t.Errorf("%s: lab NAT args %v do not start with the registry's %v", m.Name, lm.NATArgs, m.Lab.NATArgs)
		}
	}
	for _, lm := range Methods {
		if _, ok := all.Lookup(lm.Name); !ok {
			t.Errorf("lab method %s is not registered", lm.Name)
		}
	}
}

// TestClaimsCoverTransports checks each method's lab column as its package
// declares it: its transports are the table's, the analysis's claims on
// them agree (every transport the lab tests has the analysis's word in a
// Table 1 column, every transport the analysis says carries the HOST_ID is
// tested; a method Table 1 lacks claims nothing), and its cells are
// consistent.
func TestClaimsCoverTransports(t *testing.T) {
	known := map[string]bool{}
	for _, tr := range Transports {
		known[string(tr)] = true
	}
	positions := map[int]string{}
	for _, m := range all.List {
		l := m.Lab
		seen := map[string]bool{}
		for _, tr := range l.Transports {
			if !known[tr] || seen[tr] {
				t.Errorf("%s: transport %q unknown or declared twice", m.Name, tr)
			}
			seen[tr] = true
		}
		if l.Column == "" {
			if l.Claims != (method.Claims{}) || l.Position != 0 {
				t.Errorf("%s: not in Table 1, yet claims %+v at position %d", m.Name, l.Claims, l.Position)
			}
		} else {
			if l.Position <= 0 || positions[l.Position] != "" {
				t.Errorf("%s: Table 1 position %d (taken by %q)", m.Name, l.Position, positions[l.Position])
			}
			positions[l.Position] = m.Name
			for _, tr := range Transports {
				c := l.Claims.For(string(tr))
				if c != "" && c != "Yes" && c != "No" {
					t.Errorf("%s: claim %q over %s is not Yes or No", m.Name, c, tr)
				}
				if seen[string(tr)] && c == "" {
					t.Errorf("%s: tested over %s, without the analysis's claim", m.Name, tr)
				}
				if c == "Yes" && !seen[string(tr)] {
					t.Errorf("%s: the analysis says it is carried over %s, which it does not declare", m.Name, tr)
				}
			}
		}
		if strings.HasPrefix(l.ServerReads, "yes: ") != l.KernelChange || !strings.HasPrefix(l.ServerReads, "yes: ") && !strings.HasPrefix(l.ServerReads, "no: ") {
			t.Errorf("%s: server reads %q, kernel change %v", m.Name, l.ServerReads, l.KernelChange)
		}
	}
	// The lab's columns: Table 1's in its order, then the others.
	last := 0
	for _, lm := range Methods {
		m, _ := all.Lookup(lm.Name)
		p := m.Lab.Position
		if p == 0 {
			p = len(all.List) + 1
		}
		if p < last {
			t.Errorf("%s: lab column out of Table 1's order", lm.Name)
		}
		last = p
		if strings.Contains(lm.Configured, method.LabArgs) {
			t.Errorf("%s: configured cell %q", lm.Name, lm.Configured)
		}
	}
}
