package main

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"

	"github.com/spf13/cobra"

	"github.com/natreveal/natreveal/config"
)

// uci2yamlCmd turns OpenWrt's /etc/config/natreveal into the YAML file run
// reads (the procd init script calls it at each start and reload).
func uci2yamlCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "uci2yaml [UCI-FILE]",
		Short: "Convert an OpenWrt UCI config (default /etc/config/natreveal) to natreveal's YAML; exit 2 on a bad option",
		Args:  cobra.MaximumNArgs(1),
	}
	out := cmd.Flags().StringP("output", "o", "", "write here (atomically) instead of stdout")
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		in := "/etc/config/natreveal"
		if len(args) == 1 {
			in = args[0]
		}
		uci, err := os.ReadFile(in)
		if err != nil {
			return usageErr(err)
		}
		y, err := config.FromUCI(bytes.NewReader(uci))
		if err != nil {
			return usageErr(err)
		}
		if *out == "" {
			_, err := cmd.OutOrStdout().Write(y)
			return err
		}
		tmp, err := os.CreateTemp(filepath.Dir(*out), ".natreveal-*.yaml")
		if err != nil {
			return err
		}
		defer os.Remove(tmp.Name())
		if _, err := tmp.Write(y); err != nil {
			tmp.Close()
			return err
		}
		if err := tmp.Close(); err != nil {
			return err
		}
		if err := os.Rename(tmp.Name(), *out); err != nil {
			return fmt.Errorf("uci2yaml: %w", err)
		}
		return nil
	}
	return cmd
}
