package main

import (
	"os"

	"github.com/spf13/cobra"

	"github.com/natreveal/natreveal/lab/bench"
)

func benchCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "bench [-quick] [-json FILE] [-modes M,...] [-rounds N] [-queues N] [-bulk-mib N] [-hold D]",
		Short: "Measure natreveal's SYN path and selected flows against the kernel's NAT alone (root)",
		Long: `bench builds its own network namespaces (package lab), alternates the modes
in rounds and prints new connections/s, connect() latency, SYN flood rate,
CPU per queued packet and kernel queue drops per mode; selected flows
(http-header, proxy-protocol) move bulk transfers through the daemon. Its
flags are single-dash; -h lists them.`,
		DisableFlagParsing: true,
		RunE: func(_ *cobra.Command, args []string) error {
			if code := bench.Main(args); code != 0 {
				os.Exit(code) // bench has said why on stderr
			}
			return nil
		},
	}
}
