package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/spf13/pflag"
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
		"config natreveal\n\toption carrier 'pigeon'\n":       "carrier",
		"config natreveal\n\toption tcp_option_cgn 'maybe'\n": "tcp_option.cgn",
		"config natreveal\n\toption inside '10.0.0.0/8\n":     "uci",
		"config firewall\n": "uci",
	} {
		_, err := FromUCI(strings.NewReader(in))
		e, ok := err.(*Error)
		if !ok || e.Key != key {
			t.Errorf("%q: error %v, want key %s", in, err, key)
		}
	}
}
