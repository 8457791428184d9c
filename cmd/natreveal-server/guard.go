package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"strconv"
	"strings"
	"time"

	"github.com/google/nftables"
	"github.com/google/nftables/expr"
	"github.com/spf13/cobra"

	"github.com/natreveal/natreveal/guard"
	"github.com/natreveal/natreveal/internal/cli"
	"github.com/natreveal/natreveal/method/all"
	"github.com/natreveal/natreveal/observe"
)

// guardCmd: the server acts on HOST_IDs in its own kernel (package guard).
func guardCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "guard",
		Short: "Block or rate-limit one host behind a shared address by its HOST_ID, in this server's kernel",
	}
	table := cmd.PersistentFlags().String("table", guard.DefaultTable, "guard's table (family inet)")
	conn := func() (*nftables.Conn, error) {
		c, err := nftables.New()
		if err != nil {
			return nil, fmt.Errorf("netlink: %w", err)
		}
		return c, nil
	}
	// run maps guard's input errors to exit 2.
	run := func(err error) error {
		var ie *guard.InputError
		if errors.As(err, &ie) {
			return cli.UsageErr(err)
		}
		return err
	}

	install := &cobra.Command{
		Use:   "install",
		Short: "Create the guard table: per method a set of blocked (address, HOST_ID) pairs and the rules that act on them",
		Args:  cli.NoArgs,
	}
	nat := install.Flags().StringSlice("nat", nil, "trusted NAT prefixes (required): HOST_IDs from other sources are ignored")
	methods := install.Flags().StringSlice("methods", nil, "methods to act on: "+strings.Join(guard.Methods, ", ")+" (default all)")
	action := install.Flags().String("action", "drop", "what a blocked pair's new connections get: drop, or reject (TCP reset, ICMP port unreachable)")
	limit := install.Flags().String("limit", "", "per-pair limit on new connections, e.g. 10/second (unit second, minute, hour or day)")
	burst := install.Flags().Uint32("burst", 5, "connections a pair may open at once beyond --limit")
	// --<method>-type for each method whose carrier is an option (RFC 4727).
	types := map[string]*string{}
	for _, name := range guard.Methods {
		if m, _ := all.Lookup(name); len(m.Decoder.Types) > 0 {
			types[name] = install.Flags().String(name+"-type", guard.TypeText(m.Decoder, m.Decoder.Types[0]),
				"the NAT's "+m.Section+".type (RFC 4727: "+guard.TypeList(m.Decoder)+")")
		}
	}
	replace := install.Flags().Bool("replace", false, "replace an installed table atomically, keeping its blocked pairs")
	install.RunE = func(cmd *cobra.Command, _ []string) error {
		c := guard.Config{Table: *table, Reject: *action == "reject", Types: map[string]byte{}}
		if *action != "drop" && *action != "reject" {
			return cli.UsageErr(fmt.Errorf("--action: %q is not drop or reject", *action))
		}
		var err error
		if c.Methods, err = guard.ParseMethods(*methods); err != nil {
			return cli.UsageErr(fmt.Errorf("--methods: %w", err))
		}
		for _, s := range *nat {
			p, err := parsePrefix(s)
			if err != nil {
				return cli.UsageErr(fmt.Errorf("--nat: %w", err))
			}
			c.NAT = append(c.NAT, p)
		}
		for name, s := range types {
			t, err := strconv.ParseUint(*s, 0, 8)
			if err != nil {
				return cli.UsageErr(fmt.Errorf("--%s-type: %q is not a byte", name, *s))
			}
			c.Types[name] = byte(t)
		}
		if *limit != "" {
			if c.Limit, err = parseRate(*limit, *burst); err != nil {
				return cli.UsageErr(fmt.Errorf("--limit: %w", err))
			}
		}
		if err := c.Validate(); err != nil { // before any netlink
			return run(err)
		}
		nc, err := conn()
		if err != nil {
			return err
		}
		return run(guard.Install(nc, c, *replace))
	}

	block := &cobra.Command{
		Use:   "block {ADDR HOSTID | --from ADDR:PORT}",
		Short: "Block one (public address, HOST_ID) pair: its new connections are dropped or rejected",
		Long: `block adds one (public address, HOST_ID) pair to the block sets. With --from
ADDR:PORT the pair is the one a running natreveal observe saw on the recent
connection from ADDR:PORT (as natreveal-server who prints it): an application's log
line leads to the host behind the NAT. Exit status 1 when observe saw no such
connection, 2 on bad input.`,
	}
	dur := block.Flags().Duration("for", 0, "block for this long (0: until unblocked)")
	from := block.Flags().String("from", "", "block the pair observe saw on the connection from ADDR:PORT")
	control := cmd.PersistentFlags().String("control", observe.DefaultControl, "observe's control socket (for --from)")
	block.Args = pairArgs(from)
	block.RunE = func(cmd *cobra.Command, args []string) error {
		p, note, err := resolvePair(cmd, *control, *from, args)
		if err != nil {
			return err
		}
		nc, err := conn()
		if err != nil {
			return err
		}
		return run(guard.BlockNote(nc, *table, p, *dur, note))
	}

	unblock := &cobra.Command{
		Use:   "unblock {ADDR HOSTID | --from ADDR:PORT}",
		Short: "Unblock one (public address, HOST_ID) pair",
		Long: `unblock deletes one pair from the block sets. With --from ADDR:PORT, the pairs
blocked with the same --from are unblocked, or else the pair observe saw on
that connection.`,
	}
	unFrom := unblock.Flags().String("from", "", "unblock the pair blocked --from ADDR:PORT")
	unblock.Args = pairArgs(unFrom)
	unblock.RunE = func(cmd *cobra.Command, args []string) error {
		nc, err := conn()
		if err != nil {
			return err
		}
		if *unFrom != "" {
			// The pair blocked --from this source, even after observe has
			// forgotten the connection.
			l, err := guard.List(nc, *table, time.Now())
			if err != nil {
				return run(err)
			}
			done := map[guard.Pair]bool{}
			for _, e := range l {
				id, _ := strconv.ParseUint(e.HostID, 0, 32)
				p := guard.Pair{Addr: e.Addr, HostID: uint32(id)}
				if e.Note != fromNote(*unFrom) || done[p] {
					continue
				}
				done[p] = true
				if err := guard.Unblock(nc, *table, p); err != nil {
					return run(err)
				}
			}
			if len(done) > 0 {
				return nil
			}
		}
		p, _, err := resolvePair(cmd, *control, *unFrom, args)
		if err != nil {
			return err
		}
		return run(guard.Unblock(nc, *table, p))
	}

	list := &cobra.Command{
		Use:   "list",
		Short: "Print the blocked pairs as JSON: address, HOST_ID, method, expiry, packets dropped",
		Args:  cli.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			nc, err := conn()
			if err != nil {
				return err
			}
			l, err := guard.List(nc, *table, time.Now())
			if err != nil {
				return run(err)
			}
			enc := json.NewEncoder(cmd.OutOrStdout())
			enc.SetIndent("", "  ")
			return enc.Encode(l)
		},
	}

	remove := &cobra.Command{
		Use:   "remove",
		Short: "Delete the guard table; nothing else is touched",
		Args:  cli.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			nc, err := conn()
			if err != nil {
				return err
			}
			if err := guard.Remove(nc, *table); errors.Is(err, guard.ErrNotInstalled) {
				// Still exit 2 (docs/server.md: no table installed), but
				// not "run guard install first".
				return cli.UsageErr(errors.New("nothing to remove: guard is not installed"))
			} else if err != nil {
				return run(err)
			}
			return nil
		},
	}
	cmd.AddCommand(install, block, unblock, list, remove, guardMetricsCmd(table))
	return cmd
}

