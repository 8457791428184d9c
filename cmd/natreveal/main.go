// Command natreveal reveals a HOST_ID for each host behind a Linux NAT; see
// README.md.
package main

import (
	"errors"
	"fmt"
	"os"

	"github.com/spf13/cobra"

	"github.com/natreveal/natreveal/config"
)

// version is set at build time: -ldflags "-X main.version=..."
var version = "dev"

// exitError carries a process exit code out of a command.
type exitError struct {
	code int
	err  error
}

func (e *exitError) Error() string { return e.err.Error() }

func main() {
	root := &cobra.Command{
		Use:           "natreveal",
		Short:         "Reveal a HOST_ID for each host behind a Linux NAT",
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.AddCommand(runCmd(), rulesCmd(), checkCmd(), versionCmd(), serveCmd(), observeCmd(), decodeCmd(), portsetCmd())
	root.AddCommand(labCmd())
	root.AddCommand(uci2yamlCmd())
	root.AddCommand(guardCmd())
	root.AddCommand(whoCmd())
	err := root.Execute()
	if err == nil {
		return
	}
	fmt.Fprintln(os.Stderr, "natreveal:", err)
	var ee *exitError
	var ce *config.Error
	switch {
	case errors.As(err, &ee):
		os.Exit(ee.code)
	case errors.As(err, &ce):
		os.Exit(2)
	}
	os.Exit(1)
}

// usageErr marks a configuration problem: exit code 2.
func usageErr(err error) error { return &exitError{code: 2, err: err} }

func versionCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print the version",
		Args:  cobra.NoArgs,
		Run: func(cmd *cobra.Command, _ []string) {
			fmt.Fprintln(cmd.OutOrStdout(), "natreveal", version)
		},
	}
}
