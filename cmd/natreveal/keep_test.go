package main

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"sync/atomic"
	"testing"
	"time"
)

// fakeWatch hands out subscriptions from a list: each a channel the test
// feeds, or an error.
type fakeWatch struct {
	subs    chan chan string
	fail    atomic.Int32 // subscriptions to refuse first
	stopped atomic.Int32
}

func (f *fakeWatch) watch() (<-chan string, func(), error) {
	if f.fail.Load() > 0 {
		f.fail.Add(-1)
		return nil, nil, errors.New("no netlink here")
	}
	ch := make(chan string, 16)
	f.subs <- ch
	return ch, func() { f.stopped.Add(1) }, nil
}

// The keeper checks once on each subscription, once per burst of
// deletions (not once per deletion), again when a subscription fails, and
// every retry while none can be made; each check that restored something
// is counted.
func TestKeeperChecks(t *testing.T) {
	fw := &fakeWatch{subs: make(chan chan string, 4)}
	fw.fail.Store(2)
	checks := make(chan struct{}, 64)
	var restoring atomic.Bool
	var restored atomic.Int32
	k := keeper{
		log:   slog.New(slog.NewTextHandler(io.Discard, nil)),
		watch: fw.watch,
		checks: []func() bool{func() bool {
			checks <- struct{}{}
			return restoring.Load()
		}},
		restored: func() { restored.Add(1) },
		settle:   20 * time.Millisecond,
		retry:    30 * time.Millisecond,
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { k.run(ctx); close(done) }()

	wait := func(what string) {
		t.Helper()
		select {
		case <-checks:
		case <-time.After(5 * time.Second):
			t.Fatalf("no check %s", what)
		}
	}
	none := func(what string) {
		t.Helper()
		select {
		case <-checks:
			t.Fatalf("a check %s", what)
		case <-time.After(100 * time.Millisecond):
		}
	}
	// Two refused subscriptions: a check after each.
	wait("after the first refused subscription")
	wait("after the second refused subscription")
	var sub chan string
	select {
	case sub = <-fw.subs:
	case <-time.After(5 * time.Second):
		t.Fatal("no subscription after the retries")
	}
	wait("on subscribing")
	none("without a deletion")

	// A burst of three deletions (a reload's flush ruleset): one check.
	restoring.Store(true)
	for _, n := range []string{"ip natreveal", "ip6 natreveal", "inet fw4"} {
		sub <- n
	}
	wait("after a burst")
	none("per deletion of a burst")
	if n := restored.Load(); n != 1 {
		t.Errorf("restored counted %d times, want 1", n)
	}
	restoring.Store(false)

	// The subscription fails (events lost): a check, a new subscription,
	// and a check on it.
	close(sub)
	wait("after the subscription failed")
	select {
	case <-fw.subs:
	case <-time.After(5 * time.Second):
		t.Fatal("no new subscription")
	}
	wait("on subscribing again")
	if fw.stopped.Load() != 1 {
		t.Errorf("the failed subscription was stopped %d times, want 1", fw.stopped.Load())
	}

	cancel()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("the keeper did not stop with its context")
	}
	if fw.stopped.Load() != 2 {
		t.Errorf("subscriptions stopped %d times, want 2", fw.stopped.Load())
	}
}
