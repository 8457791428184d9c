package config

import (
	"strings"
	"testing"

	"github.com/spf13/pflag"
)

// A value of the wrong kind stops the command, wherever it comes from:
// no float truncated, no boolean counted, no octal, no wrapped number.
func TestStrictValues(t *testing.T) {
	base := "inside: [100.64.0.0/24]\nmethods: [ip-id]\n"
	args := []string{"--inside", "100.64.0.0/24", "--methods", "ip-id"}
	for _, c := range []struct {
		file string
		env  map[string]string
		args []string
		key  string
		msg  string
	}{
		{file: base + "queue:\n  num: 7.9\n", key: "queue.num", msg: `want an integer: decimal without a leading zero (which some read as octal), or hex after 0x; got "7.9"`},
		{file: base + "queue:\n  num: 7.0\n", key: "queue.num", msg: `got "7.0"`},
		{file: base + "queue:\n  num: 1e3\n", key: "queue.num", msg: "want an integer"},
		{file: base + "queue:\n  num: true\n", key: "queue.num", msg: `got "true"`},
		{file: base + "queue:\n  num: 99999999999999999999999\n", key: "queue.num", msg: "99999999999999999999999 is out of range"},
		{file: base + "queue:\n  num: 9223372036854775808\n", key: "queue.num", msg: "9223372036854775808 is out of range"},
		{file: base + "queue:\n  num: 010\n", key: "queue.num", msg: "leading zero"},
		{file: base + "queue:\n  num: 0o10\n", key: "queue.num", msg: "want an integer"},
		{file: base + "queue:\n  num: 1_0\n", key: "queue.num", msg: "want an integer"},
		{file: base + "queue:\n  num: \"010\"\n", key: "queue.num", msg: "leading zero"},
		{file: base + "queue:\n  num: \"7.9\"\n", key: "queue.num", msg: "want an integer"},
		{file: base + "queue:\n  fail_open: 1\n", key: "queue.fail_open", msg: `want true or false, got "1"`},
		{file: base + "queue:\n  fail_open: \"t\"\n", key: "queue.fail_open", msg: "want true or false"},
		{file: base + "queue:\n  fail_open: yes\n", key: "queue.fail_open", msg: "want true or false"},
		{env: map[string]string{"NATREVEAL_QUEUE_NUM": "010"}, args: args, key: "queue.num", msg: "leading zero"},
		{env: map[string]string{"NATREVEAL_QUEUE_NUM": "7.9"}, args: args, key: "queue.num", msg: "want an integer"},
		{env: map[string]string{"NATREVEAL_QUEUE_NUM": "99999999999999999999999"}, args: args, key: "queue.num", msg: "99999999999999999999999 is out of range"},
		{env: map[string]string{"NATREVEAL_QUEUE_FAIL_OPEN": "1"}, args: args, key: "queue.fail_open", msg: "want true or false"},
		{env: map[string]string{"NATREVEAL_MARKS_TRACK": "0x1_0000"}, args: args, key: "marks.track", msg: "want an integer"},
	} {
		t.Run("", func(t *testing.T) { // t.Setenv lasts until the subtest ends
			_, err := load(t, c.file, c.env, c.args...)
			e, ok := err.(*Error)
			if !ok || e.Key != c.key || !strings.Contains(e.Msg, c.msg) || strings.Contains(e.Error(), "\n") {
				t.Errorf("file %q env %v: error %v, want one line naming %s with %q", c.file, c.env, err, c.key, c.msg)
			}
		})
	}
	// Hex, signs and true/false in any case still read.
	c, err := load(t, base+"queue:\n  num: 0x10\n  fail_open: False\nmarks:\n  track: \"0x100\"\n", map[string]string{"NATREVEAL_QUEUE_COUNT": "+2"})
	if err != nil || c.Queue.Num != 16 || c.Queue.FailOpen || c.Marks.Track != 0x100 || c.Queue.Count != 2 {
		t.Fatalf("hex and booleans: %+v, %v", c, err)
	}
}

