// Package bench is `natreveal-lab bench`: it measures natreveal's SYN path
// against the kernel's NAT alone (issue 6), in network namespaces of its own
// (package lab), as root:
//
//	go run ./cmd/natreveal-lab bench            # about 5 minutes
//	go run ./cmd/natreveal-lab bench -quick     # about 45 seconds
//	go run ./cmd/natreveal-lab bench -json out.json
//
// Modes, alternated in rounds (each round starts at the next mode) so that
// machine drift cancels: kernel only (masquerade, nothing queued); queue
// only (SYNs through NFQUEUE, accepted unchanged by queue.Serve in this
// binary); tcp-option, ip-id and ip-option (`natreveal run`); ip-id in the
// kernel (`natreveal run --ip-id-kernel`: an nft map from inside address to
// HOST_ID that the daemon fills from each host's first SYN).
//
// Selected flows (bulk.go): http-header and proxy-protocol, one connection
// moving -bulk-mib MiB down then up, against the same transfers with
// natreveal off; `-modes http-header,proxy-protocol` runs only these.
//
// Established flows (established.go): long-lived connections from both
// inside hosts to a port no method selects, 64-byte transactions closed
// loop (saturation) and paced (the whole machine's CPU per transaction and
// per packet crossing the NAT, latency, packets queued per transaction);
// it runs with the SYN-path table for its natreveal modes and the
// selected-flow configurations, or alone with `-modes established,...`,
// and not with -established=false.
//
// Per mode and round: new connections per second (closed-loop handshakes from
// both clients, each reset at once); connect() latency p50/p99 at half the
// kernel-only or, when lower, the queue-only connection rate (paced, open
// loop, so below every mode's saturation); SYNs per second reaching the
// server while one raw-socket thread floods SYNs to a closed port; the
// daemon's CPU time per queued packet during the flood; kernel queue drops.
// The daemons run with queue.fail_open false, so an overloaded queue drops
// (and counts) instead of letting SYNs pass unmarked.
package bench

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/natreveal/natreveal/internal/cli"
	"github.com/natreveal/natreveal/internal/cpuprofile"
	"github.com/natreveal/natreveal/internal/progress"
	"github.com/natreveal/natreveal/lab"
)

type params struct {
	rounds                      int
	conn, lat, flood, floodWarm time.Duration
	workers                     int
	gens                        int // flood generators; 0: one per CPU
	maxFlood                    int
	rate                        float64 // paced load; 0: half the warm-up rates
	lanes                       bool
	cpuProfile                  string // -hold: the daemon's Go CPU profile goes here
}

// sample is one mode's measurement in one round.
type sample struct {
	ConnRate   float64           `json:"conn_per_s"`
	ConnFailed map[string]int    `json:"conn_failed,omitempty"`
	P50        time.Duration     `json:"lat_p50_ns"`
	P99        time.Duration     `json:"lat_p99_ns"`
	LatLate    int               `json:"lat_late"`
	SYNRate    float64           `json:"syn_per_s"`
	SYNSent    float64           `json:"syn_sent_per_s"`
	CPUPerPkt  float64           `json:"cpu_ns_per_pkt"` // during the flood; 0: no daemon
	UserPerPkt float64           `json:"user_ns_per_pkt"`
	PktPerConn float64           `json:"queued_per_conn"`
	Drops      uint64            `json:"kernel_drops"`
	Stats      map[string]uint64 `json:"daemon_stats,omitempty"`
	// The paced load: the whole machine's CPU time per new connection.
	CPUPerConn float64 `json:"cpu_us_per_conn"`
	PacedConns uint64  `json:"paced_conns"`
	// Where it goes: the daemon's own threads' CPU time (its system time
	// includes the rest of each queued packet's way, which runs in the
	// verdict's send) and the machine's context switches, per connection.
	DaemonCPUPerConn float64 `json:"daemon_cpu_us_per_conn"`
	CtxtPerConn      float64 `json:"ctxt_per_conn"`
	// ProcsCPUPerConn is the bench's and the daemon's threads' CPU per
	// connection (pacedResult.procsUsPerConn): robust on a shared machine.
	ProcsCPUPerConn float64 `json:"procs_cpu_us_per_conn"`
	LatFailed       int     `json:"lat_failed"`
	// The flood's balance: every SYN sent, received or dropped somewhere.
	Account synAccount `json:"syn_account"`
}

// Result is a mode's median over the rounds and its ratios to kernel only.
type Result struct {
	Mode       string  `json:"mode"`
	ConnRate   float64 `json:"conn_per_s"`
	ConnRatio  float64 `json:"sat_conn_ratio"` // saturation conn/s, x kernel only
	SYNRate    float64 `json:"syn_per_s"`
	SYNRatio   float64 `json:"sat_syn_ratio"` // saturation SYN/s with the HOST_ID, x kernel only
	CPUPerPkt  float64 `json:"cpu_ns_per_pkt"`
	UserPerPkt float64 `json:"user_ns_per_pkt"`
	PktPerConn float64 `json:"queued_per_conn"`
	P50        float64 `json:"lat_p50_us"`
	P99        float64 `json:"lat_p99_us"`
	AddedP50   float64 `json:"added_p50_us"`
	AddedP99   float64 `json:"added_p99_us"`
	Drops      uint64  `json:"kernel_drops"`
	// CPUPerConn is the whole machine's CPU µs per new connection at the
	// paced load; AddedCPU the median over rounds of its difference to
	// kernel only in the same round, AddedCPUMin/Max the spread.
	CPUPerConn  float64  `json:"cpu_us_per_conn"`
	AddedCPU    float64  `json:"added_cpu_us_per_conn"`
	AddedCPUMin float64  `json:"added_cpu_us_per_conn_min"`
	AddedCPUMax float64  `json:"added_cpu_us_per_conn_max"`
	Unaccounted int64    `json:"unaccounted_syns"` // over all rounds' floods
	Rounds      []sample `json:"rounds"`
}

