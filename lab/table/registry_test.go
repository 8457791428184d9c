package table

import (
	"slices"
	"testing"

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
