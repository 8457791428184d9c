// Command natreveal-lab measures natreveal in network namespaces of its own
// (root): `lab` fills in Table 1 of RFC 6967, `bench` measures the SYN path
// and selected flows against the kernel's NAT alone, `demo` shows the main
// job in 30 seconds. Each runs the router binary, `natreveal`, on its NAT.
package main

import (
	"github.com/spf13/cobra"

	"github.com/natreveal/natreveal/internal/cli"
)

// version is set at build time: -ldflags "-X main.version=..."
var version = "dev"

func main() {
	root := &cobra.Command{
		Use:   "natreveal-lab",
		Short: "Measure natreveal in network namespaces: Table 1, the bench, a demo (root)",
	}
	root.AddCommand(labCmd(), benchCmd(), demoCmd())
	cli.Main(root, version)
}

// natrevealFlag adds --natreveal, the router binary the command runs on its
// NAT.
func natrevealFlag(cmd *cobra.Command) *string {
	return cmd.Flags().String("natreveal", "", "the natreveal (router) binary to run on the NAT (default: natreveal next to this binary, else built from source with go build, else from PATH)")
}
