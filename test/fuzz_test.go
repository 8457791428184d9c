package test

// Every fuzz target of the module runs for a short time beyond the inputs it
// lists (those alone run with every plain `go test`). `make
// fuzz FUZZTIME=60s` runs them longer.

import (
	"bufio"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"
	"time"
)

var fuzzFunc = regexp.MustCompile(`^func (Fuzz[A-Za-z0-9_]+)\(\w+ \*testing\.F\)`)

// fuzzTargets lists "dir name" for every fuzz target under root.
func fuzzTargets(t *testing.T, root string) []string {
	var out []string
	err := filepath.WalkDir(root, func(p string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && (strings.HasPrefix(d.Name(), ".") || d.Name() == "testdata" || d.Name() == "vendor") && p != root {
			return filepath.SkipDir
		}
		if d.IsDir() || !strings.HasSuffix(p, "_test.go") {
			return nil
		}
		f, err := os.Open(p)
		if err != nil {
			return err
		}
		defer f.Close()
		sc := bufio.NewScanner(f)
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		for sc.Scan() {
			if m := fuzzFunc.FindStringSubmatch(sc.Text()); m != nil {
				rel, _ := filepath.Rel(root, filepath.Dir(p))
				out = append(out, "./"+filepath.ToSlash(rel)+" "+m[1])
			}
		}
		return sc.Err()
	})
	if err != nil {
		t.Fatal(err)
	}
	sort.Strings(out)
	return out
}

func TestFuzzTargetsRun(t *testing.T) {
	if testing.Short() {
		t.Skip("fuzzing: skipped with -short")
	}
	// A count, not a duration: a wall-clock -fuzztime races the fuzzing
	// coordinator's own deadline on a loaded machine and fails a target
	// with "context deadline exceeded" and no input to reproduce. 5000
	// inputs take about a second per target here.
	fuzztime := os.Getenv("FUZZTIME")
	if fuzztime == "" {
		fuzztime = "5000x"
	}
	root, err := filepath.Abs("..")
	if err != nil {
		t.Fatal(err)
	}
	targets := fuzzTargets(t, root)
	if len(targets) < 20 {
		t.Fatalf("found %d fuzz targets, expected the module's 20 and more: %v", len(targets), targets)
	}
	start := time.Now()
	for _, tg := range targets {
		pkg, name, _ := strings.Cut(tg, " ")
		// One at a time, two fuzzing workers: CI machines are small.
		cmd := exec.Command("go", "test", "-count=1", "-run", "^$", "-fuzz", "^"+name+"$",
			"-fuzztime", fuzztime, "-parallel", "2", pkg)
		cmd.Dir = root
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Errorf("%s %s: %v\n%s", pkg, name, err, out)
		}
	}
	t.Logf("%d fuzz targets, -fuzztime %s each, in %v", len(targets), fuzztime, time.Since(start).Round(time.Second))
}
