package main

import (
	"fmt"
	"os"

	"github.com/google/nftables"
	"github.com/spf13/cobra"

	"github.com/natreveal/natreveal/config"
	"github.com/natreveal/natreveal/rules"
)

func rulesCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "rules", Short: "Show the nftables ruleset natreveal installs"}
	print := &cobra.Command{
		Use:   "print",
		Short: "Print the exact ruleset `run` would install, as nft text",
		Args:  cobra.NoArgs,
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
			if m, err = probe(); err != nil {
				m = rules.Native
				fmt.Fprintf(os.Stderr, "natreveal: cannot probe the kernel (%v); printing the native queue form\n", err)
			}
		default:
			return usageErr(fmt.Errorf("--mechanism: %q is not one of auto, native, compat", *mech))
		}
		fmt.Fprint(cmd.OutOrStdout(), rules.Text(ruleSpec(c, m)))
		return nil
	}
	cmd.AddCommand(print)
	return cmd
}

func probe() (rules.Mechanism, error) {
	nft, err := nftables.New()
	if err != nil {
		return 0, err
	}
	return rules.Probe(nft)
}
