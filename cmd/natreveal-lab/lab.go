package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/natreveal/natreveal/internal/cli"
	"github.com/natreveal/natreveal/internal/progress"
	"github.com/natreveal/natreveal/lab"
	"github.com/natreveal/natreveal/lab/table"
)

func labCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "lab",
		Short: "Measure every method in network namespaces and print the analysis's Table 1, claim beside measurement (root)",
		Long: `lab builds its own network namespaces (two inside hosts, a NAT running the
kernel's masquerade and natreveal, a transit router, a server), runs every
method over UDP, TCP, HTTP and TLS, on a clean path, through a router that
drops packets carrying IP options and through a second NAT, and prints
the analysis's Table 1 (RFC 6967) with its claim and the measured value in each cell.
On a terminal it shows its progress on one line of stderr and prints a
compact table (a method per row, within 100 columns); piped, it writes a
plain line per step to stderr and the Markdown table to stdout. --html writes
one self-contained page: the table, contradictions highlighted, and charts.
It deletes its namespaces at the end, also on SIGINT/SIGTERM, and those of an
earlier run that was killed. Needs root, ip, nft.`,
		Args: cli.NoArgs,
	}
	cli.FlagErrorsAreUsage(cmd)
	quick := cmd.Flags().Bool("quick", false, "fewer probes and shorter rate runs (about 20-30 s)")
	n := cmd.Flags().Int("n", 0, "probes per method, path and transport (default 50, --quick 20)")
	perf := cmd.Flags().Duration("perf-time", 0, "length of each new-connection rate measurement (default 2s, --quick 500ms)")
	only := cmd.Flags().StringSlice("methods", nil, "measure only these methods (default: all)")
	md := cmd.Flags().String("markdown", "", "also write the table as Markdown to this file")
	js := cmd.Flags().String("json", "", "also write the measurements as JSON to this file")
	page := cmd.Flags().String("html", "", "also write a self-contained HTML report (table and charts) to this file")
	format := cmd.Flags().String("format", "auto", "the table on stdout: compact (100 columns), markdown, or auto (compact on a terminal, else markdown)")
	verbose := cmd.Flags().BoolP("verbose", "v", false, "log each step to stderr")
	bin := natrevealFlag(cmd)
	cmd.RunE = func(cmd *cobra.Command, _ []string) error {
		o := table.Full
		if *quick {
			o = table.Quick
		}
		if *n < 0 || *n > 1000 {
			return cli.UsageErr(fmt.Errorf("--n: %d: want 1 to 1000", *n))
		}
		if *n > 0 {
			o.N = *n
		}
		if *perf < 0 || *perf > 30*time.Second {
			return cli.UsageErr(fmt.Errorf("--perf-time: %v: want up to 30s", *perf))
		}
		if *perf > 0 {
			o.PerfTime = *perf
		}
		for _, m := range *only {
			known := false
			for _, k := range table.Methods {
				known = known || k.Name == m
			}
			if !known {
				return cli.UsageErr(fmt.Errorf("--methods: unknown method %q", m))
			}
		}
		o.Only = *only
		switch *format {
		case "auto":
			if progress.IsTerminal(os.Stdout) {
				*format = "compact"
			} else {
				*format = "markdown"
			}
		case "compact", "markdown":
		default:
			return cli.UsageErr(fmt.Errorf("--format: %q: want compact, markdown or auto", *format))
		}
		// The files are written after the whole run: a path that cannot
		// take them is said now, not after the results are measured.
		for _, out := range []struct{ flag, path string }{{"--markdown", *md}, {"--json", *js}, {"--html", *page}} {
			if out.path != "" {
				if err := cli.CheckOutput(out.flag, out.path); err != nil {
					return err
				}
			}
		}
		if *verbose {
			o.Log = cmd.ErrOrStderr()
		} else {
			o.Progress = progress.Stderr()
		}
		if os.Geteuid() != 0 {
			return errors.New("lab: needs root (network namespaces, nftables)")
		}
		ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
		defer stop()
		dir, err := os.MkdirTemp("", "natreveal-lab")
		if err != nil {
			return err
		}
		defer os.RemoveAll(dir)
		if o.Binary, err = lab.Natreveal(ctx, *bin, dir, cmd.ErrOrStderr()); err != nil {
			return err
		}
		fmt.Fprintf(cmd.ErrOrStderr(), "natreveal lab: %d probes per cell, namespaces %s... (deleted at the end)\n", o.N, lab.NSNames(os.Getpid())[0])
		res, err := table.Run(ctx, o)
		if err != nil {
			if ctx.Err() != nil {
				return fmt.Errorf("lab: interrupted; namespaces deleted")
			}
			return err
		}
		table := res.Markdown()
		if *format == "compact" {
			fmt.Fprint(cmd.OutOrStdout(), res.Compact())
		} else {
			fmt.Fprint(cmd.OutOrStdout(), table)
		}
		var wrote []string
		if *page != "" {
			if err := os.WriteFile(*page, []byte(res.HTML()), 0o644); err != nil {
				return err
			}
			wrote = append(wrote, *page)
		}
		if *md != "" {
			if err := os.WriteFile(*md, []byte(table), 0o644); err != nil {
				return err
			}
			wrote = append(wrote, *md)
		}
		if *js != "" {
			b, err := res.JSON()
			if err != nil {
				return err
			}
			if err := os.WriteFile(*js, b, 0o644); err != nil {
				return err
			}
			wrote = append(wrote, *js)
		}
		// The run's closing line: piped progress otherwise ends mid-step.
		end := fmt.Sprintf("lab: done in %s: %d cells contradict the analysis (≠)",
			time.Duration(res.Seconds*float64(time.Second)).Round(time.Second), res.Contradictions())
		if len(wrote) > 0 {
			end += "; wrote " + strings.Join(wrote, ", ")
		}
		fmt.Fprintln(cmd.ErrOrStderr(), end)
		return nil
	}
	return cmd
}
