package main

// The port-set method (RFC 7422 deterministic NAT) and the mapping log
// (RFC 6888 §4): `natreveal portset plan|lookup`, and what `run` starts for
// them (startPortSet).

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/netip"
	"os"
	"strings"
	"time"

	"github.com/google/nftables"
	"github.com/spf13/cobra"

	"github.com/natreveal/natreveal/config"
	"github.com/natreveal/natreveal/conntrack"
	"github.com/natreveal/natreveal/hostid"
	"github.com/natreveal/natreveal/portset"
	"github.com/natreveal/natreveal/rules"
)

func portsetCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "portset",
		Short: "Deterministic NAT (RFC 7422): print the published plan, look up a public address:port",
	}
	cmd.AddCommand(portsetPlanCmd(), portsetLookupCmd())
	return cmd
}

func portsetPlanCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "plan",
		Short: "Print the port-set mapping of the configuration as JSON (or the RFC 7422 one-line form)",
		Args:  cobra.NoArgs,
	}
	config.AddFlags(cmd.Flags())
	format := cmd.Flags().String("format", "json", "json (policy, blocks, hosts that are not deterministic), rfc7422 (one line) or nft (the table run installs)")
	cmd.RunE = func(cmd *cobra.Command, _ []string) error {
		c, err := config.Load(cmd.Flags(), os.Getenv)
		if err != nil {
			return usageErr(err)
		}
		if !c.HasPortSetPolicy() {
			return usageErr(&config.Error{Key: "port_set.public", Msg: "no port-set policy configured (set port_set.public and port_set.block_size, or port_set.policy_file)"})
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
			_, err := io.WriteString(out, rules.PortSetText(portSetSpec(c)))
			return err
		}
		return usageErr(&config.Error{Key: "format", Msg: fmt.Sprintf("%q is not json, rfc7422 or nft", *format)})
	}
	return cmd
}

func portsetLookupCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "lookup --policy FILE ADDR:PORT...",
		Short: "Name the inside host (and its HOST_ID) that used a public address:port",
		Args:  cobra.MinimumNArgs(1),
	}
	policy := cmd.Flags().String("policy", "", "published policy: JSON from `portset plan`, or its RFC 7422 line (required)")
	source := cmd.Flags().String("hostid-source", "lower16", "HOST_ID source: lower16, address, hash, map")
	keyFile := cmd.Flags().String("hostid-key-file", "", "key file of the hash source")
	mapFile := cmd.Flags().String("hostid-map-file", "", "map file of the map source")
	bits := cmd.Flags().Int("hostid-bits", 16, "HOST_ID width of the hash and map sources: 16 or 32")
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		if *policy == "" {
			return usageErr(&config.Error{Key: "policy", Msg: "required: the published policy file"})
		}
		p, err := readPolicy(*policy)
		if err != nil {
			return usageErr(&config.Error{Key: "policy", Msg: err.Error()})
		}
		if *bits != 16 && *bits != 32 {
			return usageErr(&config.Error{Key: "hostid-bits", Msg: fmt.Sprintf("%d is not 16 or 32", *bits)})
		}
		src, err := lookupSource(*source, *keyFile, *mapFile, *bits)
		if err != nil {
			return usageErr(err)
		}
		var aps []netip.AddrPort
		for _, a := range args {
			ap, err := netip.ParseAddrPort(a)
			if err != nil || !ap.Addr().Unmap().Is4() {
				return usageErr(&config.Error{Key: "ADDR:PORT", Msg: fmt.Sprintf("%q is not an IPv4 address:port", a)})
			}
			aps = append(aps, ap)
		}
		enc := json.NewEncoder(cmd.OutOrStdout())
		missing := 0
		for _, ap := range aps {
			r := lookupRecord{Public: ap.String()}
			if in, ok := p.Lookup(ap); ok {
				r.Inside = in.String()
				b, _ := p.Forward(in)
				r.Block = b.Ports.String()
				if id, ok := src.HostID(in, 0); ok {
					r.HostID = formatHostID(id, src.Bits())
				}
			} else {
				missing++
				r.Error = "not in a deterministic block: reserved port, another address, or a host of the masquerade"
			}
			if err := enc.Encode(r); err != nil {
				return err
			}
		}
		if missing > 0 {
			return &exitError{code: 1, err: fmt.Errorf("portset lookup: %d of %d not found", missing, len(aps))}
		}
		return nil
	}
	return cmd
}