type report struct {
	Date    string   `json:"date"`
	Kernel  string   `json:"kernel"`
	Model   string   `json:"cpu_model"` // /proc/cpuinfo's first "model name"
	CPUs    int      `json:"cpus"`
	Quick   bool     `json:"quick"`
	CPUList []int    `json:"cpu_list"` // the CPUs the bench and its daemons ran on
	Queues  int      `json:"queues"`
	Lanes   bool     `json:"lanes"` // queue-only mode: per-CPU pinned lanes (natreveal run: whenever queues > 1)
	Gens    int      `json:"flood_generators"`
	LatRate float64  `json:"latency_rate_per_s"` // the paced load of the CPU and latency figures
	Results []Result `json:"results"`
	// Unaccounted is true when some flood left SYNs that no counter
	// explains (see each round's syn_account).
	Unaccounted bool   `json:"unaccounted_syns"`
	Goals       []goal `json:"goals"`
	// Scaling is the -cpus table: one row per CPU count, queue count,
	// lanes setting and mode.
	Scaling []scaleRow `json:"scaling,omitempty"`
	// Bulk is the selected-flow table: one connection's download and
	// upload with every packet through the daemon.
	Bulk []BulkResult `json:"selected_bulk,omitempty"`
	// Established is the established-flows table: long-lived connections
	// natreveal is done with, EstConns per inside client, paced at EstRate
	// transactions per second for the CPU and latency figures.
	Established []EstResult `json:"established,omitempty"`
	EstConns    int         `json:"established_conns_per_client,omitempty"`
	EstRate     float64     `json:"established_rate_per_s,omitempty"`
}

// prog names the command in its messages.
const prog = "natreveal-lab bench"

// opts are bench's flags.
type opts struct {
	role, jsonOut, modes, cpuProfile, cpus, queueCounts string
	quick, lanes, established                           bool
	queues, rounds, bulkMiB, gens, estConns             int
	rate, estRate                                       float64
	hold, estTime                                       time.Duration
}

// parseFlags reads bench's command line: flag.ErrHelp for -h, else an
// error for one line. The flags are single-dash (package flag); bench
// takes no arguments.
func parseFlags(args []string) (*flag.FlagSet, *opts, error) {
	var o opts
	fs := flag.NewFlagSet(prog, flag.ContinueOnError)
	fs.SetOutput(io.Discard) // errors are one line, said by the caller
	fs.Usage = func() {}
	fs.StringVar(&o.role, "role", "", "internal: passthrough or gonfqueue serves the queue for the queue-only modes")
	fs.BoolVar(&o.quick, "quick", false, "one short round (under 60 s)")
	fs.StringVar(&o.jsonOut, "json", "", "also write the results to this file")
	fs.StringVar(&o.modes, "modes", "", "comma-separated subset of modes (default all); with \"established\" among them, only the established-flows table")
	fs.IntVar(&o.queues, "queues", 0, "NFQUEUE queues (queue.count) for the daemons; 0: one per CPU, natreveal's default")
	fs.IntVar(&o.rounds, "rounds", 0, "rounds (default 3, -quick 1)")
	fs.IntVar(&o.bulkMiB, "bulk-mib", 0, "MiB per bulk transfer of the selected-flow modes (default 128, -quick 32)")
	fs.DurationVar(&o.hold, "hold", 0, "only run the closed loop of the first mode of -modes for this long (for profiling it), print its rate; with -rate, the paced load at that rate and where its CPU goes")
	fs.BoolVar(&o.lanes, "lanes", true, "queue-only mode: per-CPU pinned lanes when queues > 1 (natreveal run always uses them then)")
	fs.Float64Var(&o.rate, "rate", 0, "paced load in conn/s for CPU per connection and latency (default: half the kernel-only or queue-only warm-up rate)")
	fs.IntVar(&o.gens, "gens", 0, "SYN flood generators, pinned one per CPU in turn (default one per CPU)")
	fs.StringVar(&o.cpuProfile, "cpuprofile", "", "with -hold: write the daemon's Go CPU profile over the hold to this file (builds natreveal with -tags pprof)")
	fs.StringVar(&o.cpus, "cpus", "", "scaling: run the bench once per CPU count of this list (e.g. 1,2,4,8,16), each under taskset on the first N CPUs")
	fs.StringVar(&o.queueCounts, "queue-counts", "", "scaling: queue counts per CPU count (default 1 and N); each count > 1 with lanes on and off")
	fs.BoolVar(&o.established, "established", true, "the established-flows table (with the SYN-path table, for its natreveal modes and the selected-flow configurations)")
	fs.IntVar(&o.estConns, "established-conns", 64, "established flows: long-lived connections per inside client")
	fs.Float64Var(&o.estRate, "established-rate", 0, "established flows: paced load in transactions/s (default: a quarter of kernel only's saturation)")
	fs.DurationVar(&o.estTime, "established-time", 0, "established flows: duration of each load, saturation and paced (default 2s, -quick 800ms)")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return fs, nil, err
		}
		return fs, nil, fmt.Errorf("%w (%s -h lists the flags)", err, prog)
	}
	if fs.NArg() > 0 {
		return fs, nil, fmt.Errorf("unexpected argument %q: bench takes only flags, single-dash (%s -h lists them)", fs.Arg(0), prog)
	}
	return fs, &o, o.check()
}

