package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/spf13/pflag"
	"go.yaml.in/yaml/v3"
)

const uciSample = `
config natreveal 'main'
	option enabled '1'
	list inside '100.64.0.0/10'
	list inside "2001:db8:1::/64"
	list methods 'tcp-option'
	list methods dest-opt
	option placement 'pre-nat'
	option hostid_source 'lower16'
	option tcp_option_length '4'
	option tcp_option_cgn '0'
	option queue_num '3'
	option queue_fail_open 'yes'
	option marks_track '0x00040000'
	option metrics_listen ''  # disabled
	option log_format 'json'

config other 'x'
	option inside 'ignored'
`

func TestFromUCI(t *testing.T) {
	y, err := FromUCI(strings.NewReader(uciSample))
	if err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(t.TempDir(), "c.yaml")
	if err := os.WriteFile(file, y, 0o644); err != nil {
		t.Fatal(err)
	}
	fs := pflag.NewFlagSet("t", pflag.ContinueOnError)
	AddFlags(fs)
	fs.Set("config", file)
	c, err := Load(fs, nil)
	if err != nil {
		t.Fatalf("%v\n%s", err, y)
	}
	if len(c.Inside) != 2 || c.Inside[1].String() != "2001:db8:1::/64" || !c.Has(MethodDestOpt) ||
		c.TCPOption.Length != 4 || c.Queue.Num != 3 || !c.Queue.FailOpen || c.Marks.Track != 0x40000 ||
		c.Metrics.Listen != "" || c.Log.Format != "json" {
		t.Errorf("converted config %+v from\n%s", c, y)
	}
}

func TestFromUCIErrors(t *testing.T) {
	for in, key := range map[string]string{
		"config natreveal 'main'\n\toption carrier 'pigeon'\n":       "carrier",
		"config natreveal 'main'\n\toption tcp_option_cgn 'maybe'\n": "tcp_option.cgn",
		"config natreveal 'main'\n\toption inside '10.0.0.0/8\n":     "uci",
		"config natreveal\n":                                    "uci", // not named main
		"config natreveal 'main'\nconfig natreveal 'x'\n":       "uci",
		"config natreveal 'main'\n\tlist placement 'pre-nat'\n": "placement",
		"config firewall\n":                                     "uci",
	} {
		_, err := FromUCI(strings.NewReader(in))
		e, ok := err.(*Error)
		if !ok || e.Key != key {
			t.Errorf("%q: error %v, want key %s", in, err, key)
		}
	}
}

// FromUCI reads what an admin typed: any input is an error or YAML that
// parses back into a mapping (quoting and escaping included).
func FuzzFromUCI(f *testing.F) {
	f.Add(uciSample)
	f.Add("config natreveal 'main'\n\tlist inside \"100.64.0.0/24\"\n\toption log_format 'j\\\"son'\n")
	f.Add("config natreveal 'main'\n\toption metrics_listen ''\n\tlist methods 'a b,c'\n")
	f.Fuzz(func(t *testing.T, in string) {
		y, err := FromUCI(strings.NewReader(in))
		if err != nil {
			if _, ok := err.(*Error); !ok {
				t.Fatalf("%q: error %T %v, want a *config.Error", in, err, err)
			}
			return
		}
		var m map[string]any
		if err := yaml.Unmarshal(y, &m); err != nil {
			t.Fatalf("%q: output does not parse: %v\n%s", in, err, y)
		}
	})
}