// pairArgs: ADDR HOSTID, or none with --from.
func pairArgs(from *string) cobra.PositionalArgs {
	return func(cmd *cobra.Command, args []string) error {
		switch {
		case *from != "" && len(args) != 0:
			return cli.UsageErr(fmt.Errorf("--from names the pair: no ADDR HOSTID with it"))
		case *from == "" && len(args) != 2:
			return cli.UsageErr(fmt.Errorf("want ADDR HOSTID or --from ADDR:PORT"))
		}
		return nil
	}
}

// fromNote is the note a pair blocked --from src keeps.
func fromNote(src string) string {
	if ap, err := netip.ParseAddrPort(src); err == nil {
		src = netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port()).String()
	}
	return "from " + src
}

// resolvePair reads ADDR HOSTID, or asks observe which pair opened the
// connection from --from.
func resolvePair(cmd *cobra.Command, control, from string, args []string) (guard.Pair, string, error) {
	if from == "" {
		p, err := parsePair(args)
		if err != nil {
			return p, "", cli.UsageErr(err)
		}
		return p, "", nil
	}
	s, err := whoIs(cmd.Context(), control, from)
	if err != nil {
		return guard.Pair{}, "", err
	}
	p, err := parsePair([]string{s.Src.Addr().String(), s.HostID})
	if err != nil {
		return p, "", fmt.Errorf("observe's answer for %s: %w", from, err)
	}
	return p, fromNote(from), nil
}

// parsePrefix reads a prefix or a bare address (a host prefix).
func parsePrefix(s string) (netip.Prefix, error) {
	if strings.Contains(s, "/") {
		return netip.ParsePrefix(s)
	}
	a, err := netip.ParseAddr(s)
	if err != nil {
		return netip.Prefix{}, err
	}
	return netip.PrefixFrom(a, a.BitLen()), nil
}

// parsePair reads ADDR HOSTID; the HOST_ID is decimal or 0x hex, 32 bits at
// most.
func parsePair(args []string) (guard.Pair, error) {
	a, err := netip.ParseAddr(args[0])
	if err != nil {
		return guard.Pair{}, fmt.Errorf("address: %w", err)
	}
	id, err := strconv.ParseUint(args[1], 0, 32)
	if err != nil {
		return guard.Pair{}, fmt.Errorf("HOST_ID %q: not a 32-bit number (decimal or 0x hex)", args[1])
	}
	return guard.Pair{Addr: a.Unmap(), HostID: uint32(id)}, nil
}

// parseRate reads N/unit.
func parseRate(s string, burst uint32) (*guard.Rate, error) {
	n, u, ok := strings.Cut(s, "/")
	if !ok {
		return nil, fmt.Errorf("%q is not N/unit", s)
	}
	v, err := strconv.ParseUint(n, 10, 64)
	if err != nil || v == 0 {
		return nil, fmt.Errorf("%q: the rate must be a positive number", s)
	}
	units := map[string]expr.LimitTime{"second": expr.LimitTimeSecond, "minute": expr.LimitTimeMinute,
		"hour": expr.LimitTimeHour, "day": expr.LimitTimeDay}
	unit, ok := units[u]
	if !ok {
		return nil, fmt.Errorf("%q: the unit must be second, minute, hour or day", s)
	}
	return &guard.Rate{N: v, Unit: unit, Burst: burst}, nil
}
