package main

// The port-set method (RFC 7422 deterministic NAT) and the mapping log
// (RFC 6888 §4): `natreveal portset plan`, and what `run` starts for them
// (startPortSet). The server side's `portset lookup` is natreveal-server's.

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/netip"
	"os"
	"sync"
	"time"

	"github.com/google/nftables"
	"github.com/spf13/cobra"

	"github.com/natreveal/natreveal/config"
	"github.com/natreveal/natreveal/conntrack"
	"github.com/natreveal/natreveal/hostid"
	"github.com/natreveal/natreveal/internal/cli"
	methodportset "github.com/natreveal/natreveal/method/portset"
	"github.com/natreveal/natreveal/rules"
)

func portsetCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "portset",
		Short: "Deterministic NAT (RFC 7422): print the published plan (natreveal-server portset lookup reads it)",
	}
	cmd.AddCommand(portsetPlanCmd())
	return cmd
}

func portsetPlanCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "plan",
		Short: "Print the port-set mapping of the configuration as JSON (or the RFC 7422 one-line form)",
		Args:  cli.NoArgs,
	}
	config.AddFlags(cmd.Flags())
	format := cmd.Flags().String("format", "json", "json (policy, blocks, hosts that are not deterministic), rfc7422 (one line) or nft (the table run installs: with port_set.public beside port_set.policy_file, only this box's blocks)")
	cmd.RunE = func(cmd *cobra.Command, _ []string) error {
		c, err := config.Load(cmd.Flags(), os.Getenv)
		if err != nil {
			return usageErr(err)
		}
		if !c.HasPortSetPolicy() {
			return usageErr(&config.Error{Key: "port_set.public", Msg: "no port-set policy configured (set port_set.public and port_set.block_size, or port_set.policy_file)"})
		}
		// Without the method, run installs no table: a published plan would
		// name hosts behind ports the kernel's masquerade picks.
		if !c.Has(methodportset.Name) {
			return usageErr(&config.Error{Key: "methods", Msg: "port-set is not enabled, so run installs no port-set table: add port-set"})
		}
		p := c.PortSet.Policy
		out := cmd.OutOrStdout()
		switch *format {
		case "json":
			enc := json.NewEncoder(out)
			enc.SetIndent("", "  ")
			return enc.Encode(p.Doc())
		case "rfc7422":
			// RFC 7422 §3: the record, timestamped (UTC, the RFC's form).
			rec, err := p.Record(time.Now().UTC())
			if err != nil {
				return usageErr(&config.Error{Key: "format", Msg: "rfc7422: this policy has no RFC 7422 record: " + err.Error()})
			}
			_, err = fmt.Fprintln(out, rec)
			return err
		case "nft":
			spec := portSetSpec(c)
			if err := spec.Validate(); err != nil {
				return usageErr(errors.New("invalid port-set table: " + oneLine(err)))
			}
			_, err := io.WriteString(out, rules.PortSetText(spec))
			return err
		}
		return usageErr(&config.Error{Key: "format", Msg: fmt.Sprintf("%q is not json, rfc7422 or nft", *format)})
	}
	return cmd
}

// portSetSpec is the kernel table of the configured policy.
func portSetSpec(c *config.Config) rules.PortSetSpec {
	return rules.PortSetSpec{
		Table:    c.Table + "_portset",
		Blocks:   c.PortSet.Blocks(),
		OutIface: c.PortSet.OutIface,
	}
}