// check refuses what the flags cannot mean, before anything runs. A
// negative count or duration is refused, not read as the default (0).
func (o *opts) check() error {
	for _, c := range []struct {
		name string
		neg  bool
	}{
		{"rounds", o.rounds < 0}, {"queues", o.queues < 0}, {"gens", o.gens < 0}, {"bulk-mib", o.bulkMiB < 0},
		{"rate", o.rate < 0}, {"hold", o.hold < 0}, {"established-rate", o.estRate < 0}, {"established-time", o.estTime < 0},
	} {
		if c.neg {
			return fmt.Errorf("-%s: must not be negative (0 or leaving it out: the default)", c.name)
		}
	}
	switch o.role {
	case "", "passthrough", "gonfqueue":
	default:
		return fmt.Errorf("-role: %q is not passthrough or gonfqueue", o.role)
	}
	if o.cpuProfile != "" && o.hold <= 0 {
		return errors.New("-cpuprofile needs -hold")
	}
	if o.estConns < 1 {
		return errors.New("-established-conns must be at least 1")
	}
	for _, l := range []struct{ name, list string }{{"cpus", o.cpus}, {"queue-counts", o.queueCounts}} {
		if _, err := counts(l.name, l.list); err != nil {
			return err
		}
	}
	if _, _, estOnly, err := selectModes(o.modes); err != nil {
		return err
	} else if estOnly && !o.established {
		return errors.New("-modes established with -established=false")
	}
	if o.jsonOut != "" {
		if err := cli.CheckOutput("-json", o.jsonOut); err != nil {
			return err
		}
	}
	return nil
}

// selectModes reads -modes: the SYN-path modes and selected-flow (bulk)
// modes to run, kernel only first in each table that has another mode,
// and whether the established table runs alone ("established" named).
func selectModes(list string) (modes []mode, bulk []bulkMode, estOnly bool, err error) {
	if list == "" {
		return allModes, allBulkModes, false, nil
	}
	for _, name := range strings.Split(list, ",") {
		i := slices.IndexFunc(allModes, func(m mode) bool { return m.name == name })
		j := slices.IndexFunc(allBulkModes, func(m bulkMode) bool { return m.name == name })
		switch {
		case name == "established":
			estOnly = true
		case name == "kernel":
		case i >= 0:
			modes = append(modes, allModes[i])
		case j >= 0:
			bulk = append(bulk, allBulkModes[j])
		default:
			return nil, nil, false, fmt.Errorf("-modes: unknown mode %q (%s)", name, strings.Join(modeNames(), ", "))
		}
	}
	if estOnly && len(modes) == 0 && len(bulk) == 0 {
		modes, bulk = allModes[1:], allBulkModes[1:]
	}
	if len(modes) > 0 || len(bulk) == 0 {
		modes = append([]mode{allModes[0]}, modes...)
	}
	if len(bulk) > 0 {
		bulk = append([]bulkMode{allBulkModes[0]}, bulk...)
	}
	return modes, bulk, estOnly, nil
}

// modeNames are the names -modes takes.
func modeNames() []string {
	var names []string
	for _, m := range allModes {
		names = append(names, m.name)
	}
	for _, m := range allBulkModes[1:] {
		names = append(names, m.name)
	}
	return append(names, "established")
}