type lookupRecord struct {
	Public string `json:"public"`
	Inside string `json:"inside,omitempty"`
	HostID string `json:"host_id,omitempty"`
	Block  string `json:"block,omitempty"`
	Error  string `json:"error,omitempty"`
}

// readPolicy reads a policy file: JSON (a policy or a whole plan) or the
// RFC 7422 §3 log record (one line, timestamp optional).
func readPolicy(file string) (portset.Policy, error) {
	data, err := os.ReadFile(file)
	if err != nil {
		return portset.Policy{}, err
	}
	if t := strings.TrimSpace(string(data)); t != "" && !strings.HasPrefix(t, "{") {
		return portset.ParseLogLine(t)
	}
	return portset.ParsePolicy(data)
}

func lookupSource(name, keyFile, mapFile string, bits int) (hostid.Source, error) {
	var key, mf []byte
	var err error
	switch name {
	case "hash":
		if key, err = os.ReadFile(keyFile); err != nil {
			return nil, &config.Error{Key: "hostid-key-file", Msg: err.Error()}
		}
	case "map":
		if mf, err = os.ReadFile(mapFile); err != nil {
			return nil, &config.Error{Key: "hostid-map-file", Msg: err.Error()}
		}
	}
	src, err := hostid.New(name, bits, key, mf, func(string) (uint32, error) { return 0, nil })
	if err != nil {
		return nil, &config.Error{Key: "hostid-source", Msg: err.Error()}
	}
	return src, nil
}

// formatHostID prints a HOST_ID as the mapping log and decode do: hex, 4 or
// 8 digits.
func formatHostID(id uint32, bits int) string {
	if bits <= 16 {
		return fmt.Sprintf("0x%04x", id)
	}
	return fmt.Sprintf("0x%08x", id)
}

// portSetSpec is the kernel table of the configured policy.
func portSetSpec(c *config.Config) rules.PortSetSpec {
	return rules.PortSetSpec{
		Table:    c.Table + "_portset",
		Blocks:   c.PortSet.Policy.Plan(),
		OutIface: c.PortSet.OutIface,
	}
}

// startPortSet installs the port-set table (method port-set) and starts the
// mapping log (mapping_log.file), for run. The returned function stops the
// log and removes the table; call it once.
func startPortSet(ctx context.Context, c *config.Config, src hostid.Source, log *slog.Logger) (func(), error) {
	var undo []func()
	done := func() {
		for i := len(undo) - 1; i >= 0; i-- {
			undo[i]()
		}
	}
	if c.Has(config.MethodPortSet) {
		nft, err := nftables.New()
		if err != nil {
			return nil, fmt.Errorf("nftables: %w", err)
		}
		spec := portSetSpec(c)
		if err := rules.ApplyPortSet(nft, spec); err != nil {
			return nil, err
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
			"deterministic", c.PortSet.Policy.Deterministic(), "hosts", c.PortSet.Policy.Hosts())
		dctx, stopDaily := context.WithCancel(ctx)
		go repeat(dctx, policyLogEvery, func() { log.Info("port-set: policy", "rfc7422", record()) })
		undo = append(undo, stopDaily)
		undo = append(undo, func() {
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
				return nil, &config.Error{Key: "mapping_log.file", Msg: err.Error()}
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
				id = formatHostID(v, src.Bits())
			}
			if err := mw.Write(m.Record(id, c.MappingLog.Destination)); err != nil {
				log.Error("mapping log", "err", err)
			}
		})
		if err != nil {
			cancel()
			done()
			return nil, err
		}
		// Give the event goroutine a moment to drain before the file closes.
		undo = append(undo, func() { cancel(); time.Sleep(50 * time.Millisecond) })
		log.Info("mapping log: writing", "file", f, "destination", c.MappingLog.Destination)
	}
	return done, nil
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
