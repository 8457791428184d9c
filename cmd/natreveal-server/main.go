// Command natreveal-server is what servers run to read the HOST_IDs a
// natreveal router (or any RFC 6967 NAT) writes: serve, observe, decode,
// portset lookup and mapping lookup; see README.md.
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
		Use:   "natreveal-server",
		Short: "Read the HOST_IDs a NAT wrote (RFC 6967): a demo server, an NFLOG observer, a capture decoder, port-set and mapping-log lookup",
	}
	root.AddCommand(serveCmd(), observeCmd(), decodeCmd(), portsetCmd(), guardCmd(), whoCmd(), mappingCmd())
	return root
}
