// Command natreveal-lab measures natreveal in network namespaces of its own
// (root): `lab` fills in Table 1 of RFC 6967, `bench` measures the SYN path
// and selected flows against the kernel's NAT alone, `demo` shows the main
// job in 30 seconds. Each runs the router binary, `natreveal`, on its NAT.
package main

import (
	"errors"
	"fmt"
	"os"

	"github.com/spf13/cobra"
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
		Use:           "natreveal-lab",
		Short:         "Measure natreveal in network namespaces: Table 1, the bench, a demo (root)",
		Version:       version,
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.AddCommand(labCmd(), benchCmd(), demoCmd())
	err := root.Execute()
	if err == nil {
		return
	}
	fmt.Fprintln(os.Stderr, "natreveal-lab:", err)
	var ee *exitError
	if errors.As(err, &ee) {
		os.Exit(ee.code)
	}
	os.Exit(1)
}

// usageErr marks a usage problem: exit code 2.
func usageErr(err error) error { return &exitError{code: 2, err: err} }

// flagErrorsAreUsage makes cmd's flag errors usage errors.
func flagErrorsAreUsage(cmd *cobra.Command) {
	cmd.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return usageErr(err) })
}

// noArgs is cobra.NoArgs as a usage error.
func noArgs(cmd *cobra.Command, args []string) error {
	if err := cobra.NoArgs(cmd, args); err != nil {
		return usageErr(err)
	}
	return nil
}

// natrevealFlag adds --natreveal, the router binary the command runs on its
// NAT.
func natrevealFlag(cmd *cobra.Command) *string {
	return cmd.Flags().String("natreveal", "", "the natreveal (router) binary to run on the NAT (default: natreveal next to this binary, else built from source with go build, else from PATH)")
}
