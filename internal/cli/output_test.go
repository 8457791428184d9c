package cli

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestCheckOutput(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "old.json")
	if err := os.WriteFile(file, []byte("keep"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, ok := range []string{filepath.Join(dir, "new.json"), file, os.DevNull} {
		if err := CheckOutput("--json", ok); err != nil {
			t.Errorf("%s: %v", ok, err)
		}
	}
	if b, _ := os.ReadFile(file); string(b) != "keep" {
		t.Errorf("an existing file now holds %q", b)
	}
	if _, err := os.Stat(filepath.Join(dir, "new.json")); err == nil {
		t.Error("the check left a file")
	}
	if left, _ := os.ReadDir(dir); len(left) != 1 {
		t.Errorf("the check left %v", left)
	}
	for path, want := range map[string]string{
		dir:                                "is a directory",
		filepath.Join(dir, "no", "x.json"): "directory " + filepath.Join(dir, "no") + ": no such file or directory",
		filepath.Join(file, "x.json"):      "not a directory",
	} {
		err := CheckOutput("--json", path)
		if Code(err) != ExitUsage || !strings.HasPrefix(err.Error(), "--json: "+path+": ") || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: %v, want a usage error naming --json and the path, with %q", path, err, want)
		}
	}
}
