package main

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/google/nftables"
	"github.com/spf13/cobra"

	"github.com/natreveal/natreveal/config"
	"github.com/natreveal/natreveal/conntrack"
	"github.com/natreveal/natreveal/handler"
	"github.com/natreveal/natreveal/hostid"
	"github.com/natreveal/natreveal/internal/cli"
	"github.com/natreveal/natreveal/method/ident"
	"github.com/natreveal/natreveal/method/portset"
	"github.com/natreveal/natreveal/metrics"
	"github.com/natreveal/natreveal/queue"
	"github.com/natreveal/natreveal/rules"
)

func runCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "run",
		Short: "Install the ruleset and mark packets until stopped (SIGINT/SIGTERM remove it, leaving the closing table for selected flows; SIGHUP reloads)",
		Args:  cli.NoArgs,
	}
	config.AddFlags(cmd.Flags()) // --config and a flag for every key
	statsEvery := cmd.Flags().Duration("stats-interval", 0, "log counters this often (0: only at exit)")
	cmd.RunE = func(cmd *cobra.Command, _ []string) error {
		// load reads the configuration again on SIGHUP: same flags and
		// environment, the file as it is now.
		load := func() (*config.Config, hostid.Source, error) {
			c, err := config.Load(cmd.Flags(), os.Getenv)
			if err != nil {
				return nil, nil, err
			}
			// Before anything is set up: a ruleset Apply would refuse.
			if err := validRules(c); err != nil {
				return nil, nil, err
			}
			src, err := hostIDSource(c)
			if err != nil {
				return nil, nil, err
			}
			return c, src, nil
		}
		c, src, err := load()
		if err != nil {
			return usageErr(err)
		}
		return run(c, src, *statsEvery, load)
	}
	return cmd
}

