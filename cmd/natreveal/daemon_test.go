package main

import (
	"context"
	"net/netip"
	"testing"
	"time"

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
// handler (issue 17 item 7: a nil pointer panic in ForgetFlow at startup).
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
