// Command natreveal is the router daemon: it reveals a HOST_ID for each
// host behind a Linux NAT (RFC 6967). What servers run is natreveal-server;
// see README.md.
package main

import (
	"github.com/spf13/cobra"

	"github.com/natreveal/natreveal/internal/cli"
)

// version is set at build time: -ldflags "-X main.version=..."
var version = "dev"

func main() {
	cli.Main(rootCmd(), version)
}

func rootCmd() *cobra.Command {
	root := &cobra.Command{
		Use:   "natreveal",
		Short: "Reveal a HOST_ID for each host behind a Linux NAT (the router daemon)",
	}
	root.AddCommand(runCmd(), rulesCmd(), checkCmd(), statusCmd(), portsetCmd(), uci2yamlCmd())
	return root
}

// usageErr is cli.UsageErr (exit 2), not inlined: a copy at each of its
// call sites costs the router build 1.3 kB (TestRouterBinarySize).
//
//go:noinline
func usageErr(err error) error { return cli.UsageErr(err) }
