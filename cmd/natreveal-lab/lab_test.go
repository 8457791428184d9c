package main

import (
	"path/filepath"
	"strings"
	"testing"

	"github.com/natreveal/natreveal/internal/cli"
)

// An output file that cannot be written is bad input, said before the run
// (whose results would be lost), naming the flag.
func TestLabOutputChecked(t *testing.T) {
	dir := t.TempDir()
	missing := filepath.Join(dir, "no", "t.md")
	for _, c := range []struct{ flag, path, want string }{
		{"--markdown", missing, "--markdown: " + missing + ": directory"},
		{"--json", dir, "--json: " + dir + ": is a directory"},
		{"--html", missing, "--html: " + missing + ": directory"},
	} {
		cmd := labCmd()
		cmd.SilenceUsage, cmd.SilenceErrors = true, true
		// No binary: were the path not checked, the run fails early.
		cmd.SetArgs([]string{c.flag, c.path, "--quick", "--natreveal", filepath.Join(dir, "none")})
		err := cmd.Execute()
		if cli.Code(err) != cli.ExitUsage || !strings.HasPrefix(err.Error(), c.want) {
			t.Errorf("%s %s: %v, want a usage error starting %q", c.flag, c.path, err, c.want)
		}
	}
}
