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

// WatchDestroy calls fn for every conntrack destroy event until ctx ends. It
// opens its own ctnetlink socket in network namespace netns (0: current).
// Events lost to a full socket buffer are dropped silently (NoENOBUFS):
// callers must also expire their state by age.
func WatchDestroy(ctx context.Context, netns int, fn func(Destroyed)) error {
	c, err := ct.Dial(&netlink.Config{NetNS: netns})
	if err != nil {
		return fmt.Errorf("conntrack: dial for events: %w", err)
	}
	if err := c.SetOption(netlink.NoENOBUFS, true); err != nil {
		c.Close()
		return fmt.Errorf("conntrack: events NoENOBUFS: %w", err)
	}
	_ = c.SetReadBuffer(1 << 20)
	evs := make(chan ct.Event, 1024)
	errs, err := c.Listen(evs, 1, []netfilter.NetlinkGroup{netfilter.GroupCTDestroy})
	if err != nil {
		c.Close()
		return fmt.Errorf("conntrack: listen for destroy events: %w", err)
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
				if ev.Flow == nil {
					continue
				}
				f := ev.Flow
				fn(Destroyed{
					Proto:   f.TupleOrig.Proto.Protocol,
					OrigSrc: netip.AddrPortFrom(f.TupleOrig.IP.SourceAddress, f.TupleOrig.Proto.SourcePort),
					OrigDst: netip.AddrPortFrom(f.TupleOrig.IP.DestinationAddress, f.TupleOrig.Proto.DestinationPort),
					NATSrc:  netip.AddrPortFrom(f.TupleReply.IP.DestinationAddress, f.TupleReply.Proto.DestinationPort),
				})
			}
		}
	}()
	return nil
}
