package main

import (
	"encoding/json"
	"fmt"
	"os/signal"
	"strconv"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/natreveal/natreveal/internal/cli"
	"github.com/natreveal/natreveal/observe"
	"github.com/natreveal/natreveal/reveal"
)

func observeCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "observe",
		Short: "On a server: log the HOST_ID of every incoming connection (NFLOG; traffic is never delayed)",
		Long: `observe installs its own nftables table (table inet ` + observe.DefaultTable + `), whose
rules copy each incoming connection's first packet to an NFLOG group: TCP SYNs,
with --udp-ports the first datagram of each new UDP flow, with hip every HIP
packet (IP protocol 139). It prints one line per HOST_ID found until SIGINT or
SIGTERM, which remove the table again. The log rules only copy packets: if
observe is slow or killed, log records are lost, never packets. A table left by
a killed observe is replaced by the next one. Needs CAP_NET_ADMIN.`,
		Args: cli.NoArgs,
	}
	cli.FlagErrorsAreUsage(cmd)
	fs := cmd.Flags()
	group := fs.Uint16("group", observe.DefaultGroup, "NFLOG group (1-65535); one process per group and network namespace")
	ports := fs.StringSlice("ports", nil, "TCP destination ports to watch (default: all)")
	udpPorts := fs.StringSlice("udp-ports", nil, "UDP destination ports to watch (default: none)")
	all := fs.Bool("all", false, "also report connections that carry no HOST_ID")
	rf := addRevealFlags(fs, "json")
	cmd.RunE = func(cmd *cobra.Command, _ []string) error {
		d, format, err := rf.decoder()
		if err != nil {
			return err
		}
		if *group == 0 {
			return cli.UsageErr(fmt.Errorf("--group: 0 is not allowed: use 1-65535"))
		}
		tcp, err := parsePorts("--ports", *ports)
		if err != nil {
			return err
		}
		udp, err := parsePorts("--udp-ports", *udpPorts)
		if err != nil {
			return err
		}
		logger := cli.Logger(cmd.ErrOrStderr())
		cfg := observe.Config{
			Decoder: *d, Group: *group, TCPPorts: tcp, UDPPorts: udp, ReportNone: *all,
			Logf: logger.Printf,
		}
		if len(observe.Build(cfg).Rules) == 0 {
			return cli.UsageErr(fmt.Errorf("--methods: nothing to observe with %v (UDP needs --udp-ports)", d.Methods))
		}
		ctx, stop := signal.NotifyContext(cmd.Context(), syscall.SIGINT, syscall.SIGTERM)
		defer stop()
		out := &lineWriter{w: cmd.OutOrStdout(), f: format}
		var outErr error
		st, err := observe.Run(ctx, cfg, func(r reveal.Record) {
			if err := out.record(r); err != nil && outErr == nil {
				outErr = err
				logger.Printf("observe: output: %v", err)
				stop() // nobody reads the report any more
			}
		})
		b, _ := json.Marshal(st)
		logger.Printf("observe: stopped: %s", b)
		if err == nil {
			err = outErr
		}
		return err
	}
	return cmd
}

// parsePorts reads port numbers (1-65535); its errors are usage errors.
func parsePorts(flag string, list []string) ([]uint16, error) {
	var ps []uint16
	for _, s := range list {
		p, err := strconv.ParseUint(s, 10, 16)
		if err != nil || p == 0 {
			return nil, cli.UsageErr(fmt.Errorf("%s: %q is not a port (1-65535)", flag, s))
		}
		ps = append(ps, uint16(p))
	}
	return ps, nil
}
