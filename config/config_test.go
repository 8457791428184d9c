package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/spf13/pflag"

	"github.com/natreveal/natreveal/rules"
)

// load runs Load with a file body (empty: no file), env vars and arguments.
func load(t *testing.T, file string, env map[string]string, args ...string) (*Config, error) {
	t.Helper()
	fs := pflag.NewFlagSet("test", pflag.ContinueOnError)
	AddFlags(fs)
	if file != "" {
		p := filepath.Join(t.TempDir(), "natreveal.yaml")
		if err := os.WriteFile(p, []byte(file), 0o600); err != nil {
			t.Fatal(err)
		}
		args = append(args, "--config", p)
	}
	for k, v := range env {
		t.Setenv(k, v)
	}
	if err := fs.Parse(args); err != nil {
		t.Fatal(err)
	}
	return Load(fs, os.Getenv)
}

func TestPrecedence(t *testing.T) {
	file := "inside: [100.64.0.0/24]\nmethods: [tcp-option]\ntcp_option:\n  length: 4\nqueue:\n  num: 5\n  count: 2\n"
	c, err := load(t, file, nil)
	if err != nil {
		t.Fatal(err)
	}
	if c.TCPOption.Length != 4 || c.Queue.Num != 5 || c.Queue.Count != 2 || c.IPID.Scope != ScopeSYN {
		t.Fatalf("file values not applied: %+v", c)
	}
	// env beats file
	c, err = load(t, file, map[string]string{"NATREVEAL_QUEUE_NUM": "7", "NATREVEAL_METHODS": "tcp-option,ip-id"})
	if err != nil {
		t.Fatal(err)
	}
	if c.Queue.Num != 7 || !c.Has(MethodIPID) || !c.Has(MethodTCPOption) {
		t.Fatalf("env did not override file: num=%d methods=%v", c.Queue.Num, c.Methods)
	}
	// flag beats env
	c, err = load(t, file, map[string]string{"NATREVEAL_QUEUE_NUM": "7"}, "--queue-num", "9", "--inside", "100.64.1.0/24,100.64.2.0/24")
	if err != nil {
		t.Fatal(err)
	}
	if c.Queue.Num != 9 || len(c.Inside) != 2 || c.Inside[1].String() != "100.64.2.0/24" {
		t.Fatalf("flags did not override: num=%d inside=%v", c.Queue.Num, c.Inside)
	}
}

