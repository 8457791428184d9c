package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"time"

	"github.com/spf13/cobra"

	"github.com/natreveal/natreveal/internal/cli"
	"github.com/natreveal/natreveal/internal/unixsock"
	"github.com/natreveal/natreveal/observe"
)

// whoCmd: from an (address, port) an application logged to the HOST_ID
// behind it, as a running observe saw it.
func whoCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "who ADDR:PORT",
		Short: "Print the HOST_ID of the recent connection from ADDR:PORT, as natreveal observe saw it (one JSON line)",
		Long: `who asks a running natreveal observe (its --control socket) which HOST_ID the
recent connection from ADDR:PORT carried, and prints one JSON line: src,
host_id, method, proto, dst_port, time. Exit status 1 when observe saw no such
connection recently, 2 on bad input.`,
		Args: func(cmd *cobra.Command, args []string) error {
			if len(args) != 1 {
				return cli.UsageErr(fmt.Errorf("want one ADDR:PORT"))
			}
			return nil
		},
	}
	cli.FlagErrorsAreUsage(cmd)
	control := cmd.Flags().String("control", observe.DefaultControl, "observe's control socket")
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		s, err := whoIs(cmd.Context(), *control, args[0])
		if err != nil {
			return err
		}
		b, err := json.Marshal(s)
		if err != nil {
			return err
		}
		_, err = fmt.Fprintf(cmd.OutOrStdout(), "%s\n", b)
		return err
	}
	return cmd
}

// whoIs parses ADDR:PORT and asks observe on control; bad input exits 2, an
// unknown source 1.
func whoIs(ctx context.Context, control, arg string) (observe.Seen, error) {
	ap, err := netip.ParseAddrPort(arg)
	if err != nil || ap.Port() == 0 {
		return observe.Seen{}, cli.UsageErr(fmt.Errorf("%q is not ADDR:PORT (IPv6: [ADDR]:PORT)", arg))
	}
	if err := unixsock.CheckPath(control); err != nil {
		return observe.Seen{}, cli.UsageErr(fmt.Errorf("--control: %w", err))
	}
	if ctx == nil {
		ctx = context.Background()
	}
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	s, err := observe.Ask(ctx, control, ap)
	if errors.Is(err, observe.ErrUnknown) {
		return s, cli.Failed(fmt.Errorf("%s: %w", ap, err))
	}
	return s, err
}
