package bench

import (
	"errors"
	"flag"
	"path/filepath"
	"strings"
	"testing"
)

// Bad input is one error (a line, said by Main with exit 2) before
// anything runs; -h is flag.ErrHelp.
func TestParseFlags(t *testing.T) {
	dir := t.TempDir()
	for _, c := range []struct {
		args []string
		want string // "" accepted
	}{
		{nil, ""},
		{[]string{"-quick", "-modes", "queue,http-header", "-json", filepath.Join(dir, "out.json")}, ""},
		{[]string{"-cpus", "1,2", "-queue-counts", "1"}, ""},
		{[]string{"-bogus"}, "flag provided but not defined: -bogus (natreveal-lab bench -h lists the flags)"},
		{[]string{"-rounds", "x"}, `invalid value "x" for flag -rounds`},
		{[]string{"quick"}, `unexpected argument "quick"`},
		{[]string{"-quick", "extra", "-rounds", "2"}, `unexpected argument "extra"`},
		{[]string{"-rounds", "-1"}, "-rounds: must not be negative"},
		{[]string{"-queues", "-2"}, "-queues: must not be negative"},
		{[]string{"-gens", "-1"}, "-gens: must not be negative"},
		{[]string{"-bulk-mib", "-1"}, "-bulk-mib: must not be negative"},
		{[]string{"-hold", "-1s"}, "-hold: must not be negative"},
		{[]string{"-modes", "queue,nope"}, `-modes: unknown mode "nope" (kernel, queue,`},
		{[]string{"-modes", "established", "-established=false"}, "-modes established with -established=false"},
		{[]string{"-cpuprofile", "x.prof"}, "-cpuprofile needs -hold"},
		{[]string{"-established-conns", "0"}, "-established-conns must be at least 1"},
		{[]string{"-cpus", "1,x"}, `-cpus: bad count "x"`},
		{[]string{"-queue-counts", "0"}, `-queue-counts: bad count "0"`},
		{[]string{"-role", "other"}, `-role: "other" is not passthrough or gonfqueue`},
		{[]string{"-json", dir}, "-json: " + dir + ": is a directory"},
		{[]string{"-json", filepath.Join(dir, "no", "out.json")}, "-json: " + filepath.Join(dir, "no", "out.json") + ": directory"},
	} {
		_, _, err := parseFlags(c.args)
		switch {
		case c.want == "" && err != nil:
			t.Errorf("%q: %v", c.args, err)
		case c.want != "" && (err == nil || !strings.HasPrefix(err.Error(), c.want) || strings.Contains(err.Error(), "\n")):
			t.Errorf("%q: %v, want one line starting %q", c.args, err, c.want)
		}
	}
	for _, h := range []string{"-h", "-help", "--help"} {
		if _, _, err := parseFlags([]string{h}); !errors.Is(err, flag.ErrHelp) {
			t.Errorf("%s: %v, want flag.ErrHelp", h, err)
		}
	}
	if code := Main([]string{"-rounds", "-1"}); code != 2 {
		t.Errorf("Main(-rounds -1) = %d, want 2", code)
	}
}