// Flags read integers and booleans as strictly: pflag's own parsers read
// 010 as 8 and take 1 or T for true.
func TestStrictFlags(t *testing.T) {
	for _, args := range [][]string{
		{"--queue-num", "010"},
		{"--queue-num", "7.9"},
		{"--queue-num", "99999999999999999999999"},
		{"--marks-track", "0o10"},
		{"--queue-fail-open=1"},
		{"--queue-fail-open=T"},
	} {
		fs := pflag.NewFlagSet("t", pflag.ContinueOnError)
		AddFlags(fs)
		if err := fs.Parse(args); err == nil || !strings.Contains(err.Error(), strings.SplitN(args[0], "=", 2)[0]) {
			t.Errorf("%v: parse error %v, want one naming the flag", args, err)
		}
	}
	c, err := load(t, "", nil, "--inside", "100.64.0.0/24", "--methods", "ip-id", "--queue-num", "0x10", "--queue-fail-open=false", "--tcp-option-cgn", "--marks-track", "65536")
	if err != nil || c.Queue.Num != 16 || c.Queue.FailOpen || !c.TCPOption.CGN || c.Marks.Track != 0x10000 {
		t.Fatalf("flags: %+v, %v", c, err)
	}
}

func TestParseInt(t *testing.T) {
	for s, want := range map[string]int64{"0": 0, "10": 10, "-5": -5, "+7": 7, "0x1E": 30, "0X1e": 30, " 12 ": 12,
		"9223372036854775807": 1<<63 - 1, "-9223372036854775808": -1 << 63} {
		if n, err := parseInt(s); err != nil || n != want {
			t.Errorf("parseInt(%q) = %d, %v; want %d", s, n, err, want)
		}
	}
	for _, s := range []string{"", "-", "0x", "00", "010", "-010", "1.5", "1e3", "1_000", "0b1", "0o7", "--1", "+-1", "9223372036854775808", "0x10000000000000000", "ten"} {
		if n, err := parseInt(s); err == nil {
			t.Errorf("parseInt(%q) = %d, want an error", s, n)
		}
	}
}

// A key with no value (YAML null) is refused with what to write instead:
// it would otherwise mean the default, where "" means none.
func TestNullValues(t *testing.T) {
	base := "inside: [100.64.0.0/24]\nmethods: [ip-id]\n"
	for _, c := range []struct{ file, key, msg string }{
		{base + "metrics:\n  listen:\n", "metrics.listen", `no value (YAML null); write "" for an empty value, or remove the key for its default`},
		{base + "status:\n  socket: ~\n", "status.socket", `write ""`},
		{base + "tcp_option:\n  length: null\n", "tcp_option.length", "write a value, or remove the key for its default"},
		{base + "placement:\n", "placement", "no value"},
		{base + "queue:\n", "queue", "write its keys, or remove it"},
		{base + "http_header:\n  ports:\n", "http_header.ports", "write [] for an empty list"},
		{"inside: [100.64.0.0/24, ~]\nmethods: [ip-id]\n", "inside", "an item has no value"},
		{"inside:\nmethods: [ip-id]\n", "inside", "no value"},
		{base + "metrics: &m\n  listen:\nstatus:\n  socket: /run/x.sock\n", "metrics.listen", "no value"},
		{base + "queue:\n  num:\n  numm: 1\n", "queue.numm", "unknown key"}, // a typo first
	} {
		_, err := load(t, c.file, nil)
		e, ok := err.(*Error)
		if !ok || e.Key != c.key || !strings.Contains(e.Msg, c.msg) || strings.Contains(e.Error(), "\n") {
			t.Errorf("%q: error %v, want one line naming %s with %q", c.file, err, c.key, c.msg)
		}
	}
	c, err := load(t, base+"metrics:\n  listen: \"\"\nstatus:\n  socket: ''\n", nil)
	if err != nil || c.Metrics.Listen != "" || c.Status.Socket != "" {
		t.Fatalf(`"" turns the endpoints off: %+v, %v`, c, err)
	}
}

// UCI's values, all strings, are read as strictly as the environment's.
func TestStrictUCI(t *testing.T) {
	y, err := FromUCI(strings.NewReader("config natreveal 'main'\n\tlist inside '100.64.0.0/24'\n\tlist methods 'ip-id'\n\toption queue_num '010'\n"))
	if err != nil {
		t.Fatal(err)
	}
	_, err = load(t, string(y), nil)
	if e, ok := err.(*Error); !ok || e.Key != "queue.num" || !strings.Contains(e.Msg, "leading zero") {
		t.Errorf("UCI queue_num '010': %v, want queue.num refused", err)
	}
}