func run(c *config.Config, src hostid.Source, statsEvery time.Duration, load func() (*config.Config, hostid.Source, error)) error {
	slogger := cli.NewLogger(c.Log.Format, os.Stderr)
	logger := slog.NewLogLogger(slogger.Handler(), slog.LevelInfo) // Printf-style parts: ident, handler
	notify := notifier{log: slogger}
	// One daemon per network namespace, before anything is touched: a
	// second would take the first's sysctl records for a killed
	// predecessor's and restore them under it.
	unlock, err := lockNetns(slogger)
	if err != nil {
		return fmt.Errorf("%w; stop it first", err)
	}
	defer unlock()
	// Sysctls a killed predecessor left set: back to what it found, except
	// those this run sets again (sysctlOn restores their record at exit).
	var keep []string
	if c.Selects() {
		keep = append(keep, beLiberal)
	}
	if tracksTCP(c) {
		keep = append(keep, ctAcct)
	}
	restoreLeftSysctls(slogger, keep...)
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()

	nft, err := nftables.New()
	if err != nil {
		return fmt.Errorf("nftables: %w", err)
	}
	st := &handler.Stats{}
	d := &packetDaemon{ctx: ctx, log: slogger, nft: nft, st: st, mtu: handler.NewMTUs(10 * time.Second).MTU, src: &swapSource{}}
	d.src.Store(src)
	defer d.close()
	defer serveControl(c, d, slogger)()

	if c.Metrics.Listen != "" || c.Metrics.Textfile != "" {
		reg := metrics.NewRegistry(metrics.Source{
			Stats: func() *handler.Stats { return st },
			Flows: func() int {
				if f := d.flows.Load(); f != nil {
					return f.Len()
				}
				return 0
			},
			Lookups: d.lookups.Load,
			Refresh: d.RefreshRuleset,
			Version: version,
		})
		if c.Metrics.Listen != "" {
			closeEndpoint, err := serveMetrics(c.Metrics.Listen, reg, slogger)
			if err != nil {
				return err
			}
			defer closeEndpoint()
		}
		if c.Metrics.Textfile != "" {
			tctx, cancel := context.WithCancel(ctx)
			done, err := metrics.Textfile(tctx, c.Metrics.Textfile, c.Metrics.Interval, reg,
				func(err error) { slogger.Warn("metrics: textfile", "err", err) })
			if err != nil {
				cancel()
				return err
			}
			defer func() { cancel(); <-done }()
			slogger.Info("metrics: writing the text format", "file", c.Metrics.Textfile, "every", c.Metrics.Interval)
		}
	}

	// What puts the tables back when something else deletes them
	// (keep.go): the packet path's once installed, and port-set's.
	tables := keeper{log: slogger, watch: func() (<-chan string, func(), error) { return rules.WatchDeleted(0) }, checks: []func() bool{d.restore},
		restored: func() { st.Inc(handler.TablesRestored) }, settle: 10 * time.Millisecond, retry: 10 * time.Second}
	// port-set (RFC 7422 SNAT blocks) and the mapping log: no queue needed.
	if c.Has(portset.Name) || c.MappingLog.File != "" {
		undo, restore, err := startPortSet(ctx, c, d.src, slogger)
		if err != nil {
			return err
		}
		d.portSet.Store(c.Has(portset.Name))
		defer func() { d.portSet.Store(false); undo() }()
		tables.checks = append(tables.checks, restore)
	}
	if c.Has(portset.Name) || c.PacketMethods() {
		go tables.run(ctx)
	}
	if (c.Has(portset.Name) || c.MappingLog.File != "") && !c.PacketMethods() && !c.Has(ident.Name) {
		return waitPortSetOnly(ctx, hup, slogger, notify.ready, notify.stopping)
	}

	if c.Has(ident.Name) {
		cc, err := conntrack.Dial()
		if err != nil {
			return err
		}
		defer cc.Close()
		wait, err := startIdent(ctx, c, d.src, cc, logger)
		if err != nil {
			return err
		}
		defer func() { stop(); wait() }() // stop ends ctx also on an error return
		if !c.PacketMethods() {
			if err := dropCaps(slogger, keptCaps(true)); err != nil {
				slogger.Warn("keeping every capability: "+err.Error(), "err", err)
			}
			slogger.Info("running: ident only, no ruleset", "ident", c.Ident.Listen)
			notify.ready()
			notify.watchdog(ctx, stop, func(time.Duration) string { return "" }) // ident's server has its own loop
			for {
				select {
				case <-ctx.Done():
					notify.stopping()
					slogger.Info("stopped: ident only")
					return nil
				case <-hup:
					slogger.Warn("reload refused: an ident-only daemon applies a new configuration on a restart")
				}
			}
		}
	}

	if d.mech, err = rules.Probe(nft); err != nil {
		return err
	}
	if h := seqAdjHelper(c); h != "" {
		if err := rules.ProbeHelper(nft, h); err != nil {
			d.noHelper = true
			slogger.Warn("selected flows stay in user space: no conntrack helper for the kernel's sequence adjustment", "err", err)
		}
	}
	defer d.restoreAcct()
	// Before the rules, so that the flows they follow get the counters;
	// once more after them (Bound) when nf_conntrack was not loaded yet.
	counting := !tracksTCP(c) || d.countPackets(true)
	if err := d.start(c, src); err != nil {
		return err
	}
	if c.Selects() {
		restore, err := liberalTCP(slogger)
		if err != nil {
			return err
		}
		defer restore()
	}
	if statsEvery > 0 {
		go repeat(ctx, statsEvery, func() {
			d.RefreshRuleset()
			logStats(slogger, st)
		})
	}

	// The selected flows' fail-closed queues: those of the ruleset d installs.
	_, closed := d.spec.SelectQueues()
	qc := queue.Config{
		Num: c.Queue.Num, Count: c.Queue.Count, Closed: closed, MaxLen: c.Queue.MaxLen, FailOpen: c.Queue.FailOpen,
		Workers: c.Queue.Workers, Backlog: c.Queue.Backlog, RcvBuf: 8 << 20, Logf: logger.Printf,
		GSO: handlerConfig(c).WantsGSO(), PerCPU: c.Queue.Count > 1, Live: &queue.Liveness{},
	}
	var removeErr error
	err = queue.Serve(ctx, qc, d, st, queue.Hooks{
		Bound: func() error {
			if err := d.install(); err != nil {
				return err
			}
			if !counting {
				d.mu.Lock()
				d.countPackets(false)
				d.mu.Unlock()
			}
			// Sockets bound, tables installed, sysctls set: the rest needs
			// only the network capabilities.
			if err := dropCaps(slogger, keptCaps(c.Has(ident.Name))); err != nil {
				slogger.Warn("keeping every capability: "+err.Error(), "err", err)
			}
			slogger.Info("running: "+installed(c, d.spec, d.mech), "table", d.spec.Table, "methods", c.Methods,
				"mechanism", d.mech.String(), "placement", c.Placement, "version", version)
			notify.ready()
			notify.watchdog(ctx, stop, qc.Live.Stuck)
			go reloader(ctx, d, hup, load, notify, slogger)
			return nil
		},
		Unbinding: func() {
			notify.stopping()
			if removeErr = d.remove(); removeErr != nil {
				slogger.Error("removing the ruleset", "err", removeErr)
			} else if d.spec.Select {
				slogger.Info("stopped: table "+d.spec.Table+" now only resets the selected flows still open (chain "+
					rules.ClosingChain+"; the next run replaces it, `natreveal rules remove` deletes it)", "table", d.spec.Table)
			} else {
				slogger.Info("stopped: table "+d.spec.Table+" removed", "table", d.spec.Table)
			}
		},
	})
	if err == nil {
		err = removeErr
	}
	logStats(slogger, st)
	return err
}

// reloader applies a new configuration on each SIGHUP until ctx ends. A bad
// configuration, or one that needs a restart, keeps the running one.
func reloader(ctx context.Context, d *packetDaemon, hup <-chan os.Signal, load func() (*config.Config, hostid.Source, error),
	notify notifier, log *slog.Logger) {
	for {
		select {
		case <-ctx.Done():
			return
		case <-hup:
		}
		notify.reloading()
		c, src, err := load()
		var what string
		if err == nil {
			what, err = d.reload(c, src)
		}
		if err != nil {
			log.Error("reload failed, keeping the running configuration: "+err.Error(), "err", err.Error())
		} else {
			log.Info("reloaded: "+what, "table", c.Table, "methods", c.Methods, "placement", c.Placement)
		}
		notify.ready()
	}
}