func TestBadValues(t *testing.T) {
	base := "inside: [100.64.0.0/24]\nmethods: [tcp-option]\n"
	for _, c := range []struct {
		file string
		args []string
		key  string
		msg  string
	}{
		{"methods: [tcp-option]\n", nil, "inside", "required"},
		{"inside: [100.64.0.1/24]\nmethods: [ip-id]\n", nil, "inside", "host bits set"},
		{"inside: [banana]\nmethods: [ip-id]\n", nil, "inside", "not an IPv4 or IPv6 prefix"},
		{"inside: [2001:db8:1::1/64]\nmethods: [dest-opt]\n", nil, "inside", "host bits set"},
		{"inside: [\"::ffff:100.64.0.0/120\"]\nmethods: [tcp-option]\n", nil, "inside", "write IPv4 prefixes as IPv4"},
		{"inside: [100.64.0.0/24, 2001:db8:1::/64]\nmethods: [tcp-option]\nplacement: post-nat\n", nil, "placement", "cannot hold an IPv6 address"},
		{"inside: [100.64.0.0/24]\nmethods: [tcp-option, ip-id]\nplacement: post-nat\nip_id:\n  scope: all\n", nil, "ip_id.scope", "use pre-nat, or scope new"},
		{"inside: [100.64.0.0/24]\nmethods: [dest-opt]\n", nil, "methods", "no IPv6 prefix"},
		{"inside: [100.64.0.0/24, 2001:db8:1::/64]\nmethods: [dest-opt]\n", nil, "methods", "add an IPv4 method"},
		{"inside: [2001:db8:1::/64]\nmethods: [ip-id]\n", nil, "methods", "add tcp-option or dest-opt"},
		{"inside: [2001:db8:1::/64]\nmethods: [http-header]\n", nil, "methods", "but no enabled method marks them (IPv4 only: http-header); add tcp-option or dest-opt"},
		{"inside: [2001:db8:1::/64]\nmethods: [ip-id, http-header]\n", nil, "methods", "(IPv4 only: ip-id, http-header);"},
		{"inside: [100.64.0.0/24, 2001:db8:1::/64]\nmethods: [dest-opt]\n", nil, "methods", "(IPv6 only: dest-opt); add an IPv4 method"},
		{"inside: [\"fe80::%eth0/64\"]\nmethods: [dest-opt]\n", nil, "inside", "IPv6 ones without a zone"},
		{"inside: [\"fe80::1%eth0\"]\nmethods: [dest-opt]\n", nil, "inside", "IPv6 ones without a zone"},
		{"inside: [2001:db8:1::/64]\nmethods: [dest-opt]\ndest_opt:\n  type: 31\n", nil, "dest_opt.type", "not an RFC 4727"},
		{"inside: [2001:db8:1::/64]\nmethods: [dest-opt]\ndest_opt:\n  length: 3\n", nil, "dest_opt.length", "2 or 4"},
		{"inside: [2001:db8:1::/64]\nmethods: [dest-opt]\nhostid:\n  source: address\n", nil, "dest_opt.length", "needs 4 bytes"},
		{"inside: [fd00:1::/64]\nmethods: [tcp-option]\n", nil, "tcp_option.cgn", "private LAN"},
		{"inside: [100.64.0.0/24]\n", nil, "methods", "nothing enabled"},
		{"inside: [100.64.0.0/24]\nmethods: [smoke-signal]\n", nil, "methods", "unknown method"},
		{base + "tcp_option:\n  length: 3\n", nil, "tcp_option.length", "2 or 4"},
		{base + "tcp_option:\n  length: 8\n", nil, "tcp_option.length", "out of range"},
		{base + "ip_id:\n  scope: most\n", nil, "ip_id.scope", "not one of"},
		{base + "queue:\n  num: lots\n", nil, "queue.num", "want an integer"},
		{base + "queue:\n  num: 65535\n  count: 2\n", nil, "queue.count", "past 65535"},
		{"inside: [100.64.0.0/24]\nmethods: [tcp-option, http-header]\nqueue:\n  num: 65532\n  count: 4\n", nil, "queue.count",
			"queues 65532..65539 run past 65535 (http-header"},
		{base + "hostid:\n  source: hash\n", nil, "hostid.key_file", "required"},
		{base + "hostid:\n  source: map\n", nil, "hostid.map_file", "required"},
		{base + "hostid:\n  source: crystal\n", nil, "hostid.source", "not one of"},
		{base + "hostid:\n  source: address\n", nil, "tcp_option.length", "needs 4 bytes"},
		{base + "methdos: [ip-id]\n", nil, "methdos", "unknown key"},
		{"inside: [192.168.1.0/24]\nmethods: [tcp-option]\n", nil, "tcp_option.cgn", "RFC 7974 §8"},
		{base + "marks:\n  track: 3\n", nil, "marks.track", "single-bit"},
		{"inside: [100.64.0.0/10, 100.64.1.0/24]\nmethods: [ip-id]\n", nil, "inside", "100.64.0.0/10 and 100.64.1.0/24 overlap"},
		{"inside: [100.64.0.0/10, 2001:db8::/32, 100.64.0.0/10]\nmethods: [tcp-option]\n", nil, "inside", "100.64.0.0/10 is listed twice"},
		{"inside: [2001:db8::/32, 2001:db8:1::/48]\nmethods: [dest-opt]\n", nil, "inside", "overlap"},
		{base + "table: 9abc\n", nil, "table", "starting with a letter"},
		{base + "table: a.b\n", nil, "table", "use letters, digits"},
		{base + "table: a$b\n", nil, "table", "use letters, digits"},
		{base + "table: ä\n", nil, "table", "use letters, digits"},
		{base + "table: natreveal_probe\n", nil, "table", "reserved"},
		{base + "table: \"\"\n", nil, "table", `"": use letters`},
		{base + "table: " + strings.Repeat("a", 248) + "\n", nil, "table", "longer than 247 bytes"},
		{base, []string{"--tcp-option-length", "5"}, "tcp_option.length", "out of range"},
	} {
		_, err := load(t, c.file, nil, c.args...)
		e, ok := err.(*Error)
		if !ok || e.Key != c.key || !strings.Contains(e.Msg, c.msg) {
			t.Errorf("file %q args %v: error %v, want key %s mentioning %q", c.file, c.args, err, c.key, c.msg)
		}
	}
}

