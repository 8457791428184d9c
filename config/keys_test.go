package config

import (
	"reflect"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/spf13/pflag"

	"github.com/natreveal/natreveal/portset"
)

func keyByName(t *testing.T, name string) Key {
	t.Helper()
	for _, k := range KeyList() {
		if k.Name == name {
			return k
		}
	}
	t.Fatalf("no key %s", name)
	return Key{}
}

// Every key has a flag, an environment variable and a help text, and every
// flag AddFlags registers is a key's (or --config).
func TestFlagForEveryKey(t *testing.T) {
	fs := pflag.NewFlagSet("t", pflag.ContinueOnError)
	AddFlags(fs)
	byFlag := map[string]Key{}
	for _, k := range KeyList() {
		if fs.Lookup(k.Flag) == nil {
			t.Errorf("key %s has no flag --%s", k.Name, k.Flag)
		}
		if _, dup := byFlag[k.Flag]; dup {
			t.Errorf("flag --%s belongs to two keys", k.Flag)
		}
		byFlag[k.Flag] = k
		if want := "NATREVEAL_" + strings.ToUpper(strings.ReplaceAll(k.Name, ".", "_")); k.Env != want {
			t.Errorf("key %s: env %s, want %s", k.Name, k.Env, want)
		}
		if k.Help == "" || k.Type == "" {
			t.Errorf("key %s has no help or type", k.Name)
		}
		if k.Arg != "" && k.usage() == k.Help {
			t.Errorf("key %s: arg %q is not a word of its help %q", k.Name, k.Arg, k.Help)
		}
	}
	if fs.Lookup("tcp-option-cgn") == nil {
		t.Error("no --tcp-option-cgn")
	}
	fs.VisitAll(func(f *pflag.Flag) {
		if _, ok := byFlag[f.Name]; !ok && f.Name != "config" {
			t.Errorf("flag --%s is no key's", f.Name)
		}
		// The argument name --help shows: a word, not a phrase that
		// happened to be in back quotes.
		name, _ := pflag.UnquoteUsage(f)
		if strings.ContainsAny(name, " \t") || len(name) > 12 {
			t.Errorf("flag --%s shows argument name %q", f.Name, name)
		}
	})
}

// --methods' help names every method, from the one list.
func TestMethodsInHelp(t *testing.T) {
	fs := pflag.NewFlagSet("t", pflag.ContinueOnError)
	AddFlags(fs)
	usage := fs.Lookup("methods").Usage
	want := []string{"tcp-option", "ip-id", "ip-option", "dest-opt", "http-header", "proxy-protocol", "port-set", "ident"}
	for _, m := range want {
		if !slices.Contains(Methods(), m) || !strings.Contains(usage, m) {
			t.Errorf("method %s missing from Methods() %v or --methods' help %q", m, Methods(), usage)
		}
	}
}

// Defaults written in tags agree with the constants code uses.
func TestDefaultsMatchConstants(t *testing.T) {
	for name, want := range map[string]string{
		"port_set.ports":      portset.DefaultPorts.String(),
		"port_set.assignment": string(portset.Sequential),
		"metrics.listen":      DefaultMetricsListen,
		"ip_id.scope":         ScopeSYN,
	} {
		if got := keyByName(t, name).Default; got != want {
			t.Errorf("%s: default %q, want %q", name, got, want)
		}
	}
	c, err := load(t, "", nil, "--inside", "100.64.0.0/10", "--methods", "ip-id")
	if err != nil {
		t.Fatal(err)
	}
	if c.Marks.Track != 0x10000 || c.Marks.Done != 0x20000 || c.Marks.Select != 0x40000 || c.Marks.SeqAdj != 0x80000 ||
		c.DestOpt.Type != 0x1e || c.IPOption.Type != 30 || !c.Queue.FailOpen || c.Queue.MaxLen != 4096 ||
		c.Flows.Max != 65536 || len(c.HTTPHeader.Ports) != 1 || c.HTTPHeader.Ports[0] != 80 || !c.HTTPHeader.XFF ||
		c.Table != "natreveal" || c.Ident.Listen != ":113" || c.Log.Format != "text" || c.ProxyProtocol.Version != 2 {
		t.Errorf("defaults: %+v", c)
	}
}

