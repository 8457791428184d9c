package main

import (
	"context"
	"encoding/json"
	"fmt"
	"log"
	"net/netip"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/google/nftables"
	"github.com/spf13/cobra"
	ct "github.com/ti-mo/conntrack"

	"github.com/natreveal/natreveal/config"
	"github.com/natreveal/natreveal/conntrack"
	"github.com/natreveal/natreveal/hostid"
	"github.com/natreveal/natreveal/nfq"
	"github.com/natreveal/natreveal/rules"
)

func runCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "run",
		Short: "Install the ruleset and mark packets until stopped (SIGINT/SIGTERM remove the ruleset)",
		Args:  cobra.NoArgs,
	}
	config.AddFlags(cmd.Flags())
	statsEvery := cmd.Flags().Duration("stats-interval", 0, "log counters this often (0: only at exit)")
	cmd.RunE = func(cmd *cobra.Command, _ []string) error {
		c, err := config.Load(cmd.Flags(), os.Getenv)
		if err != nil {
			return usageErr(err)
		}
		src, err := hostIDSource(c)
		if err != nil {
			return usageErr(err)
		}
		return run(c, src, *statsEvery)
	}
	return cmd
}

func run(c *config.Config, src hostid.Source, statsEvery time.Duration) error {
	logger := log.New(os.Stderr, "natreveal: ", log.LstdFlags|log.Lmsgprefix)
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()

	nft, err := nftables.New()
	if err != nil {
		return fmt.Errorf("nftables: %w", err)
	}
	mech, err := rules.Probe(nft)
	if err != nil {
		return err
	}
	hc := handlerConfig(c)
	spec := ruleSpec(c, mech)

	st := &nfq.Stats{}
	flows := nfq.NewFlows(c.Flows.Max)
	var resolve func(conntrack.Key) (netip.AddrPort, error)
	var resolver *conntrack.Resolver
	if hc.PostNAT {
		cc, err := ct.Dial(nil)
		if err != nil {
			return fmt.Errorf("conntrack: dial: %w", err)
		}
		defer cc.Close()
		resolver = conntrack.NewResolver(cc, 65536, 30*time.Second)
		resolve = resolver.InsideSource
	}
	h := nfq.NewHandler(hc, src, resolve, nfq.NewMTUs(10*time.Second).MTU, flows, st)
	if hc.Tracks() || resolver != nil {
		err := conntrack.WatchDestroy(ctx, 0, func(d conntrack.Destroyed) {
			if d.Proto != 6 || !d.OrigSrc.Addr().Is4() || !d.OrigDst.Addr().Is4() {
				return
			}
			h.ForgetFlow(nfq.FlowKey{
				Inside: d.OrigSrc.Addr().As4(), InsidePort: d.OrigSrc.Port(),
				Server: d.OrigDst.Addr().As4(), ServerPort: d.OrigDst.Port(),
			})
			if resolver != nil {
				resolver.Forget(conntrack.Key{Proto: d.Proto, Src: d.NATSrc, Dst: d.OrigDst})
			}
		})
		if err != nil {
			return err
		}
		go sweep(ctx, flows)
	}
	if statsEvery > 0 {
		go func() {
			t := time.NewTicker(statsEvery)
			defer t.Stop()
			for {
				select {
				case <-ctx.Done():
					return
				case <-t.C:
					logStats(logger, st)
				}
			}
		}()
	}

	installed := false
	qc := nfq.QueueConfig{
		Num: c.Queue.Num, Count: c.Queue.Count, MaxLen: c.Queue.MaxLen, FailOpen: c.Queue.FailOpen,
		Workers: c.Queue.Workers, Backlog: c.Queue.Backlog, RcvBuf: 8 << 20, Logf: logger.Printf,
	}
	err = nfq.Serve(ctx, qc, h, st, func() error {
		if err := rules.Apply(nft, spec); err != nil {
			return err
		}
		installed = true
		logger.Printf("running: table ip %s, queues %d-%d via %s, methods %v, %s",
			spec.Table, c.Queue.Num, c.Queue.Num+c.Queue.Count-1, mech, c.Methods, c.Placement)
		return nil
	})
	if installed {
		if rerr := rules.Remove(nft, spec.Table); rerr != nil {
			logger.Printf("removing the ruleset: %v", rerr)
			if err == nil {
				err = rerr
			}
		}
	}
	logStats(logger, st)
	return err
}

func logStats(l *log.Logger, st *nfq.Stats) {
	b, _ := json.Marshal(st)
	l.Printf("stats %s", b)
}

// sweep ages out flows whose end natreveal never saw.
func sweep(ctx context.Context, f *nfq.Flows) {
	t := time.NewTicker(10 * time.Second)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case now := <-t.C:
			f.Sweep(now, 2*time.Minute)
		}
	}
}
