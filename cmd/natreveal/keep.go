package main

// Putting natreveal's tables back when something else deletes them while
// the daemon runs: a firewall reload (Debian's nftables.conf begins with
// `flush ruleset`, and so do many scripts), or an admin's `nft delete
// table`. Without them no SYN is marked, and the packets of a selected flow
// whose edits the daemon still holds would reach the server untranslated.

import (
	"context"
	"log/slog"
	"strings"
	"time"

	"github.com/google/nftables"

	"github.com/natreveal/natreveal/rules"
)

// keeper watches the namespace's table deletions and runs its checks
// after each burst of them.
type keeper struct {
	log *slog.Logger
	// watch subscribes: the names of deleted tables; the channel closes
	// when the subscription fails. stop ends it.
	watch func() (deleted <-chan string, stop func(), err error)
	// checks put back what is missing, each reporting whether it did;
	// restored counts each that did.
	checks   []func() bool
	restored func()
	// settle is how long a burst of deletions has to end before the
	// check; retry, how long after a failed subscription the next try
	// (and a check: deletions may have gone unseen) comes.
	settle, retry time.Duration
}

// run watches until ctx ends. After every subscription, and while none can
// be made, it checks once per retry: deletions it did not see are found.
func (k keeper) run(ctx context.Context) {
	failing := false
	for {
		deleted, stop, err := k.watch()
		if err != nil {
			if !failing {
				k.log.Warn("cannot watch nftables for deleted tables; checking natreveal's every "+k.retry.String(), "err", err)
				failing = true
			}
			k.check()
			if !sleep(ctx, k.retry) {
				return
			}
			continue
		}
		failing = false
		k.check() // what went before the subscription
		k.follow(ctx, deleted)
		stop()
		if ctx.Err() != nil {
			return
		}
		k.check() // the subscription failed: what went meanwhile
		if !sleep(ctx, k.settle) {
			return
		}
	}
}

// follow checks after each burst of deletions until ctx ends or the
// subscription does.
func (k keeper) follow(ctx context.Context, deleted <-chan string) {
	for {
		select {
		case <-ctx.Done():
			return
		case _, ok := <-deleted:
			if !ok {
				return
			}
		}
		// A reload deletes and adds in one batch, and sends its own
		// events: let the burst end, then look at the result.
		for burst := true; burst; {
			select {
			case <-ctx.Done():
				return
			case _, ok := <-deleted:
				if !ok {
					return // run checks
				}
			case <-time.After(k.settle):
				burst = false
			}
		}
		k.check()
	}
}

func (k keeper) check() {
	for _, c := range k.checks {
		if c() && k.restored != nil {
			k.restored()
		}
	}
}

// sleep waits d or until ctx ends; false when ctx ended.
func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}

// restore puts the ruleset back when a table of it is gone while the daemon
// runs, and reports whether it did. Before install and after remove there
// is nothing to keep.
func (d *packetDaemon) restore() bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.stopped || !d.installed {
		return false
	}
	return putBack(d.nft, d.spec.Tables(), func() error { return d.replaceRuleset(d.spec) }, d.log, "", ": no packet is marked")
}

// putBack applies again when a table of tables is missing, and reports
// whether it did; prefix names the owner in the log ("port-set: "), failed
// says what a failure leaves, attrs go with the success line.
func putBack(nft *nftables.Conn, tables []string, apply func() error, log *slog.Logger, prefix, failed string, attrs ...any) bool {
	gone, err := rules.Missing(nft, tables)
	if err != nil {
		log.Warn(prefix+"checking natreveal's tables", "err", err)
		return false
	}
	if len(gone) == 0 {
		return false
	}
	what := prefix + "table " + strings.Join(gone, ", ") + " was deleted while natreveal runs"
	if err := apply(); err != nil {
		log.Error(what+", and putting it back failed"+failed, "err", err)
		return false
	}
	log.Warn(what+" (a firewall reload?): installed again", append([]any{"tables", gone}, attrs...)...)
	return true
}