// startPortSet installs the port-set table (method port-set) and starts the
// mapping log (mapping_log.file), for run. The returned function stops the
// log and removes the table; call it once.
func startPortSet(ctx context.Context, c *config.Config, src hostid.Source, log *slog.Logger) (undoAll func(), restore func() bool, err error) {
	restore = func() bool { return false }
	var undo []func()
	done := func() {
		for i := len(undo) - 1; i >= 0; i-- {
			undo[i]()
		}
	}
	if c.Has(methodportset.Name) {
		nft, err := nftables.New()
		if err != nil {
			return nil, nil, fmt.Errorf("nftables: %w", err)
		}
		spec := portSetSpec(c)
		if err := rules.ApplyPortSet(nft, spec); err != nil {
			return nil, nil, err
		}
		// RFC 7422 §3: a record of the mapping parameters whenever they
		// change, here whenever the table is installed, and once a day.
		record := func() string {
			rec, err := c.PortSet.Policy.Record(time.Now().UTC())
			if err != nil {
				return "none: " + err.Error()
			}
			return rec
		}
		log.Info("port-set: table installed", "table", "ip "+spec.Table, "rfc7422", record(),
			"deterministic", c.PortSet.Policy.Deterministic(), "hosts", c.PortSet.Policy.Hosts(), "blocks_here", len(spec.Blocks))
		dctx, stopDaily := context.WithCancel(ctx)
		go repeat(dctx, policyLogEvery, func() { log.Info("port-set: policy", "rfc7422", record()) })
		undo = append(undo, stopDaily)
		var mu sync.Mutex // nft, stopped
		stopped := false
		// Without its table the kernel's masquerade picks the ports, and
		// the published plan no longer names the host behind them.
		restore = func() bool {
			mu.Lock()
			defer mu.Unlock()
			if stopped {
				return false
			}
			return putBack(nft, []string{spec.TableName()}, func() error { return rules.ApplyPortSet(nft, spec) },
				log, "port-set: ", "", "rfc7422", record())
		}
		undo = append(undo, func() {
			mu.Lock()
			defer mu.Unlock()
			stopped = true
			if err := rules.RemovePortSet(nft, spec.Table); err != nil {
				log.Error("port-set: removing the table", "err", err)
			}
		})
	}
	if f := c.MappingLog.File; f != "" {
		w := io.Writer(os.Stdout)
		if f != "-" {
			fh, err := os.OpenFile(f, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o640)
			if err != nil {
				done()
				return nil, nil, &config.Error{Key: "mapping_log.file", Msg: err.Error()}
			}
			undo = append(undo, func() { fh.Close() })
			w = fh
		}
		mw := conntrack.NewMappingWriter(w)
		lctx, cancel := context.WithCancel(ctx)
		inside := c.Inside
		err := conntrack.WatchMappings(lctx, 0, func(m conntrack.Mapping) {
			if !inPrefixes(inside, m.Inside.Addr()) {
				return
			}
			id := ""
			if v, ok := src.HostID(m.Inside.Addr(), 0); ok {
				id = hostid.Format(v, src.Bits())
			}
			if err := mw.Write(m.Record(id, c.MappingLog.Destination)); err != nil {
				log.Error("mapping log", "err", err)
			}
		})
		if err != nil {
			cancel()
			done()
			return nil, nil, err
		}
		// Give the event goroutine a moment to drain before the file closes.
		undo = append(undo, func() { cancel(); time.Sleep(50 * time.Millisecond) })
		log.Info("mapping log: writing", "file", f, "destination", c.MappingLog.Destination)
	}
	return done, restore, nil
}

// policyLogEvery is how often a running port-set logs its RFC 7422 record
// (§3: "SHOULD log it once a day").
const policyLogEvery = 24 * time.Hour

// repeat runs f every interval until ctx ends (the periodic statistics,
// the watchdog pings, the daily RFC 7422 record).
func repeat(ctx context.Context, every time.Duration, f func()) {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			f()
		}
	}
}

func inPrefixes(ps []netip.Prefix, a netip.Addr) bool {
	for _, p := range ps {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// waitPortSetOnly is run's main loop when nothing is queued (port-set and/or
// the mapping log only): wait for SIGINT/SIGTERM; SIGHUP asks for a restart.
func waitPortSetOnly(ctx context.Context, hup <-chan os.Signal, log *slog.Logger, ready, stopping func()) error {
	log.Info("running: port-set, no queue")
	ready()
	for {
		select {
		case <-ctx.Done():
			stopping()
			log.Info("stopped: port-set")
			return nil
		case <-hup:
			log.Warn("reload refused: a port-set-only daemon applies a new configuration on a restart")
		}
	}
}
