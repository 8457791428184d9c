package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/google/nftables"
	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/natreveal/natreveal/config"
	"github.com/natreveal/natreveal/internal/cli"
	"github.com/natreveal/natreveal/internal/control"
	"github.com/natreveal/natreveal/rules"
)

// statusReport is `natreveal status --json`.
type statusReport struct {
	Marking bool              `json:"marking"`
	Verdict string            `json:"verdict"`
	Socket  string            `json:"socket"`
	Daemon  *control.Snapshot `json:"daemon,omitempty"`
	Error   string            `json:"error,omitempty"` // why the daemon did not answer
	Kernel  control.Facts     `json:"kernel"`
}

func statusCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "status",
		Short: "Say whether the running daemon marks packets: its configuration, queues, ruleset and counters (exit 0 marking, 1 not)",
		Long: `status asks the running daemon on its control socket (status.socket) for
its version, configuration, ruleset and counters, reads the kernel's side
itself (natreveal's tables over netlink, the queues' listeners in
` + control.QueuesFile + `) and ends with a verdict: "marking", or what is
wrong (no daemon, not marking, table missing, queue unbound, stopped: the
closing table a stop leaves). The rules are natreveal's
own rendering of the ruleset it installed: on kernels without the native
queue expression ` + "`nft list ruleset`" + ` cuts the steer rules short
("XT target NFQUEUE not found"), which is harmless. Run it in the daemon's
network namespace, as root.`,
		Args: cli.NoArgs,
	}
	cfg := cmd.Flags().String("config", "", "take status.socket and table from this configuration file")
	socket := cmd.Flags().String("socket", control.DefaultSocket, "the daemon's control socket (status.socket)")
	table := cmd.Flags().String("table", rules.DefaultTable, "table to look for when no daemon answers")
	asJSON := cmd.Flags().Bool("json", false, "print the report as JSON")
	timeout := cmd.Flags().Duration("timeout", 2*time.Second, "how long to wait for the daemon's answer")
	cmd.RunE = func(cmd *cobra.Command, _ []string) error {
		// As run takes status.socket: an absolute path (or empty, none).
		bad := ""
		if *timeout <= 0 {
			bad = "--timeout: " + timeout.String() + ": want a positive duration"
		} else if *socket != "" && !filepath.IsAbs(*socket) {
			bad = "--socket: " + *socket + " is not an absolute path"
		}
		if bad != "" {
			return usageErr(errors.New(bad))
		}
		if *cfg != "" {
			fs := pflag.NewFlagSet("config", pflag.ContinueOnError)
			config.AddFlags(fs)
			fs.Set("config", *cfg)
			c, err := config.Load(fs, nil)
			if err != nil {
				return usageErr(err)
			}
			if !cmd.Flags().Changed("socket") {
				*socket = c.Status.Socket
			}
			if !cmd.Flags().Changed("table") {
				*table = c.Table
			}
		}
		rep := status(*socket, *table, *timeout, readFacts)
		if *asJSON {
			b, _ := json.MarshalIndent(rep, "", "  ")
			fmt.Fprintf(cmd.OutOrStdout(), "%s\n", b)
		} else {
			printStatus(cmd.OutOrStdout(), rep)
		}
		if !rep.Marking {
			return cli.Failed(errors.New(rep.Verdict))
		}
		return nil
	}
	return cmd
}

// status gathers the report: the daemon's snapshot, then the kernel's
// facts about the tables it names (or table and its port-set table, when
// none answers).
func status(socket, table string, timeout time.Duration, facts func(table string, families, others []string) control.Facts) statusReport {
	rep := statusReport{Socket: socket}
	var snap *control.Snapshot
	var err error
	if socket == "" {
		err = fmt.Errorf("%w: status.socket is empty, the daemon serves none", control.ErrNoDaemon)
	} else {
		snap, err = control.Query(socket, timeout)
	}
	fams, others := []string{"ip", "ip6"}, []string{"ip " + table + "_portset"}
	if snap != nil {
		table, fams, others = snap.Table, snap.Families, nil
		if snap.PortSetTable != "" {
			others = []string{snap.PortSetTable}
		}
		rep.Daemon = snap
	} else {
		rep.Error = err.Error()
	}
	rep.Kernel = facts(table, fams, others)
	rep.Marking, rep.Verdict = control.Verdict(snap, err, rep.Kernel, table, fams)
	return rep
}

// readFacts asks the kernel: the tables over netlink (table in each of
// families, and others, each "FAMILY NAME"), the queues in /proc.
func readFacts(table string, families, others []string) control.Facts {
	f := control.Facts{Tables: map[string]bool{}}
	if nft, err := nftables.New(); err == nil {
		keys := others
		for _, fam := range families {
			keys = append(keys, fam+" "+table)
		}
		if gone, err := rules.Missing(nft, keys); err == nil {
			for _, k := range keys {
				if !slices.Contains(gone, k) {
					f.Tables[k] = true
				}
			}
		}
		if f.Tables["ip "+table] {
			f.Closing = closingTable(nft, table)
		}
	}
	if file, err := os.Open(control.QueuesFile); err == nil {
		f.Queues, _ = control.ParseQueues(file)
		file.Close()
	}
	return f
}

// closingTable reports whether table ip name is the closing table a stop
// leaves (rules.Close): its one chain is rules.ClosingChain.
func closingTable(nft *nftables.Conn, name string) bool {
	tables, err := rules.ClosingTables(nft)
	return err == nil && slices.Contains(tables, name)
}

