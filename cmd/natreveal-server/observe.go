package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os/signal"
	"strconv"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/natreveal/natreveal/internal/cli"
	"github.com/natreveal/natreveal/internal/unixsock"
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
a killed observe is replaced by the next one. Needs CAP_NET_ADMIN.

observe also remembers, for --recent-ttl and at most --recent-max entries, the
HOST_ID of each recent connection by its source (address, port), and answers
` + "`natreveal-server who ADDR:PORT`" + ` and ` + "`natreveal-server guard block --from ADDR:PORT`" + ` on the
unix socket --control: an address and port from an application's log lead to
the host behind the NAT.`,
		Args: cli.NoArgs,
	}
	cli.FlagErrorsAreUsage(cmd)
	fs := cmd.Flags()
	group := fs.Uint16("group", observe.DefaultGroup, "NFLOG group (1-65535); one process per group and network namespace")
	ports := fs.StringSlice("ports", nil, "TCP destination ports to watch (default: all)")
	udpPorts := fs.StringSlice("udp-ports", nil, "UDP destination ports to watch (default: none)")
	all := fs.Bool("all", false, "also report connections that carry no HOST_ID")
	control := fs.String("control", observe.DefaultControl, "unix socket answering who and guard block --from (empty: none)")
	recentMax := fs.Int("recent-max", observe.DefaultRecentMax, "connections remembered for who, at most")
	recentTTL := fs.Duration("recent-ttl", observe.DefaultRecentTTL, "how long a connection is remembered for who")
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
		if *recentMax <= 0 || *recentTTL <= 0 {
			return cli.UsageErr(fmt.Errorf("--recent-max and --recent-ttl must be positive"))
		}
		if *control != "" {
			if err := unixsock.CheckPath(*control); err != nil {
				return cli.UsageErr(fmt.Errorf("--control: %w", err))
			}
		}
		ctx, stop := signal.NotifyContext(cmd.Context(), syscall.SIGINT, syscall.SIGTERM)
		defer stop()
		recent := observe.NewRecent(*recentMax, *recentTTL)
		if *control != "" {
			ln, err := listenControl(*control)
			if err != nil {
				return err
			}
			defer ln.Close() // also unlinks the socket file
			go observe.ServeControl(ln, recent)
			logger.Printf("observe: answering who on %s", *control)
		}
		out := &lineWriter{w: cmd.OutOrStdout(), f: format}
		var outErr error
		st, err := observe.Run(ctx, cfg, func(r reveal.Record) {
			recent.Add(r)
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

// listenControl binds the control socket at path: a socket file left by a
// killed observe is replaced; one another observe answers on, or a file
// that is not a socket, is refused (exit 2) and left alone.
func listenControl(path string) (net.Listener, error) {
	ln, err := unixsock.Listen(path, time.Second)
	switch {
	case errors.Is(err, unixsock.ErrInUse):
		return nil, cli.UsageErr(fmt.Errorf("--control: another observe answers on %s (choose another --control)", path))
	case errors.Is(err, unixsock.ErrNotSocket):
		return nil, cli.UsageErr(fmt.Errorf("--control: %w: choose another path", err))
	case err != nil:
		return nil, fmt.Errorf("--control: %w", err)
	}
	return ln, nil
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