// Each key's flag reaches its field (a flag bound to the wrong key, or not
// bound, would leave the default).
func TestEveryFlagSetsItsKey(t *testing.T) {
	for _, k := range KeyList() {
		fs := pflag.NewFlagSet("t", pflag.ContinueOnError)
		AddFlags(fs)
		var arg string
		var want any
		switch k.kind.Kind() {
		case reflect.Int:
			arg, want = "7", 7
		case reflect.Int64:
			arg, want = "0x700", int64(0x700)
		case reflect.Bool:
			arg, want = strconv.FormatBool(!k.defaultValue().(bool)), !k.defaultValue().(bool)
		case reflect.String:
			arg, want = "x", "x"
		case reflect.Slice:
			arg, want = "a,b", []string{"a", "b"}
		default:
			t.Fatalf("key %s: kind %v", k.Name, k.kind)
		}
		if err := fs.Parse([]string{"--" + k.Flag + "=" + arg}); err != nil {
			t.Fatal(err)
		}
		keys, err := loadKeys(fs, nil)
		if err != nil {
			t.Fatalf("--%s=%s: %v", k.Flag, arg, err)
		}
		if got := reflect.ValueOf(keys).Elem().FieldByIndex(k.index).Interface(); !reflect.DeepEqual(got, want) {
			t.Errorf("--%s=%s: %s is %v, want %v", k.Flag, arg, k.Name, got, want)
		}
	}
}

// Environment variables reach every kind of key; flags beat them.
func TestEnvKinds(t *testing.T) {
	c, err := load(t, "", map[string]string{
		"NATREVEAL_INSIDE":            "10.0.0.0/8 100.64.0.0/10",
		"NATREVEAL_METHODS":           "tcp-option",
		"NATREVEAL_TCP_OPTION_CGN":    "true",
		"NATREVEAL_MARKS_TRACK":       "0x100",
		"NATREVEAL_IP_ID_KERNEL_SIZE": "7",
		"NATREVEAL_LOG_FORMAT":        "json",
	}, "--log-format", "text")
	if err != nil {
		t.Fatal(err)
	}
	if len(c.Inside) != 2 || !c.TCPOption.CGN || c.Marks.Track != 0x100 || c.IPIDKernel.Size != 7 || c.Log.Format != "text" {
		t.Errorf("env: %+v", c)
	}
}

// An environment variable set to nothing is the empty value, as "" in the
// file is (metrics.listen: no endpoint), not the default; where the empty
// value is not allowed, that is an error naming the key.
func TestEmptyEnv(t *testing.T) {
	base := map[string]string{"NATREVEAL_INSIDE": "100.64.0.0/24", "NATREVEAL_METHODS": "tcp-option"}
	env := func(k, v string) map[string]string {
		m := map[string]string{k: v}
		for bk, bv := range base {
			m[bk] = bv
		}
		return m
	}
	c, err := load(t, "", env("NATREVEAL_METRICS_LISTEN", ""))
	if err != nil || c.Metrics.Listen != "" {
		t.Errorf("NATREVEAL_METRICS_LISTEN=: listen %q, %v; want none", c.Metrics.Listen, err)
	}
	_, err = load(t, "", env("NATREVEAL_QUEUE_NUM", ""))
	if e, ok := err.(*Error); !ok || e.Key != "queue.num" {
		t.Errorf("NATREVEAL_QUEUE_NUM=: %v, want an error naming queue.num", err)
	}
}

// The decoder rejects unknown keys at any depth and values of the wrong
// kind, naming the key in one line.
func TestDecoderErrors(t *testing.T) {
	base := "inside: [100.64.0.0/24]\nmethods: [ip-id]\n"
	for _, c := range []struct{ file, key, msg string }{
		{base + "tcp_option:\n  lenght: 4\n", "tcp_option.lenght", "unknown key"},
		{base + "queue: 5\n", "queue", "want a mapping"},
		{base + "queue:\n  fail_open: maybe\n", "queue.fail_open", "want true or false"},
		{base + "http_header:\n  ports: {a: 1}\n", "http_header.ports", "want a list"},
		{base + "ip_id:\n  scope: [syn]\n", "ip_id.scope", "want a string"},
		{base + "queue:\n  num: lots\n  numm: 2\n", "queue.numm", "unknown key"},
	} {
		_, err := load(t, c.file, nil)
		e, ok := err.(*Error)
		if !ok || e.Key != c.key || !strings.Contains(e.Msg, c.msg) || strings.Contains(e.Error(), "\n") {
			t.Errorf("%q: error %v, want one line naming %s with %q", c.file, err, c.key, c.msg)
		}
	}
}

// The UCI converter knows every key, under its underscore name.
func TestUCIKnowsEveryKey(t *testing.T) {
	var b strings.Builder
	b.WriteString("config natreveal 'main'\n")
	for _, k := range KeyList() {
		v := k.Default
		if v == "" {
			v = "x"
		}
		if isBool(k.Name) {
			v = "1"
		}
		b.WriteString("\toption " + strings.ReplaceAll(k.Name, ".", "_") + " '" + v + "'\n")
	}
	if _, err := FromUCI(strings.NewReader(b.String())); err != nil {
		t.Fatal(err)
	}
}
