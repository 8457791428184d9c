package main

import (
	"strings"
	"testing"

	"github.com/spf13/cobra"
)

// Every command without subcommands that takes no argument says so when
// given one (cobra.NoArgs called it an unknown command), exit 2.
func TestLeafCommandsTakeNoArguments(t *testing.T) {
	var walk func(c *cobra.Command, path []string)
	n := 0
	walk = func(c *cobra.Command, path []string) {
		if c.HasSubCommands() {
			for _, sub := range c.Commands() {
				walk(sub, append(path, sub.Name()))
			}
			return
		}
		if c.Name() == "uci2yaml" || c.Name() == "help" {
			return // takes the UCI file; cobra's help takes a command
		}
		n++
		code, _, errOut := natreveal(t, append(path, "extra")...)
		want := "natreveal: " + strings.Join(path, " ") + ": takes no arguments (got \"extra\")\n"
		if code != 2 || errOut != want {
			t.Errorf("%v extra: exit %d, stderr %q, want 2 and %q", path, code, errOut, want)
		}
	}
	walk(rootCmd(), nil)
	if n < 7 {
		t.Errorf("only %d leaf commands", n)
	}
}