// printStatus is the one screen of `natreveal status`.
func printStatus(w io.Writer, rep statusReport) {
	line := func(k, format string, args ...any) { statusLine(w, k, format, args...) }
	if s := rep.Daemon; s != nil {
		cf := s.ConfigFile
		if cf == "" {
			cf = "none (flags and environment)"
		}
		line("daemon", "natreveal %s, pid %d, since %s, socket %s", s.Version, s.PID, s.Started, rep.Socket)
		line("config", "%s", cf)
		line("methods", "%s, placement %s", strings.Join(s.Methods, ", "), s.Placement)
		if s.QueueCount > 0 {
			line("queues", "%d-%d via %s", s.QueueNum, s.QueueNum+s.QueueCount-1, s.Mechanism)
			if n := s.SelectQueues; n > 0 {
				first := s.QueueNum + s.QueueCount
				line("", "%d-%d fail closed: selected flows", first, first+n-1)
			}
		}
	} else {
		line("daemon", "%s", rep.Error)
	}
	if len(rep.Kernel.Queues) > 0 {
		// portid: the listener's netlink port id; waiting: packets
		// queued now, waiting for a verdict.
		line("kernel", "%-5s %-10s %7s %8s %12s %10s", "queue", "portid", "waiting", "dropped", "user-dropped", "packet id")
		for _, q := range rep.Kernel.Queues {
			listener := fmt.Sprint(q.PeerPortID)
			if q.PeerPortID == 0 {
				listener = "none"
			}
			line("", "%-5d %-10s %7d %8d %12d %10d", q.Num, listener, q.Queued, q.Dropped, q.UserDropped, q.IDSequence)
		}
	} else {
		line("kernel", "no queue bound in this network namespace")
	}
	var tables []string
	for t, ok := range rep.Kernel.Tables {
		if ok {
			tables = append(tables, t)
		}
	}
	slices.Sort(tables)
	if len(tables) == 0 {
		tables = []string{"none of natreveal's"}
	}
	restored := ""
	if s := rep.Daemon; s != nil && s.Counters["tables-restored"] > 0 {
		restored = fmt.Sprintf(" (put back %d times after a deletion)", s.Counters["tables-restored"])
		if s.Counters["tables-restored"] == 1 {
			restored = " (put back once after a deletion)"
		}
	}
	line("tables", "%s%s", strings.Join(tables, ", "), restored)
	if s := rep.Daemon; s != nil {
		marked, unchanged, other := splitCounters(s.Counters)
		line("packets", "%d queued, %d modified, %d accepted", s.Counters["packets"], s.Counters["modified"], s.Counters["accepted"])
		line("marked", "%s", orNone(marked))
		line("unchanged", "%s", orNone(unchanged))
		if len(other) > 0 {
			line("flows", "%s", strings.Join(other, ", "))
		}
		if s.Rules != "" {
			fmt.Fprintf(w, "\nrules (as installed, in natreveal's rendering: their counters are in the lines above; "+
				"nft 1.0 lists the compat queue as \"XT target NFQUEUE not found\"):\n")
			for _, l := range strings.SplitAfter(strings.TrimRight(s.Rules, "\n"), "\n") {
				fmt.Fprint(w, "  "+l)
			}
			fmt.Fprintln(w)
			fmt.Fprintln(w)
		}
	}
	fmt.Fprintf(w, "verdict: %s\n", rep.Verdict)
}

// statusLine prints one line of printStatus. Not inlined: printStatus calls
// it some fifteen times, and the copies cost the router build
// (TestRouterBinarySize).
//
//go:noinline
func statusLine(w io.Writer, k, format string, args ...any) {
	fmt.Fprintf(w, "%-10s %s\n", k, fmt.Sprintf(format, args...))
}

// unchangedWhy are the counters of packets that passed unchanged, by why
// (besides an encoder's own results, "<method>/<result>").
var unchangedWhy = map[string]bool{"not-parsed": true, "no-host-id": true, "ct-miss": true, "ct-error": true,
	"flows-full": true, "untracked": true, "backlog-full": true, "oversize": true, "verdict-errors": true,
	"refused-malformed": true, "select-full": true, "select-unknown": true, "gso-passed": true}

// splitCounters sorts the non-zero counters into packets marked per
// method, those unchanged and why, and the rest (flows followed...).
func splitCounters(c map[string]uint64) (marked, unchanged, other []string) {
	names := make([]string, 0, len(c))
	for k := range c {
		names = append(names, k)
	}
	slices.Sort(names)
	for _, k := range names {
		switch method, result, ok := strings.Cut(k, "/"); {
		case ok && result == "written":
			marked = append(marked, fmt.Sprintf("%s %d", method, c[k]))
		case k == "proxy-written":
			marked = append(marked, fmt.Sprintf("proxy-protocol %d", c[k]))
		case k == "http-requests":
			marked = append(marked, fmt.Sprintf("http-header %d requests", c[k]))
		case k == "packets", k == "modified", k == "accepted", k == "tables-restored": // the packets and tables lines
		case ok, unchangedWhy[k]:
			unchanged = append(unchanged, fmt.Sprintf("%s %d", k, c[k]))
		default:
			other = append(other, fmt.Sprintf("%s %d", k, c[k]))
		}
	}
	return marked, unchanged, other
}

func orNone(s []string) string {
	if len(s) == 0 {
		return "none"
	}
	return strings.Join(s, ", ")
}
