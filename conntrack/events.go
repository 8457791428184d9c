package conntrack

import (
	"context"
	"fmt"
	"net/netip"

	"github.com/mdlayher/netlink"
	ct "github.com/ti-mo/conntrack"
	"github.com/ti-mo/netfilter"
)

// Destroyed describes a flow the kernel removed: its original tuple (inside
// source) and the tuple it left with (after NAT).
type Destroyed struct {
	Proto            uint8
	OrigSrc, OrigDst netip.AddrPort
	NATSrc           netip.AddrPort // source as it left: the reply tuple's destination
}

// WatchDestroy calls fn for every conntrack destroy event of the current
// network namespace until ctx ends, on a ctnetlink socket of its own (the
// lean reader of destroy.go). Events lost to a full socket buffer are
// dropped silently (NoENOBUFS): callers must also expire their state by age.
func WatchDestroy(ctx context.Context, fn func(Destroyed)) error {
	return watchDestroy(ctx, fn)
}

// listenEvents calls fn for every conntrack event of groups (with a flow)
// until ctx ends, on its own ctnetlink socket in network namespace netns
// (0: current) with a receive buffer of rcvbuf bytes. Events lost to a full
// socket buffer are dropped (NoENOBUFS).
func listenEvents(ctx context.Context, netns, rcvbuf int, groups []netfilter.NetlinkGroup, fn func(ct.Event)) error {
	c, err := ct.Dial(&netlink.Config{NetNS: netns})
	if err != nil {
		return fmt.Errorf("conntrack: dial for events: %w", err)
	}
	if err := c.SetOption(netlink.NoENOBUFS, true); err != nil {
		c.Close()
		return fmt.Errorf("conntrack: events NoENOBUFS: %w", err)
	}
	_ = c.SetReadBuffer(rcvbuf)
	evs := make(chan ct.Event, 4096)
	errs, err := c.Listen(evs, 1, groups)
	if err != nil {
		c.Close()
		return fmt.Errorf("conntrack: listen for events %v: %w", groups, err)
	}
	go func() {
		// Close waits for the event worker, which may be blocked on a full
		// channel: keep draining until it is gone.
		defer func() {
			done := make(chan struct{})
			go func() { c.Close(); close(done) }()
			for {
				select {
				case <-evs:
				case <-errs:
				case <-done:
					return
				}
			}
		}()
		for {
			select {
			case <-ctx.Done():
				return
			case <-errs:
				return
			case ev := <-evs:
				if ev.Flow != nil {
					fn(ev)
				}
			}
		}
	}()
	return nil
}

// Created describes a flow conntrack reports new: its original tuple, its
// helper's name ("" for none) and whether it has already seen a reply (an
// entry made over ctnetlink, such as conntrackd's commit on an HA backup,
// not by a first packet).
type Created struct {
	OrigSrc, OrigDst netip.AddrPort
	Proto            uint8
	Helper           string
	SeenReply        bool
}

// WatchNew calls fn for every conntrack new event of the current network
// namespace until ctx ends, on a ctnetlink socket of its own. Events lost to
// a full socket buffer are dropped (NoENOBUFS).
func WatchNew(ctx context.Context, fn func(Created)) error {
	return listenEvents(ctx, 0, 1<<20, []netfilter.NetlinkGroup{netfilter.GroupCTNew}, func(ev ct.Event) {
		if ev.Type != ct.EventNew {
			return
		}
		f, o := ev.Flow, ev.Flow.TupleOrig
		fn(Created{
			OrigSrc:   netip.AddrPortFrom(o.IP.SourceAddress, o.Proto.SourcePort),
			OrigDst:   netip.AddrPortFrom(o.IP.DestinationAddress, o.Proto.DestinationPort),
			Proto:     o.Proto.Protocol,
			Helper:    f.Helper.Name,
			SeenReply: f.Status.SeenReply(),
		})
	})
}