// Main runs the bench with the command-line arguments args (without the
// program and subcommand names) and returns the exit code: bad input is
// one line on stderr and exit 2, checked before anything runs.
func Main(args []string) int {
	fs, o, err := parseFlags(args)
	switch {
	case errors.Is(err, flag.ErrHelp):
		fs.SetOutput(os.Stdout)
		fmt.Fprintf(os.Stdout, "Usage: %s [flags]\n\nFlags (single-dash):\n", prog)
		fs.PrintDefaults()
		return 0
	case err != nil:
		fmt.Fprintf(os.Stderr, "%s: %v\n", prog, err)
		return 2
	}
	queues := o.queues
	if queues == 0 {
		queues = len(cpuList())
	}
	switch o.role {
	case "passthrough":
		if err := passthrough(queues, o.lanes); err != nil {
			fmt.Fprintln(os.Stderr, "passthrough:", err)
			return 1
		}
		return 0
	case "gonfqueue":
		if err := goNFQueue(queues); err != nil {
			fmt.Fprintln(os.Stderr, "go-nfqueue:", err)
			return 1
		}
		return 0
	}
	if o.cpus != "" {
		cpus, _ := counts("cpus", o.cpus) // checked with the other flags
		qs, _ := counts("queue-counts", o.queueCounts)
		return scaling(fs, cpus, qs, o.jsonOut)
	}
	p := params{rounds: 3, conn: 4 * time.Second, lat: 1500 * time.Millisecond, flood: 1500 * time.Millisecond,
		floodWarm: 300 * time.Millisecond, workers: 32, maxFlood: 3_000_000}
	if o.quick {
		p = params{rounds: 1, conn: time.Second, lat: time.Second, flood: time.Second,
			floodWarm: 200 * time.Millisecond, workers: 32, maxFlood: 2_000_000}
	}
	p.gens, p.rate, p.lanes, p.cpuProfile = o.gens, o.rate, o.lanes, o.cpuProfile
	if p.gens == 0 {
		p.gens = len(cpuList())
	}
	if o.rounds > 0 {
		p.rounds = o.rounds
	}
	mib := 128
	if o.quick {
		mib = 32
	}
	if o.bulkMiB > 0 {
		mib = o.bulkMiB
	}
	ep := estParams{conns: o.estConns, rate: o.estRate, dur: 2 * time.Second}
	if o.quick {
		ep.dur = 800 * time.Millisecond
	}
	if o.estTime > 0 {
		ep.dur = o.estTime
	}
	// SYN-path modes and selected-flow (bulk) modes; the established
	// table runs with the SYN-path table, or alone when -modes names it.
	modes, bulk, estOnly, _ := selectModes(o.modes) // checked
	if o.established && (estOnly || len(modes) > 0) {
		ep.on = true
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	ctx, cancel := context.WithTimeout(ctx, 15*time.Minute)
	defer cancel()
	if o.hold > 0 {
		p.conn = o.hold
	}
	rep, err := run(ctx, p, modes, bulk, queues, mib, o.hold > 0, estOnly, ep)
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		return 1
	}
	if o.hold > 0 {
		return 0
	}
	rep.Quick = o.quick
	rep.Goals = evalGoals(rep)
	printTable(os.Stdout, rep)
	if o.jsonOut != "" {
		b, _ := json.MarshalIndent(rep, "", "  ")
		if err := os.WriteFile(o.jsonOut, append(b, '\n'), 0o644); err != nil {
			fmt.Fprintln(os.Stderr, "bench:", err)
			return 1
		}
	}
	return 0
}

func run(ctx context.Context, p params, modes []mode, bulk []bulkMode, queues, mib int, hold, estOnly bool, ep estParams) (*report, error) {
	if os.Geteuid() != 0 {
		return nil, fmt.Errorf("needs root (network namespaces, nftables)")
	}
	dir, err := os.MkdirTemp("", "natreveal-bench")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	binary, err := lab.Natreveal(ctx, "", dir, os.Stderr)
	if p.cpuProfile != "" {
		binary, err = pprofBinary(ctx, dir)
	}
	if err != nil {
		return nil, err
	}

	l, err := lab.New()
	if err != nil {
		return nil, err
	}
	defer l.Close()
	if err := l.Nft(l.Srv, serverCounters); err != nil {
		return nil, err
	}
	if err := l.Nft(l.NAT, natCounters); err != nil {
		return nil, err
	}
	// Each measured connection is reset at once; conntrack keeps its entry
	// 10 s in CLOSE by default, and at 40k conn/s that overflows the table
	// (nf_conntrack_max 262144 here): new SYNs are dropped, and the rate
	// collapses to the 1 s SYN retransmission (seen: 5k-7k conn/s rounds).
	if _, err := l.Exec(l.NAT, "sysctl", "-qw", "net.netfilter.nf_conntrack_tcp_timeout_close=1"); err != nil {
		return nil, err
	}
	srv, err := startServer(l.Srv)
	if err != nil {
		return nil, err
	}
	defer srv.close()
	clients := []string{l.C1, l.C2}
	rep := &report{Date: time.Now().UTC().Format("2006-01-02"), Kernel: kernelRelease(), Model: cpuModel(), CPUs: runtime.NumCPU(),
		CPUList: cpuList(), Queues: queues, Lanes: p.lanes, Gens: p.gens}
	if hold {
		return rep, holdMode(ctx, l, modes[len(modes)-1], binary, queues, clients, p)
	}
	if len(modes) > 0 && !estOnly {
		if err := runSYN(ctx, l, rep, p, modes, binary, queues, clients); err != nil {
			return nil, err
		}
	}
	if len(bulk) > 0 && !estOnly {
		if rep.Bulk, err = runBulk(ctx, l, bulk, binary, dir, p.rounds, mib); err != nil {
			return nil, err
		}
	}
	if ep.on {
		em := establishedModes(l, modes, bulk, binary, dir, queues, p.lanes)
		rep.EstConns = ep.conns
		if rep.Established, rep.EstRate, err = runEstablished(ctx, l, em, p.rounds, ep); err != nil {
			return nil, err
		}
	}
	return rep, nil
}

