package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/google/nftables"
	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/natreveal/natreveal/config"
	"github.com/natreveal/natreveal/internal/cli"
	"github.com/natreveal/natreveal/method/portset"
	"github.com/natreveal/natreveal/rules"
)

func rulesCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "rules", Short: "Show the nftables ruleset natreveal installs"}
	print := &cobra.Command{
		Use:   "print",
		Short: "Print the exact ruleset `run` would install, as nft text (every table: the queue table, the port-set table); exit 2 when it cannot be installed",
		Args:  cli.NoArgs,
	}
	config.AddFlags(print.Flags())
	mech := print.Flags().String("mechanism", "auto", "queue mechanism: auto (probe this kernel), native, compat")
	print.RunE = func(cmd *cobra.Command, _ []string) error {
		c, err := config.Load(cmd.Flags(), os.Getenv)
		if err != nil {
			return usageErr(err)
		}
		var m rules.Mechanism
		switch *mech {
		case "native":
			m = rules.Native
		case "compat":
			m = rules.Compat
		case "auto":
		default:
			return usageErr(fmt.Errorf("--mechanism: %q is not one of auto, native, compat", *mech))
		}
		if err := validRules(c); err != nil {
			return usageErr(err)
		}
		text := fmt.Sprintf("# natreveal: no queue table: no packet is queued for %s\n", strings.Join(c.Methods, ", "))
		if c.PacketMethods() {
			if *mech == "auto" {
				if m, err = probe(); err != nil {
					m = rules.Native
					fmt.Fprintf(os.Stderr, "natreveal: cannot probe the kernel (%v); printing the native queue form\n", err)
				}
			}
			text = rules.Text(ruleSpec(c, m))
		}
		if c.Has(portset.Name) {
			text += rules.PortSetText(portSetSpec(c))
		}
		_, err = io.WriteString(cmd.OutOrStdout(), text)
		return err
	}
	cmd.AddCommand(print, rulesRemoveCmd(), rulesCloseCmd())
	return cmd
}

// rulesRemoveCmd deletes natreveal's tables and restores the sysctls a
// daemon that did not stop cleanly left set (restoreLeftSysctls). Other
// tables are never touched.
func rulesRemoveCmd() *cobra.Command {
	return rulesEndCmd("remove", "Delete natreveal's tables (ip and ip6), the closing table included", false)
}

// rulesCloseCmd is what systemd's ExecStopPost and OpenWrt's stop run: the
// end a clean stop makes (rules.Close), after any stop. With selected
// flows the closing table stays, so that a crash does not let them pass
// untranslated either; else the tables go.
func rulesCloseCmd() *cobra.Command {
	return rulesEndCmd("close", "Leave what a clean stop leaves: the closing table where flows are selected (it resets them), else no table", true)
}

func rulesEndCmd(use, short string, closing bool) *cobra.Command {
	cmd := &cobra.Command{Use: use, Short: short, Args: cli.NoArgs}
	cfg := cmd.Flags().String("config", "", "take the table name (and, for close, the methods and marks) from this configuration file")
	table := cmd.Flags().String("table", rules.DefaultTable, "table name (when no --config, or when the file is unreadable)")
	cmd.RunE = func(cmd *cobra.Command, _ []string) error {
		// For after a crash or a stop: a running daemon would put its
		// table back, and keeps its sysctls' records.
		unlock, err := lockNetns(cli.NewLogger("text", cmd.ErrOrStderr()))
		if err != nil {
			return fmt.Errorf("%w; stop it first (systemctl stop natreveal, or SIGTERM): it removes its tables and restores its sysctls itself", err)
		}
		defer unlock()
		spec := rules.Spec{Table: *table}
		if *cfg != "" {
			fs := pflag.NewFlagSet("config", pflag.ContinueOnError)
			config.AddFlags(fs)
			fs.Set("config", *cfg)
			if c, err := config.Load(fs, nil); err != nil {
				// Cleanup must work even after a bad edit of the file.
				fmt.Fprintf(cmd.ErrOrStderr(), "natreveal: %v; removing table %s\n", err, spec.Table)
			} else if closing {
				spec = ruleSpec(c, rules.Native)
				// Flows an earlier run selected, still open: keep resetting them.
				keepClosing(&spec, spec.SelectBit, cli.NewLogger("text", cmd.ErrOrStderr()))
			} else {
				spec.Table = c.Table
			}
		}
		nft, err := nftables.New()
		if err != nil {
			return err
		}
		if err := rules.Close(nft, spec); err != nil {
			return err
		}
		// The sysctls such a daemon set, back to what it found.
		restoreLeftSysctls(cli.NewLogger("text", cmd.ErrOrStderr()))
		return nil
	}
	return cmd
}

// validRules checks what run would install for c, the queue table (its
// rules.Spec) and the port-set table, before anything is set up: a
// configuration whose keys are each valid but whose ruleset is not (rules.
// Apply would refuse it) is bad input, not a failure at run time.
func validRules(c *config.Config) error {
	if c.PacketMethods() {
		if err := ruleSpec(c, rules.Native).Validate(); err != nil {
			return errors.New(oneLine(err)) // "rules: invalid spec: ..."
		}
	}
	if c.Has(portset.Name) {
		if err := portSetSpec(c).Validate(); err != nil {
			return errors.New("invalid port-set table: " + oneLine(err))
		}
	}
	return nil
}

// oneLine is err's message with its lines (errors.Join) joined by "; ".
//
//go:noinline
func oneLine(err error) string { return strings.ReplaceAll(err.Error(), "\n", "; ") }

func probe() (rules.Mechanism, error) {
	nft, err := nftables.New()
	if err != nil {
		return 0, err
	}
	return rules.Probe(nft)
}
