package main

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/spf13/cobra"

	"github.com/natreveal/natreveal/config"
	"github.com/natreveal/natreveal/internal/cli"
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
			return cli.UsageErr(err)
		}
		if err := checkUCI(uci); err != nil {
			return cli.UsageErr(err)
		}
		y, err := config.FromUCI(bytes.NewReader(uci))
		if err != nil {
			return cli.UsageErr(err)
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
// would never start). Malformed lines are left to FromUCI.
func checkUCI(uci []byte) error {
	single := map[string]bool{"enabled": true, "respawn_threshold": true, "respawn_timeout": true, "respawn_retry": true}
	for _, k := range config.KeyList() {
		if !strings.HasPrefix(k.Type, "list") {
			single[strings.ReplaceAll(k.Name, ".", "_")] = true
		}
	}
	sections, in := 0, false
	for i, line := range strings.Split(string(uci), "\n") {
		f := uciWords(line)
		if len(f) < 2 {
			continue
		}
		switch f[0] {
		case "config":
			if in = f[1] == "natreveal"; !in {
				continue
			}
			if sections++; sections > 1 {
				return &config.Error{Key: "uci", Msg: fmt.Sprintf("line %d: a second `config natreveal` section; natreveal reads one, named main", i+1)}
			}
			if len(f) < 3 || f[2] != "main" {
				return &config.Error{Key: "uci", Msg: fmt.Sprintf("line %d: name the section main (config natreveal 'main'): the init script reads enabled from it", i+1)}
			}
		case "list":
			if in && single[f[1]] {
				return &config.Error{Key: f[1], Msg: fmt.Sprintf("takes one value: write option %s, not list (line %d)", f[1], i+1)}
			}
		}
	}
	return nil
}

// uciWords splits a UCI line into words ('single' or "double" quoted,
// backslash escapes, # comments) well enough for its statement and names;
// nil on an unterminated quote (FromUCI reports it).
func uciWords(line string) []string {
	var out []string
	var w strings.Builder
	word := false
	for i := 0; i < len(line); i++ {
		switch c := line[i]; {
		case c == '#' && !word:
			return out
		case c == ' ' || c == '\t' || c == '\r':
			if word {
				out, word = append(out, w.String()), false
				w.Reset()
			}
		case c == '\'' || c == '"':
			j := strings.IndexByte(line[i+1:], c)
			if j < 0 {
				return nil
			}
			w.WriteString(line[i+1 : i+1+j])
			i, word = i+1+j, true
		case c == '\\' && i+1 < len(line):
			i++
			w.WriteByte(line[i])
			word = true
		default:
			w.WriteByte(c)
			word = true
		}
	}
	if word {
		out = append(out, w.String())
	}
	return out
}