// runSYN measures the SYN-path modes into rep.
func runSYN(ctx context.Context, l *lab.Lab, rep *report, p params, modes []mode, binary string, queues int, clients []string) error {
	// Warm up, and find the paced rate for the latency runs: half the
	// kernel-only connection rate.
	note("warm-up on CPUs %v, %d queue(s), %d flood generator(s)", cpuList(), queues, p.gens)
	kr, _, err := connRate(ctx, clients, p.workers, time.Second)
	if err != nil {
		return err
	}
	rep.LatRate = kr / 2
	// Latency is only meaningful below every mode's saturation: the queue
	// round trip alone bounds the queued modes, so half the queue-only
	// rate when that is lower.
	for _, m := range modes {
		if !m.passthrough || p.rate > 0 {
			continue
		}
		d, err := startDaemon(l, m, binary, queues, p.lanes)
		if err != nil {
			return err
		}
		qr, _, err := connRate(ctx, clients, p.workers, time.Second)
		d.Kill()
		if err != nil {
			return err
		}
		note("%s warm-up: %.0f conn/s", m.name, qr)
		rep.LatRate = min(rep.LatRate, qr/2)
	}
	if p.rate > 0 {
		rep.LatRate = p.rate
	}
	note("kernel-only warm-up: %.0f conn/s; paced load (CPU per connection, latency) at %.0f conn/s", kr, rep.LatRate)

	samples := make([][]sample, len(modes))
	pl := progress.Stderr()
	for r := 0; r < p.rounds; r++ {
		for k := range modes {
			i := (r + k) % len(modes)
			stepProgress(pl, r, p.rounds, k, len(modes), modes[i].name)
			s, err := measure(ctx, l, modes[i], binary, queues, clients, p, rep.LatRate)
			if err != nil {
				pl.Done()
				return fmt.Errorf("round %d, %s: %w", r+1, modes[i].name, err)
			}
			pl.Printf("round %d %-13s %8.0f conn/s  %8.0f SYN/s (sent %8.0f)  %6.1f µs CPU/conn  p50 %6.0f µs  p99 %6.0f µs  %s\n",
				r+1, modes[i].name, s.ConnRate, s.SYNRate, s.SYNSent, s.CPUPerConn, us(s.P50), us(s.P99), s.Account)
			if !s.Account.unaccountedOK() {
				pl.Printf("round %d %s: %d SYNs unaccounted\n", r+1, modes[i].name, s.Account.Unaccounted)
			}
			samples[i] = append(samples[i], s)
		}
	}
	pl.Done()
	for i, m := range modes {
		rep.Results = append(rep.Results, summarize(m.name, samples[i]))
	}
	k := rep.Results[0]
	for i := range rep.Results {
		res := &rep.Results[i]
		// Each round measured every mode once, next to kernel only: the
		// median of the per-round ratios cancels the machine's drift
		// between rounds better than a ratio of medians.
		res.ConnRatio = pairedRatio(res.Rounds, k.Rounds, func(s sample) float64 { return s.ConnRate })
		res.SYNRatio = pairedRatio(res.Rounds, k.Rounds, func(s sample) float64 { return s.SYNRate })
		res.AddedP50 = res.P50 - k.P50
		res.AddedP99 = res.P99 - k.P99
		var added []float64
		for j := range min(len(res.Rounds), len(k.Rounds)) {
			added = append(added, res.Rounds[j].CPUPerConn-k.Rounds[j].CPUPerConn)
		}
		res.AddedCPU = median(added, func(x float64) float64 { return x })
		if len(added) > 0 {
			res.AddedCPUMin, res.AddedCPUMax = slices.Min(added), slices.Max(added)
		}
		for _, s := range res.Rounds {
			res.Unaccounted += s.Account.Unaccounted
			if !s.Account.unaccountedOK() {
				rep.Unaccounted = true
			}
		}
	}
	return nil
}

// holdMode runs mode m's closed loop alone for p.conn: a steady load to
// profile (perf, /proc/stat) from outside. With p.rate set it runs the
// paced load at that rate instead and prints where its CPU time goes.
func holdMode(ctx context.Context, l *lab.Lab, m mode, binary string, queues int, clients []string, p params) error {
	var d *daemon
	if m.methods != "" || m.passthrough {
		var env []string
		if p.cpuProfile != "" {
			abs, err := filepath.Abs(p.cpuProfile)
			if err != nil {
				return err
			}
			env = []string{cpuprofile.File + "=" + abs, fmt.Sprintf("%s=%d", cpuprofile.Seconds, max(1, int(p.conn.Seconds())))}
		}
		var err error
		if d, err = startDaemon(l, m, binary, queues, p.lanes, env...); err != nil {
			return err
		}
		defer d.Kill()
	}
	if m.nft != "" {
		if err := l.Nft(l.NAT, m.nft); err != nil {
			return err
		}
		defer l.Exec(l.NAT, "nft", "delete", "table", "ip", m.nftTable)
	}
	if err := lab.FlushConntrack(l.NAT); err != nil {
		return err
	}
	if p.rate > 0 {
		note("holding %s at %.0f conn/s for %v", m.name, p.rate, p.conn)
		q0, _ := readQueueStats(l.NAT)
		pr, err := paced(ctx, clients, p.rate, p.conn, d.pid())
		q1, _ := readQueueStats(l.NAT)
		n := len(pr.durs)
		if n == 0 {
			n = 1
		}
		note("%s: %d conns in the window, %.1f µs CPU/conn (bench and daemon %.1f, daemon %.1f), %.2f context switches/conn, %.2f queued/conn, p50 %.0f µs, p99 %.0f µs, late %d, failed %d",
			m.name, pr.conns, pr.cpuUsPerConn, pr.procsUsPerConn, pr.daemonUsPerConn, pr.ctxtPerConn, float64(q1.queued-q0.queued)/float64(n),
			us(percentile(pr.durs, 0.5)), us(percentile(pr.durs, 0.99)), pr.late, pr.failed)
		return err
	}
	note("holding %s for %v", m.name, p.conn)
	rate, fails, err := connRate(ctx, clients, p.workers, p.conn)
	note("%s: %.0f conn/s, failures %v", m.name, rate, fails)
	return err
}

