package main

// `guard metrics`: guard's counters on a Prometheus endpoint. The drops
// happen in the kernel with no daemon, so the exporter is a process of its
// own that reads the table (guard.List) at each scrape; all of its
// exposition is this file.

import (
	"errors"
	"fmt"
	"os/signal"
	"strconv"
	"syscall"
	"time"

	"github.com/google/nftables"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/spf13/cobra"

	"github.com/natreveal/natreveal/guard"
	"github.com/natreveal/natreveal/internal/cli"
	"github.com/natreveal/natreveal/metrics"
)

// DefaultGuardMetrics is guard's metrics address: beside the router's
// (127.0.0.1:9850), local only unless asked.
const DefaultGuardMetrics = "127.0.0.1:9851"

// Series. Each blocked pair is an element of one method's set with its own
// counter: a pair's series ends when the pair is unblocked or expires, so
// every counter only grows (a per-set sum would fall then).
var (
	pairLabels       = []string{"method", "family", "id_bytes", "addr", "host_id"}
	descGuardPackets = prometheus.NewDesc("natreveal_guard_dropped_packets_total",
		"Packets of a blocked (address, HOST_ID) pair that guard dropped or rejected, by method's set.", pairLabels, nil)
	descGuardBytes = prometheus.NewDesc("natreveal_guard_dropped_bytes_total",
		"Bytes of those packets.", pairLabels, nil)
	descGuardPairs = prometheus.NewDesc("natreveal_guard_blocked_pairs",
		"Blocked (address, HOST_ID) pairs now, by method's set.", []string{"method", "family", "id_bytes"}, nil)
	descGuardInstalled = prometheus.NewDesc("natreveal_guard_installed",
		"1 when guard's table is installed, 0 when not.", nil, nil)
)

// guardCollector reads guard's table when a scrape asks.
type guardCollector struct {
	list func() ([]guard.Entry, error)
}

func (c guardCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descGuardPackets, descGuardBytes, descGuardPairs, descGuardInstalled} {
		ch <- d
	}
}

func (c guardCollector) Collect(ch chan<- prometheus.Metric) {
	entries, err := c.list()
	switch {
	case errors.Is(err, guard.ErrNotInstalled):
		ch <- prometheus.MustNewConstMetric(descGuardInstalled, prometheus.GaugeValue, 0)
		return
	case err != nil:
		ch <- prometheus.NewInvalidMetric(descGuardInstalled, err)
		return
	}
	ch <- prometheus.MustNewConstMetric(descGuardInstalled, prometheus.GaugeValue, 1)
	type set struct{ method, family, idBytes string }
	pairs := map[set]int{}
	var order []set
	for _, e := range entries {
		s := set{e.Method, "ipv4", strconv.Itoa(e.IDBytes)}
		if e.Addr.Is6() {
			s.family = "ipv6"
		}
		if _, ok := pairs[s]; !ok {
			order = append(order, s)
		}
		pairs[s]++
		labels := []string{s.method, s.family, s.idBytes, e.Addr.String(), e.HostID}
		ch <- prometheus.MustNewConstMetric(descGuardPackets, prometheus.CounterValue, float64(e.Packets), labels...)
		ch <- prometheus.MustNewConstMetric(descGuardBytes, prometheus.CounterValue, float64(e.Bytes), labels...)
	}
	for _, s := range order {
		ch <- prometheus.MustNewConstMetric(descGuardPairs, prometheus.GaugeValue, float64(pairs[s]), s.method, s.family, s.idBytes)
	}
}

// guardMetricsCmd serves the collector until SIGINT or SIGTERM.
func guardMetricsCmd(table *string) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "metrics",
		Short: "Serve guard's drop counters on a Prometheus /metrics endpoint until SIGINT or SIGTERM",
		Long: `metrics serves /metrics on --listen: per blocked pair (method, family, id_bytes,
addr, host_id) natreveal_guard_dropped_packets_total and
natreveal_guard_dropped_bytes_total, per set natreveal_guard_blocked_pairs, and
natreveal_guard_installed. Each scrape reads guard's table from the kernel (the
counters guard list prints); nothing is kept in between, so it can start before
guard install and outlive guard remove. Needs CAP_NET_ADMIN.`,
		Args: cli.NoArgs,
	}
	listen := cmd.Flags().String("listen", DefaultGuardMetrics, "address of the /metrics endpoint (host:port)")
	cmd.RunE = func(cmd *cobra.Command, _ []string) error {
		if *listen == "" {
			return cli.UsageErr(fmt.Errorf("--listen: an address is required"))
		}
		reg := prometheus.NewRegistry()
		reg.MustRegister(guardCollector{list: func() ([]guard.Entry, error) {
			c, err := nftables.New()
			if err != nil {
				return nil, fmt.Errorf("netlink: %w", err)
			}
			return guard.List(c, *table, time.Now())
		}})
		s, err := metrics.Listen(*listen, promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
		if err != nil {
			return err
		}
		cli.Logger(cmd.ErrOrStderr()).Printf("guard metrics on http://%s/metrics", s.Addr())
		ctx, stop := signal.NotifyContext(cmd.Context(), syscall.SIGINT, syscall.SIGTERM)
		defer stop()
		<-ctx.Done()
		return s.Close()
	}
	return cmd
}
