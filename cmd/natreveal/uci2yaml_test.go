package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/natreveal/natreveal/config"
)

// uci2yaml converts the one section the init script reads, `config
// natreveal 'main'`, and rejects, one line naming the problem, what it
// would otherwise drop or misread.
func TestUCI2YAML(t *testing.T) {
	good := "config natreveal 'main'\n\toption enabled '1'\n\tlist inside '100.64.0.0/10'\n\tlist methods 'tcp-option'\n\toption placement 'pre-nat'\n"
	for _, c := range []struct {
		name, uci string
		prefix    string // of the one line on stderr; "" for success
	}{
		{"good", good, ""},
		{"other sections", "config other 'x'\n\tlist placement 'a'\n" + good, ""},
		{"list for a single value", strings.Replace(good, "option placement", "list placement", 1), "natreveal: placement: takes one value: write option placement, not list (line 5)"},
		{"second section", good + "config natreveal 'second'\n\toption bogus '1'\n", "natreveal: uci: a second `config natreveal` section; natreveal reads one, named main (line 6)"},
		{"anonymous section", strings.Replace(good, " 'main'", "", 1), "natreveal: uci: name the section main"},
		{"other name", strings.Replace(good, "'main'", "\"router\"", 1), "natreveal: uci: name the section main"},
	} {
		in := filepath.Join(t.TempDir(), "natreveal")
		if err := os.WriteFile(in, []byte(c.uci), 0o644); err != nil {
			t.Fatal(err)
		}
		code, out, errOut := natreveal(t, "uci2yaml", in)
		switch {
		case c.prefix == "" && (code != 0 || !strings.Contains(out, "placement: \"pre-nat\"")):
			t.Errorf("%s: exit %d, stderr %q, output:\n%s", c.name, code, errOut, out)
		case c.prefix != "" && (code != 2 || out != "" || strings.Count(errOut, "\n") != 1 || !strings.HasPrefix(errOut, c.prefix)):
			t.Errorf("%s: exit %d, stderr %q, stdout %q; want 2 and %q", c.name, code, errOut, out, c.prefix)
		}
	}
}

// The sample /etc/config/natreveal names every method, and converts.
func TestUCISampleNamesEveryMethod(t *testing.T) {
	sample := filepath.Join("..", "..", "openwrt", "natreveal", "files", "natreveal.config")
	b, err := os.ReadFile(sample)
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range config.Methods() {
		if !strings.Contains(string(b), m) {
			t.Errorf("%s does not name method %s", sample, m)
		}
	}
	if code, _, errOut := natreveal(t, "uci2yaml", sample); code != 0 {
		t.Errorf("uci2yaml %s: exit %d: %s", sample, code, errOut)
	}
}