// pprofBinary builds the router binary with -tags pprof into dir: it
// writes a CPU profile when its environment asks (internal/cpuprofile).
func pprofBinary(ctx context.Context, dir string) (string, error) {
	bin := filepath.Join(dir, "natreveal-pprof")
	note("building natreveal -tags pprof ...")
	cmd := exec.CommandContext(ctx, "go", "build", "-tags", "pprof", "-o", bin, lab.RouterPackage)
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0") // as lab.Binary builds it
	out, err := cmd.CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("build natreveal -tags pprof: %v\n%s", err, out)
	}
	return bin, nil
}

// pairedRatio is the median over rounds of f(mode) / f(kernel only).
func pairedRatio(mode, kernel []sample, f func(sample) float64) float64 {
	var r []float64
	for i := range min(len(mode), len(kernel)) {
		if k := f(kernel[i]); k > 0 {
			r = append(r, f(mode[i])/k)
		}
	}
	return median(r, func(x float64) float64 { return x })
}

func us(d time.Duration) float64 { return float64(d) / 1e3 }

// measure runs one mode once: connection rate, latency, SYN flood.
func measure(ctx context.Context, l *lab.Lab, m mode, binary string, queues int, clients []string, p params, latRate float64) (s sample, err error) {
	var d *daemon
	switch {
	case m.methods != "" || m.passthrough:
		if d, err = startDaemon(l, m, binary, queues, p.lanes); err != nil {
			return s, err
		}
		defer func() {
			if d != nil {
				d.Kill()
			}
		}()
	case m.nft != "":
		if err := l.Nft(l.NAT, m.nft); err != nil {
			return s, err
		}
		defer l.Exec(l.NAT, "nft", "delete", "table", "ip", m.nftTable)
	}

	// Every mode starts from an empty conntrack table: the previous flood
	// leaves a table's worth of entries behind.
	if err := lab.FlushConntrack(l.NAT); err != nil {
		return s, err
	}
	q0, err := readQueueStats(l.NAT)
	if err != nil {
		return s, err
	}
	// Connection rate, closed loop.
	s.ConnRate, s.ConnFailed, err = connRate(ctx, clients, p.workers, p.conn)
	if err != nil {
		return s, err
	}
	q1, _ := readQueueStats(l.NAT)
	if n := s.ConnRate * p.conn.Seconds(); n > 0 {
		s.PktPerConn = float64(q1.queued-q0.queued) / n
	}

	// The paced load (below every mode's saturation): the whole machine's
	// CPU per connection and connect() latency.
	pr, err := paced(ctx, clients, latRate, p.lat, d.pid())
	if err != nil {
		return s, err
	}
	s.DaemonCPUPerConn, s.CtxtPerConn, s.ProcsCPUPerConn = pr.daemonUsPerConn, pr.ctxtPerConn, pr.procsUsPerConn
	s.P50, s.P99, s.LatLate, s.LatFailed = percentile(pr.durs, 0.5), percentile(pr.durs, 0.99), pr.late, pr.failed
	s.CPUPerConn, s.PacedConns = pr.cpuUsPerConn, pr.conns

	// Saturation: a SYN flood from raw sockets, one generator pinned to
	// each CPU. Delivered rate between warm-up and end; every SYN's fate
	// from the totals before and after (sent = received + drops).
	drops0, err := readDrops(l)
	if err != nil {
		return s, err
	}
	all0, _, errA := readCounterNS(l, l.Srv, "syn")
	mk0, _, errM := readCounter(l, m)
	if errA != nil || errM != nil {
		return s, fmt.Errorf("syn counter: %v %v", errA, errM)
	}
	cpus := cpuList()
	perClient := (p.gens + len(clients) - 1) / len(clients)
	ring := 30000 / perClient
	var sent atomic.Uint64
	errc := make(chan error, p.gens)
	for g := 0; g < p.gens; g++ {
		ns, src := clients[g%len(clients)], []string{lab.Client1, lab.Client2}[g%len(clients)]
		cpu, first := cpus[g%len(cpus)], 20000+(g/len(clients))*ring
		go func() { errc <- flood(ctx, ns, src, cpu, first, ring, p.flood, p.maxFlood, &sent) }()
	}
	time.Sleep(p.floodWarm)
	c0, t0, err0 := readCounter(l, m)
	qs0, _ := readQueueStats(l.NAT)
	var cpu0, user0 uint64
	if d != nil {
		cpu0, user0 = cpuNanos(d.Pid()), userNanos(d.Pid())
	}
	sent0 := sent.Load()
	time.Sleep(p.flood - p.floodWarm - 150*time.Millisecond)
	c1, t1, err1 := readCounter(l, m)
	qs1, _ := readQueueStats(l.NAT)
	var cpu1, user1 uint64
	if d != nil {
		cpu1, user1 = cpuNanos(d.Pid()), userNanos(d.Pid())
	}
	sent1 := sent.Load()
	var ferr error
	for g := 0; g < p.gens; g++ {
		if err := <-errc; err != nil && ferr == nil {
			ferr = fmt.Errorf("flood: %w", err)
		}
	}
	if ferr != nil {
		return s, ferr
	}
	if err0 != nil || err1 != nil {
		return s, fmt.Errorf("syn counter: %v %v", err0, err1)
	}
	dt := t1.Sub(t0).Seconds()
	s.SYNRate = float64(c1-c0) / dt
	s.SYNSent = float64(sent1-sent0) / dt
	if n := qs1.queued - qs0.queued; d != nil && n > 0 {
		s.CPUPerPkt = float64(cpu1-cpu0) / float64(n)
		s.UserPerPkt = float64(user1-user0) / float64(n)
	}
	waitQueueEmpty(l.NAT, 5*time.Second)
	time.Sleep(200 * time.Millisecond) // let the links empty
	q2, _ := readQueueStats(l.NAT)
	s.Drops = q2.dropped - q0.dropped
	drops1, err := readDrops(l)
	if err != nil {
		return s, err
	}
	all1, _, errA := readCounterNS(l, l.Srv, "syn")
	mk1, _, errM := readCounter(l, m)
	if errA != nil || errM != nil {
		return s, fmt.Errorf("syn counter: %v %v", errA, errM)
	}
	s.Account = synAccount{Sent: sent.Load(), Received: all1 - all0, WithHostID: mk1 - mk0, Drops: map[string]uint64{}}
	for _, place := range dropPlaces {
		s.Account.Drops[place] = drops1[place] - drops0[place]
	}
	s.Account.balance()

	if d != nil {
		st, err := d.stop()
		d = nil
		if err != nil {
			return s, err
		}
		s.Stats = st
		s.Account.BacklogFull = st["backlog-full"]
		// The daemon's backlog drops over its life: only the flood fills
		// its backlog, so they are this flood's (a named place, not
		// unaccounted).
		if n := st["backlog-dropped"]; n > 0 {
			s.Account.Drops[dropBacklog] = n
			s.Account.balance()
		}
	}
	return s, ctx.Err()
}

