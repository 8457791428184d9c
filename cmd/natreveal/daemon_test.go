package main

import (
	"context"
	"net/netip"
	"slices"
	"testing"
	"time"

	"github.com/spf13/pflag"

	"github.com/natreveal/natreveal/config"
	"github.com/natreveal/natreveal/conntrack"
	"github.com/natreveal/natreveal/method/ipid"
)

// A reload cannot turn flow selection on or off: the queues' GSO setting and
// conntrack's liberal window tracking are chosen at start.
func TestRestartOnlySelection(t *testing.T) {
	base := func(methods ...string) *config.Config {
		c := &config.Config{Methods: methods}
		c.IPID.Scope = ipid.ScopeSYN
		return c
	}
	if k := restartOnly(base("tcp-option"), base("ip-id")); k != "" {
		t.Errorf("tcp-option -> ip-id needs a restart (%s); a reload should apply it", k)
	}
	if k := restartOnly(base("tcp-option"), base("tcp-option", "http-header")); k != "methods" {
		t.Errorf("turning http-header on: restartOnly = %q, want methods", k)
	}
	withNew := base("http-header", "ip-id")
	withNew.IPID.Scope = ipid.ScopeNew
	if k := restartOnly(base("http-header", "ip-id"), withNew); k != "methods" {
		t.Errorf("ip-id scope new beside a selecting method: restartOnly = %q, want methods (GSO)", k)
	}
	// The selected flows' fail-closed queues are bound at start.
	v4, v6 := base("http-header"), base("http-header")
	v4.Inside = []netip.Prefix{netip.MustParsePrefix("100.64.0.0/24")}
	v6.Inside = []netip.Prefix{netip.MustParsePrefix("2001:db8::/64")}
	v4.Queue.Count, v6.Queue.Count = 2, 2
	if k := restartOnly(v4, v6); k != "inside" {
		t.Errorf("http-header, IPv4 inside prefixes gone: restartOnly = %q, want inside (its fail-closed queues)", k)
	}
}

// repeat runs its function on every tick (a running port-set logs its RFC
// 7422 record once a day with it) and stops with its context.
func TestRepeat(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	ticks := make(chan struct{}, 16)
	done := make(chan struct{})
	go func() { repeat(ctx, time.Millisecond, func() { ticks <- struct{}{} }); close(done) }()
	for range 3 {
		select {
		case <-ticks:
		case <-time.After(10 * time.Second):
			t.Fatal("no record logged")
		}
	}
	cancel()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("repeat did not stop with its context")
	}
}

// A conntrack destroy event can come before start stores the first handler
// (the watcher starts in prepare): it must not dereference the missing
// handler (it was a nil pointer panic in ForgetFlow at startup).
func TestDestroyedBeforeHandler(t *testing.T) {
	d := &packetDaemon{}
	for _, proto := range []uint8{6, 17} {
		d.destroyed(conntrack.Destroyed{
			Proto:   proto,
			OrigSrc: netip.MustParseAddrPort("10.0.0.2:40000"),
			OrigDst: netip.MustParseAddrPort("192.0.2.1:80"),
			NATSrc:  netip.MustParseAddrPort("198.51.100.1:40000"),
		})
	}
}

// load is config.Load of flags alone.
func load(t *testing.T, args ...string) *config.Config {
	t.Helper()
	fs := pflag.NewFlagSet("t", pflag.ContinueOnError)
	config.AddFlags(fs)
	if err := fs.Parse(args); err != nil {
		t.Fatal(err)
	}
	c, err := config.Load(fs, func(string) string { return "" })
	if err != nil {
		t.Fatalf("%v: %v", args, err)
	}
	return c
}

// What run sets up once (the port-set table, the mapping log, the control
// socket, the selected flows' table) a reload cannot change: it is refused
// naming the key, rather than logged as reloaded and left as it was.
func TestRestartOnlyStartPieces(t *testing.T) {
	in := "--inside=100.64.0.0/24"
	ps := []string{in, "--methods=tcp-option,port-set", "--port-set-public=192.0.2.1", "--port-set-block-size=256"}
	for _, c := range []struct {
		name     string
		old, new []string
		key      string
	}{
		{"port-set block size", ps, append(slices.Clone(ps[:3]), "--port-set-block-size=512"), "port_set"},
		{"port-set public", ps, append(slices.Clone(ps[:2]), "--port-set-public=192.0.2.2", ps[3]), "port_set"},
		{"port-set added", []string{in, "--methods=tcp-option"}, ps, "methods"},
		{"port-set removed", ps, []string{in, "--methods=tcp-option"}, "methods"},
		{"port-set table", ps, append(slices.Clone(ps), "--table=other"), "table"},
		{"port-set inside", ps, append(slices.Clone(ps), "--inside=100.64.1.0/24"), "inside"},
		{"port-set unchanged", ps, ps, ""},
		{"mapping log on", []string{in, "--methods=tcp-option"}, []string{in, "--methods=tcp-option", "--mapping-log=-"}, "mapping_log.file"},
		{"mapping log destination", []string{in, "--methods=tcp-option", "--mapping-log=-"},
			[]string{in, "--methods=tcp-option", "--mapping-log=-", "--mapping-log-destination"}, "mapping_log.destination"},
		{"mapping log inside", []string{in, "--methods=tcp-option", "--mapping-log=-"},
			[]string{"--inside=100.64.1.0/24", "--methods=tcp-option", "--mapping-log=-"}, "inside"},
		{"inside without mapping log", []string{in, "--methods=tcp-option"}, []string{"--inside=100.64.1.0/24", "--methods=tcp-option"}, ""},
		{"status socket", []string{in, "--methods=tcp-option"}, []string{in, "--methods=tcp-option", "--status-socket=/run/other.sock"}, "status.socket"},
		{"flows.max selecting", []string{in, "--methods=http-header"}, []string{in, "--methods=http-header", "--flows-max=1000"}, "flows.max"},
		{"flows.max tracking", []string{in, "--methods=tcp-option"}, []string{in, "--methods=tcp-option", "--flows-max=1000"}, ""},
		// Open flows carry the old bits in their ct marks.
		{"marks.select", []string{in, "--methods=http-header"}, []string{in, "--methods=http-header", "--marks-select=0x00400000"}, "marks"},
		{"marks.track", []string{in, "--methods=tcp-option"}, []string{in, "--methods=tcp-option", "--marks-track=0x00400000"}, "marks"},
	} {
		if k := restartOnly(load(t, c.old...), load(t, c.new...)); k != c.key {
			t.Errorf("%s: restartOnly = %q, want %q", c.name, k, c.key)
		}
	}
}
