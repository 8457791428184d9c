package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/spf13/pflag"
)

func loadArgs(t *testing.T, args ...string) (*Config, error) {
	t.Helper()
	fs := pflag.NewFlagSet("t", pflag.ContinueOnError)
	AddFlags(fs)
	if err := fs.Parse(args); err != nil {
		t.Fatal(err)
	}
	return Load(fs, func(string) string { return "" })
}

func TestPortSetKeys(t *testing.T) {
	c, err := loadArgs(t, "--inside", "100.64.0.0/24,2001:db8::/64", "--methods", "port-set",
		"--port-set-public", "192.0.2.1", "--port-set-block-size", "256", "--mapping-log", "-")
	if err != nil {
		t.Fatal(err)
	}
	if !c.HasPortSetPolicy() || c.PortSet.Policy.Deterministic() != 252 || c.MappingLog.File != "-" {
		t.Fatalf("policy %+v, mapping log %+v", c.PortSet.Policy, c.MappingLog)
	}
	dir := t.TempDir()
	pf := filepath.Join(dir, "p.json")
	os.WriteFile(pf, []byte(`{"inside":["100.64.0.0/24"],"public":["192.0.2.9"],"block_size":1000,"assignment":"staggered"}`), 0o644)
	c, err = loadArgs(t, "--inside", "100.64.0.0/24", "--methods", "port-set", "--port-set-policy-file", pf)
	if err != nil || c.PortSet.Policy.Ratio != 64 || c.PortSet.Policy.Public[0].String() != "192.0.2.9" {
		t.Fatalf("policy file: %+v, %v", c, err)
	}
	// Several active NATs: one policy over both boxes' addresses, each box
	// its own with port_set.public.
	os.WriteFile(pf, []byte(`{"inside":["100.64.0.0/24"],"public":["192.0.2.11","192.0.2.12"],"block_size":256}`), 0o644)
	c, err = loadArgs(t, "--inside", "100.64.0.0/24", "--methods", "port-set", "--port-set-policy-file", pf, "--port-set-public", "192.0.2.12")
	if err != nil || len(c.PortSet.Policy.Public) != 2 || len(c.PortSet.Blocks()) != 127 || c.PortSet.Blocks()[0].Inside.String() != "100.64.0.128" {
		t.Fatalf("policy file and own public address: %+v, %v", c.PortSet, err)
	}
	// port_set.ratio alone sizes the blocks: ports / ratio each.
	c, err = loadArgs(t, "--inside", "100.64.0.0/24", "--methods", "port-set", "--port-set-public", "192.0.2.1",
		"--port-set-ports", "1024-1100", "--port-set-ratio", "38")
	if err != nil || c.PortSet.Policy.BlockSize != 2 || c.PortSet.Policy.Ratio != 38 {
		t.Fatalf("ratio alone: %+v, %v", c.PortSet.Policy, err)
	}
	for _, bad := range []struct {
		key  string
		args []string
	}{
		{"port_set.public", []string{"--methods", "port-set"}},
		{"port_set.public", []string{"--methods", "port-set", "--port-set-public", "2001:db8::1", "--port-set-block-size", "256"}},
		{"port_set.block_size", []string{"--methods", "port-set", "--port-set-public", "192.0.2.1"}},
		{"port_set.block_size", []string{"--methods", "port-set", "--port-set-public", "192.0.2.1", "--port-set-block-size", "70000"}},
		{"port_set.ports", []string{"--methods", "port-set", "--port-set-public", "192.0.2.1", "--port-set-block-size", "256", "--port-set-ports", "9-2"}},
		{"port_set.assignment", []string{"--methods", "port-set", "--port-set-public", "192.0.2.1", "--port-set-block-size", "256", "--port-set-assignment", "random"}},
		{"port_set.policy_file", []string{"--methods", "port-set", "--port-set-policy-file", "/nonexistent"}},
		{"port_set.public", []string{"--methods", "port-set", "--port-set-policy-file", pf, "--port-set-public", "192.0.2.13"}},
		{"port_set.oifname", []string{"--methods", "port-set", "--port-set-public", "192.0.2.1", "--port-set-block-size", "256", "--port-set-oifname", "a b"}},
		{"port_set.ports", []string{"--methods", "port-set", "--port-set-public", "192.0.2.1", "--port-set-ports", "1024", "--port-set-block-size", "2"}},
		{"port_set.ports", []string{"--methods", "port-set", "--port-set-public", "192.0.2.1", "--port-set-ports", "1024", "--port-set-ratio", "1"}},
		{"port_set.ratio", []string{"--methods", "port-set", "--port-set-public", "192.0.2.1", "--port-set-ports", "1024-1100", "--port-set-ratio", "39"}},
	} {
		_, err := loadArgs(t, append([]string{"--inside", "100.64.0.0/24"}, bad.args...)...)
		ce, ok := err.(*Error)
		if !ok || ce.Key != bad.key || strings.Contains(ce.Error(), "\n") || strings.Contains(ce.Error(), "want 2 to 1 ") {
			t.Errorf("%v: error %v, want one line naming %s", bad.args, err, bad.key)
		}
	}
}