func median[T any](xs []T, f func(T) float64) float64 {
	v := make([]float64, len(xs))
	for i, x := range xs {
		v[i] = f(x)
	}
	slices.Sort(v)
	if len(v) == 0 {
		return 0
	}
	if len(v)%2 == 1 {
		return v[len(v)/2]
	}
	return (v[len(v)/2-1] + v[len(v)/2]) / 2
}

func summarize(name string, ss []sample) Result {
	r := Result{Mode: name, Rounds: ss}
	r.ConnRate = median(ss, func(s sample) float64 { return s.ConnRate })
	r.SYNRate = median(ss, func(s sample) float64 { return s.SYNRate })
	r.CPUPerPkt = median(ss, func(s sample) float64 { return s.CPUPerPkt })
	r.UserPerPkt = median(ss, func(s sample) float64 { return s.UserPerPkt })
	r.PktPerConn = median(ss, func(s sample) float64 { return s.PktPerConn })
	r.P50 = median(ss, func(s sample) float64 { return us(s.P50) })
	r.P99 = median(ss, func(s sample) float64 { return us(s.P99) })
	r.CPUPerConn = median(ss, func(s sample) float64 { return s.CPUPerConn })
	for _, s := range ss {
		r.Drops += s.Drops
	}
	return r
}

func kernelRelease() string {
	var u syscall.Utsname
	if syscall.Uname(&u) != nil {
		return "?"
	}
	var b []byte
	for _, c := range u.Release {
		if c == 0 {
			break
		}
		b = append(b, byte(c))
	}
	return string(b)
}

// cpuModel is /proc/cpuinfo's first "model name" (x86; other
// architectures name their CPUs otherwise, and get "").
func cpuModel() string {
	b, err := os.ReadFile("/proc/cpuinfo")
	if err != nil {
		return ""
	}
	for _, line := range strings.Split(string(b), "\n") {
		if k, v, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(k) == "model name" {
			return strings.TrimSpace(v)
		}
	}
	return ""
}

func printTable(f *os.File, rep *report) {
	if len(rep.Results) > 0 {
		printSYN(f, rep)
	}
	if len(rep.Bulk) > 0 {
		if len(rep.Results) > 0 {
			fmt.Fprintln(f)
		}
		printBulk(f, rep)
	}
	if len(rep.Established) > 0 {
		if len(rep.Results) > 0 || len(rep.Bulk) > 0 {
			fmt.Fprintln(f)
		}
		printEstablished(f, rep)
	}
	printGoals(f, rep.Goals)
}

