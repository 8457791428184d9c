package main

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"

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
		if err := checkUCI(uci); err != nil {
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

// checkUCI rejects what config.FromUCI would let pass unnoticed: a list
// for a single-value option, a second `config natreveal` section (its
// options would be ignored, unknown ones too), and a section not named
// main, whose enabled option the init script never reads (the service
// would never start). Malformed lines are left to FromUCI; names are
// plain words, quoted or not.
func checkUCI(uci []byte) error {
	sections, in := 0, false
	for i, line := range strings.Split(string(uci), "\n") {
		f := strings.Fields(line)
		if len(f) < 2 {
			continue
		}
		key, why := "uci", ""
		switch name := strings.Trim(f[1], `'"`); {
		case f[0] == "config":
			if in = name == "natreveal"; !in {
				continue
			}
			if sections++; sections > 1 {
				why = "a second `config natreveal` section; natreveal reads one, named main"
			} else if len(f) < 3 || strings.Trim(f[2], `'"`) != "main" {
				why = "name the section main (config natreveal 'main'): the init script reads enabled from it"
			}
		case f[0] == "list" && in && singleValue(name):
			key, why = name, "takes one value: write option "+name+", not list"
		}
		if why != "" {
			return &config.Error{Key: key, Msg: why + " (line " + strconv.Itoa(i+1) + ")"}
		}
	}
	return nil
}

// singleValue reports whether UCI option name is a key that is not a list.
func singleValue(name string) bool {
	for _, k := range config.KeyList() {
		if strings.ReplaceAll(k.Name, ".", "_") == name {
			return !strings.HasPrefix(k.Type, "list")
		}
	}
	return false
}