func TestCGNAllowsPrivateInside(t *testing.T) {
	c, err := load(t, "inside: [10.0.0.0/8]\nmethods: [tcp-option]\ntcp_option:\n  cgn: true\n", nil)
	if err != nil || !c.TCPOption.CGN {
		t.Fatalf("cgn: true must allow RFC 1918 inside prefixes: %v", err)
	}
	if _, err := load(t, "inside: [10.0.0.0/8]\nmethods: [ip-id]\n", nil); err != nil {
		t.Fatalf("ip-id alone is not restricted by RFC 7974 §8: %v", err)
	}
}

func TestIPv6Inside(t *testing.T) {
	c, err := load(t, "", nil, "--inside", "100.64.0.0/24,2001:db8:1::/64", "--methods", "tcp-option,dest-opt",
		"--dest-opt-type", "0x3e", "--dest-opt-length", "4")
	if err != nil {
		t.Fatal(err)
	}
	if !c.HasIPv4() || !c.HasIPv6() || c.DestOpt.Type != 0x3e || c.DestOpt.Length != 4 || c.DestOpt.UDPPackets != 3 || !c.PacketMethods() {
		t.Fatalf("IPv6 config: %+v", c)
	}
	c, err = load(t, "inside: [\"2001:db8:1::/64\"]\nmethods: [dest-opt]\n", nil)
	if err != nil || c.HasIPv4() || c.DestOpt.Type != 0x1e || c.DestOpt.Length != 2 {
		t.Fatalf("IPv6-only config: %+v, %v", c, err)
	}
}

// Listen addresses are checked whole at load: a port beyond 65535 or a
// service name would fail only when run binds.
func TestListenAddresses(t *testing.T) {
	ip := []string{"--inside", "100.64.0.0/24", "--methods", "ip-id"}
	id := []string{"--inside", "100.64.0.0/24", "--methods", "ident"}
	for _, c := range []struct {
		args []string
		key  string // "" for none
	}{
		{append(ip, "--metrics-listen", ":99999"), "metrics.listen"},
		{append(ip, "--metrics-listen", "127.0.0.1:-1"), "metrics.listen"},
		{append(ip, "--metrics-listen", "127.0.0.1:http"), "metrics.listen"},
		{append(ip, "--metrics-listen", "127.0.0.1:"), "metrics.listen"},
		{append(ip, "--metrics-listen", "127.0.0.1:09850"), "metrics.listen"},
		{append(ip, "--metrics-listen", "a$b:9850"), "metrics.listen"},
		{append(id, "--ident-listen", ":99999"), "ident.listen"},
		{append(id, "--ident-listen", ":auth"), "ident.listen"},
		{append(ip, "--metrics-listen", "[::1]:9850"), ""},
		{append(ip, "--metrics-listen", "localhost:0"), ""},
		{append(ip, "--metrics-listen", ":65535"), ""},
		{append(ip, "--metrics-listen", ""), ""},
		{append(id, "--ident-listen", "[fe80::1%eth0]:113"), ""},
		{append(id, "--ident-listen", "192.0.2.1:113"), ""},
	} {
		_, err := load(t, "", nil, c.args...)
		e, ok := err.(*Error)
		switch {
		case c.key == "" && err != nil:
			t.Errorf("%v: %v", c.args, err)
		case c.key != "" && (!ok || e.Key != c.key):
			t.Errorf("%v: error %v, want one naming %s", c.args, err, c.key)
		}
	}
}

// Table names config accepts are ones rules.Spec and port-set's table
// ("_portset" added) accept too.
func TestTableNames(t *testing.T) {
	for _, name := range []string{"natreveal", "_nr-2", strings.Repeat("a", 247)} {
		c, err := load(t, "", nil, "--inside", "100.64.0.0/24", "--methods", "ip-id", "--table", name)
		if err != nil || c.Table != name {
			t.Errorf("table %q: %v", name, err)
			continue
		}
		if err := rules.CheckTableName(name + portSetSuffix); err != nil {
			t.Errorf("table %q: port-set's table: %v", name, err)
		}
	}
}
