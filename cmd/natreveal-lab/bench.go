package main

import (
	"os"

	"github.com/spf13/cobra"

	"github.com/natreveal/natreveal/lab/bench"
)

func benchCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "bench [-quick] [-json FILE] [-modes M,...] [-rounds N] [-queues N] [-rate N] [-gens N] [-cpus N,...] [-bulk-mib N] [-established=false] [-established-conns N] [-hold D [-cpuprofile FILE]]",
		Short: "Measure natreveal's own cost against the kernel's NAT alone (root)",
		Long: `bench builds its own network namespaces (package lab), alternates the modes
in rounds with generators pinned on every CPU, and prints per mode the whole
machine's added CPU per new connection and added latency at a paced load,
saturation conn/s and SYN/s with every flooded SYN accounted, and the goals
beside them; go-nfqueue serves the same pass-through as natreveal's queue
client; selected flows (http-header, proxy-protocol) move bulk transfers
through the daemon; established flows (long-lived connections natreveal is
done with) show its cost per packet it does not queue; -cpus runs it per CPU
count (scaling). Its flags are
single-dash; -h lists them.`,
		DisableFlagParsing: true,
		RunE: func(_ *cobra.Command, args []string) error {
			if code := bench.Main(args); code != 0 {
				os.Exit(code) // bench has said why on stderr
			}
			return nil
		},
	}
}
