package bench

import (
	"strings"
	"testing"

	"github.com/natreveal/natreveal/method/all"
)

// TestModesRegistered checks that every method a bench mode enables is
// registered (method/all) and is a router method.
func TestModesRegistered(t *testing.T) {
	for _, m := range allModes {
		if m.methods == "" {
			continue
		}
		for _, name := range strings.Split(m.methods, ",") {
			if rm, ok := all.Lookup(name); !ok || !rm.Router {
				t.Errorf("mode %s: method %s is not a registered router method", m.name, name)
			}
		}
	}
}