// printBulk prints the selected-flow table: each mode's rates and their
// ratio to the kernel-only transfers of the same framing (HTTP for
// http-header, the bench's raw framing for proxy-protocol).
func printBulk(f *os.File, rep *report) {
	k := rep.Bulk[0]
	fmt.Fprintf(f, "natreveal bench %s, Linux %s, %d CPUs: selected flows, one connection, %d MiB down then %d MiB up, median of %d round(s)\n\n",
		rep.Date, rep.Kernel, rep.CPUs, k.MiB, k.MiB, len(k.Rounds))
	w := tabwriter.NewWriter(f, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(w, "mode\tdown Mbit/s\tx kernel\tup Mbit/s\tx kernel\tqueued/MiB\tCPU ms/MiB\tdrops\t")
	kh := median(k.Rounds, func(s bulkSample) float64 { return s.HTTPDown })
	ku := median(k.Rounds, func(s bulkSample) float64 { return s.HTTPUp })
	fmt.Fprintf(w, "kernel (raw)\t%.0f\t1.00\t%.0f\t1.00\t-\t-\t%d\t\n", k.Down, k.Up, k.Drops)
	fmt.Fprintf(w, "kernel (http)\t%.0f\t1.00\t%.0f\t1.00\t-\t-\t\t\n", kh, ku)
	for _, r := range rep.Bulk[1:] {
		fmt.Fprintf(w, "%s\t%.0f\t%.2f\t%.0f\t%.2f\t%.0f\t%.2f\t%d\t\n",
			r.Mode, r.Down, r.DownRatio, r.Up, r.UpRatio, r.QueuedPerMiB, r.CPUPerMiB, r.Drops)
	}
	w.Flush()
}

func printSYN(f *os.File, rep *report) {
	fmt.Fprintf(f, "natreveal bench %s, Linux %s, CPUs %v, %d queue(s), %d flood generator(s), paced load %.0f conn/s, median of %d round(s)\n\n",
		rep.Date, rep.Kernel, rep.CPUList, rep.Queues, rep.Gens, rep.LatRate, len(rep.Results[0].Rounds))
	w := tabwriter.NewWriter(f, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(w, "mode\tsat conn/s\tx kernel\tsat SYN/s\tx kernel\tCPU µs/conn\t+CPU µs/conn\t(min..max)\tCPU µs/pkt\tqueued/conn\tp50 µs\tp99 µs\t+p50 µs\t+p99 µs\tdrops\tunaccounted\t")
	for _, r := range rep.Results {
		cpu, ppc := "-", "-"
		if r.CPUPerPkt > 0 {
			cpu = fmt.Sprintf("%.2f", r.CPUPerPkt/1e3)
		}
		if r.PktPerConn > 0.01 {
			ppc = fmt.Sprintf("%.1f", r.PktPerConn)
		}
		fmt.Fprintf(w, "%s\t%.0f\t%.2f\t%.0f\t%.2f\t%.1f\t%+.2f\t%.1f..%.1f\t%s\t%s\t%.0f\t%.0f\t%+.0f\t%+.0f\t%d\t%d\t\n",
			r.Mode, r.ConnRate, r.ConnRatio, r.SYNRate, r.SYNRatio, r.CPUPerConn, r.AddedCPU, r.AddedCPUMin, r.AddedCPUMax,
			cpu, ppc, r.P50, r.P99, r.AddedP50, r.AddedP99, r.Drops, r.Unaccounted)
	}
	w.Flush()
	fmt.Fprintln(f, "\nSYN accounting of the floods (all rounds): sent = received at the server + drops by place + unaccounted")
	for _, r := range rep.Results {
		var sum synAccount
		sum.Drops = map[string]uint64{}
		for _, s := range r.Rounds {
			sum.Sent += s.Account.Sent
			sum.Received += s.Account.Received
			sum.WithHostID += s.Account.WithHostID
			sum.BacklogFull += s.Account.BacklogFull
			for k, v := range s.Account.Drops {
				sum.Drops[k] += v
			}
		}
		sum.balance()
		fmt.Fprintf(f, "  %-13s %s; with HOST_ID %d, daemon backlog full %d\n", r.Mode, sum, sum.WithHostID, sum.BacklogFull)
	}
	if rep.Unaccounted {
		fmt.Fprintln(f, "WARNING: this run has unaccounted SYNs (more than 0.1 % of a flood): no counter explains them")
	}
}

// stepProgress shows, on a terminal only, the round and mode about to be
// measured and the time left; piped, the result lines are the progress.
func stepProgress(pl *progress.Line, round, rounds, k, modes int, name string) {
	if !pl.Terminal() {
		return
	}
	done, total := round*modes+k, rounds*modes
	left := pl.Left(done, total)
	if left != "" {
		left = ", " + left
	}
	pl.Update("bench: round %d/%d, %s (%d/%d)%s", round+1, rounds, name, k+1, modes, left)
}

// counts reads a -cpus or -queue-counts list: counts of at least 1,
// separated by commas; nil for "".
func counts(name, list string) ([]int, error) {
	if list == "" {
		return nil, nil
	}
	var out []int
	for _, c := range strings.Split(list, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(c))
		if err != nil || n < 1 {
			return nil, fmt.Errorf("-%s: bad count %q", name, c)
		}
		out = append(out, n)
	}
	return out, nil
}
