package main

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net/netip"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/nftables"

	"github.com/natreveal/natreveal/config"
	"github.com/natreveal/natreveal/conntrack"
	"github.com/natreveal/natreveal/handler"
	"github.com/natreveal/natreveal/hostid"
	"github.com/natreveal/natreveal/method/ident"
	"github.com/natreveal/natreveal/method/ipid"
	"github.com/natreveal/natreveal/method/portset"
	"github.com/natreveal/natreveal/queue"
	"github.com/natreveal/natreveal/rules"
)

// packetDaemon is the packet path of `run` that a reload (SIGHUP) swaps:
// the handler (encoders, HOST_ID source, flow settings) behind an atomic
// pointer, so workers see either the old or the new one, never a mix, and
// the ruleset, which rules.Apply replaces in one batch. The queues, the
// counters and the flow table (while flows.max stays) outlive a reload.
type packetDaemon struct {
	ctx  context.Context
	log  *slog.Logger
	nft  *nftables.Conn
	mech rules.Mechanism
	st   *handler.Stats
	mtu  func(uint32) int
	src  *swapSource // the HOST_ID source, shared with ident

	h        atomic.Pointer[handler.Handler]
	flows    atomic.Pointer[handler.Flows]
	resolver atomic.Pointer[conntrack.Resolver]
	lookups  atomic.Uint64                  // conntrack lookups of the post-NAT path
	livecc   atomic.Pointer[conntrack.Conn] // ctnetlink socket of the destroy watcher's lookups (live)
	portSet  atomic.Bool                    // the port-set table is installed (run: startPortSet until its undo)

	mu        sync.Mutex // the fields below, and nft
	c         *config.Config
	spec      rules.Spec
	installed bool
	stopped   bool
	watching  bool
	cc        *conntrack.Conn
	learner   *ipid.Learner   // in-kernel ip-id path (ipidkernel.go)
	noHelper  bool            // the kernel lacks the seqadj helper: no handoff
	seqcc     *conntrack.Conn // ctnetlink socket of the handoff
	carrier   *carrierWatch   // clears the seqadj helper from committed flows (carrier.go)
	ruleBase  [2]uint64       // ruleset counters (done, mss) of the tables a reload replaced
	acctOff   func()          // restores nf_conntrack_acct (countPackets), or nil
}

// countPackets turns conntrack's packet counters on for the tracked flows'
// bound (sysctl.go), once; restoreAcct undoes it at exit. Failing is not
// fatal: flows still end on the server's first segment (RFC 7974 §4.2), only
// tcp_option.max_segments goes unenforced. It reports whether the attempt is
// over: false when the sysctl is not there yet (nf_conntrack not loaded),
// which quiet leaves unlogged for a later attempt; a failed write is logged
// by sysctlOn and not retried.
func (d *packetDaemon) countPackets(quiet bool) bool {
	if d.acctOff != nil {
		return true
	}
	restore, err := countPackets(d.log)
	d.acctOff = restore // also after a failed write: see sysctlOn
	if err != nil {
		if !errors.Is(err, fs.ErrNotExist) {
			return true
		}
		if !quiet {
			d.log.Warn("tcp_option.max_segments is not enforced; set net.netfilter.nf_conntrack_acct=1 (sysctl.d) to enforce it", "err", err)
		}
		return false
	}
	return true
}

func (d *packetDaemon) restoreAcct() {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.acctOff != nil {
		d.acctOff()
		d.acctOff = nil
	}
}

// refreshRuleset stores the ruleset's counters (rules.Counters) in d.st:
// what the kernel did for tracked flows without the daemon. d.mu is held.
func (d *packetDaemon) refreshRuleset() {
	if !d.installed {
		return
	}
	m, err := rules.Counters(d.nft, d.spec.Table)
	if err != nil {
		d.log.Debug("reading the ruleset's counters", "err", err)
		return
	}
	d.st.SetRuleset(d.ruleBase[0]+m[rules.CounterTrackDone], d.ruleBase[1]+m[rules.CounterMSSLowered])
}

// RefreshRuleset is refreshRuleset for a metrics scrape.
func (d *packetDaemon) RefreshRuleset() {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.refreshRuleset()
}

// ruleSpec is the package's ruleSpec without the seqadj helper when the
// kernel has none. Not inlined: each copy of the Spec it returns costs the
// router build (TestRouterBinarySize).
//
//go:noinline
func (d *packetDaemon) ruleSpec(c *config.Config) rules.Spec {
	s := ruleSpec(c, d.mech)
	if d.noHelper {
		s.SeqAdjHelper, s.SeqAdjBit = "", 0
	}
	return s
}

// close releases the conntrack socket of the post-NAT path.
func (d *packetDaemon) close() {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.cc != nil {
		d.cc.Close()
		d.cc = nil
	}
	if d.seqcc != nil {
		d.seqcc.Close()
		d.seqcc = nil
	}
	if cc := d.livecc.Swap(nil); cc != nil {
		cc.Close()
	}
}

// Handle implements queue.PacketHandler with the current handler.
func (d *packetDaemon) Handle(buf []byte, n int, m queue.Meta) queue.Verdict {
	return d.h.Load().Handle(buf, n, m)
}

// prepare builds a handler for c (and the conntrack pieces it needs) without
// touching the running one. d.mu is held.
func (d *packetDaemon) prepare(c *config.Config, src hostid.Source) (*handler.Handler, *handler.Flows, error) {
	hc := handlerConfig(c)
	d.ipidKernel(c, hc.Steps)
	flows := d.flows.Load()
	if flows == nil || d.c == nil || d.c.Flows.Max != c.Flows.Max {
		flows = handler.NewFlows(c.Flows.Max)
	}
	var resolve func(conntrack.Key) (netip.AddrPort, error)
	if hc.PostNAT {
		r := d.resolver.Load()
		if r == nil {
			cc, err := conntrack.Dial()
			if err != nil {
				return nil, nil, err
			}
			d.cc = cc
			r = conntrack.NewResolver(cc, 65536, 30*time.Second)
			d.resolver.Store(r)
		}
		resolve = func(k conntrack.Key) (netip.AddrPort, error) {
			d.lookups.Add(1)
			return r.InsideSource(k)
		}
	}
	// Destroy events free per-flow state: UDP flows, selected flows, the
	// post-NAT resolver's cache. Tracked TCP flows have none (the ruleset
	// follows them), so tcp-option alone needs no listener.
	if (hc.UDP() || hc.UDP6() || hc.Selects() || hc.PostNAT) && !d.watching {
		if err := conntrack.WatchDestroy(d.ctx, d.destroyed); err != nil {
			return nil, nil, err
		}
		d.watching = true
		go d.sweep()
	}
	if hc.Selects() && d.livecc.Load() == nil {
		cc, err := conntrack.Dial()
		if err != nil {
			return nil, nil, err
		}
		d.livecc.Store(cc)
	}
	h := handler.NewHandler(hc, src, resolve, d.mtu, flows, d.st)
	if d.ruleSpec(c).SeqAdjHelper != "" {
		if d.seqcc == nil {
			cc, err := conntrack.Dial()
			if err != nil {
				return nil, nil, err
			}
			d.seqcc = cc
		}
		h.SetSeqAdj(d.seqcc)
		if d.carrier == nil {
			w, err := watchCarrier(d.ctx, d.ruleSpec(c).SeqAdjHelper, d.seqcc, d.h.Load, d.log)
			if err != nil {
				return nil, nil, err
			}
			d.carrier = w
		}
		if spec := d.ruleSpec(c); spec.UploadSize != 0 {
			// Request bodies skip the queue (stream/upload.go); nftables
			// opens a netlink socket per batch.
			h.SetUploads(rules.NewUploads(spec.Table, nil))
		}
	}
	if old := d.h.Load(); old != nil {
		h.KeepStreams(old) // selected flows in progress survive a reload
	}
	return h, flows, nil
}

// destroyed forgets a flow conntrack destroyed. The watcher starts in
// prepare, before start stores the first handler: an event that comes
// earlier finds no handler and no flow state to free.
func (d *packetDaemon) destroyed(e conntrack.Destroyed) {
	if e.Proto != 6 && e.Proto != 17 {
		return
	}
	// IPv4 and IPv6 flows; keys hold IPv4 as Is4, never mapped.
	d.forget(handler.FlowKey{
		Proto:  e.Proto,
		Inside: e.OrigSrc.Addr().Unmap().WithZone(""), InsidePort: e.OrigSrc.Port(),
		Server: e.OrigDst.Addr().Unmap().WithZone(""), ServerPort: e.OrigDst.Port(),
	}, e.NATSrc.Port(), false)
	if r := d.resolver.Load(); r != nil {
		r.Forget(conntrack.Key{Proto: e.Proto, Src: e.NATSrc, Dst: e.OrigDst})
	}
}

// forgetAgain is how long a selected flow whose SYN is unanswered waits
// before a destroy event of its tuple is weighed again: long past its SYN's
// verdict, which confirms its conntrack entry.
const forgetAgain = time.Second

// forget frees the handler's state of flow k (NAT source port natPort).
// A selected flow stays while conntrack holds an entry of its tuple (the
// event was an older entry's, stream.Engine.Forget).
func (d *packetDaemon) forget(k handler.FlowKey, natPort uint16, last bool) {
	h := d.h.Load()
	if h == nil {
		return
	}
	if h.ForgetFlow(k, natPort, d.live(k), last) {
		time.AfterFunc(forgetAgain, func() { d.forget(k, natPort, true) })
	}
}

// live asks conntrack whether it holds a TCP flow of k's original tuple
// now; nil when it cannot be asked (IPv6, no selected flows).
func (d *packetDaemon) live(k handler.FlowKey) func() bool {
	cc := d.livecc.Load()
	if cc == nil || k.Proto != 6 || !k.Inside.Is4() {
		return nil
	}
	return func() bool {
		ok, err := cc.Holds(k.Tuple())
		return ok && err == nil // a failed lookup: the state goes, as without one
	}
}

// start builds the first handler; install (the Bound hook) adds the rules.
func (d *packetDaemon) start(c *config.Config, src hostid.Source) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	h, flows, err := d.prepare(c, src)
	if err != nil {
		return err
	}
	d.src.Store(src)
	d.flows.Store(flows)
	d.h.Store(h)
	d.c, d.spec = c, d.ruleSpec(c)
	if keepClosing(&d.spec, d.spec.SelectBit, d.log) {
		go d.endClosing()
	}
	return nil
}

// keepClosing sets spec.CloseBit to bit when spec follows no selected flows
// but flows an earlier run selected are still open (ct mark with bit): the
// closing chain resets them rather than let them pass untranslated
// (rules.Close), and when they cannot be counted. It reports whether it
// did.
func keepClosing(spec *rules.Spec, bit uint32, log *slog.Logger) bool {
	if spec.Select || bit == 0 || !spec.HasIPv4() {
		return false
	}
	n, err := countSelected(bit)
	if err != nil {
		// Fail closed: flows that may still be open must not pass
		// untranslated; a later count (once a minute) drops the chain.
		spec.CloseBit = bit
		log.Warn("cannot count the flows an earlier run selected: chain "+rules.ClosingChain+" stays until a count says none is left", "err", err)
		return true
	}
	if n == 0 {
		return false
	}
	spec.CloseBit = bit
	log.Info(fmt.Sprintf("%d flows an earlier run selected are still tracked: chain %s resets their packets until conntrack forgets them",
		n, rules.ClosingChain), "flows", n)
	return true
}

// countSelected counts the flows whose ct mark has bit.
func countSelected(bit uint32) (int, error) {
	cc, err := conntrack.Dial()
	if err != nil {
		return 0, err
	}
	defer cc.Close()
	return cc.CountMarked(bit)
}

// endClosing counts, once a minute, the flows the closing chain is there
// for, and replaces the ruleset without it once none is left.
func (d *packetDaemon) endClosing() {
	t := time.NewTicker(time.Minute)
	defer t.Stop()
	for {
		select {
		case <-d.ctx.Done():
			return
		case <-t.C:
		}
		if d.closingEnded() {
			return
		}
	}
}

// closingEnded drops the closing chain when its flows have ended; true once
// there is none (or the daemon stops).
func (d *packetDaemon) closingEnded() bool {
	d.mu.Lock()
	bit, stopped := d.spec.CloseBit, d.stopped
	d.mu.Unlock()
	if stopped || bit == 0 {
		return true
	}
	// The dump walks conntrack's whole table: not under d.mu.
	if n, err := countSelected(bit); err != nil || n > 0 {
		return false
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.stopped || d.spec.CloseBit != bit {
		return d.stopped || d.spec.CloseBit == 0
	}
	spec := d.spec
	spec.CloseBit = 0
	if err := d.replaceRuleset(spec); err != nil {
		d.log.Warn("removing chain "+rules.ClosingChain, "err", err)
		return false
	}
	d.log.Info("the flows an earlier run selected have ended: chain " + rules.ClosingChain + " removed")
	return true
}

// replaceRuleset installs spec in place of d.spec, keeping the ruleset's
// counters (d.mu held).
func (d *packetDaemon) replaceRuleset(spec rules.Spec) error {
	// The new tables' counters start at 0: keep what the old ones counted
	// (packets counted between this read and the swap are lost).
	d.refreshRuleset()
	base := d.ruleBase
	done, mss := d.st.Ruleset()
	d.ruleBase = [2]uint64{done, mss}
	if err := rules.Replace(d.nft, spec, d.spec.Table); err != nil {
		d.ruleBase = base
		return err
	}
	d.spec = spec
	if d.learner != nil {
		d.learner.Reset() // the new table's map starts empty
	}
	return nil
}

// removeLeftClosing deletes the closing tables an earlier run left under
// another table name (`table` changed across a restart). Left there, their
// chain would clear this run's select bit from every SYN and reset the
// flows it selects; the flows they were there for are this run's to end:
// reset for want of state when it selects with the same bit, or by its own
// closing chain (keepClosing) when it does not. d.mu is held.
func (d *packetDaemon) removeLeftClosing() {
	left, err := rules.ClosingTables(d.nft)
	if err != nil {
		d.log.Warn("looking for closing tables an earlier run left", "err", err)
		return
	}
	for _, name := range left {
		if name == d.spec.Table {
			continue
		}
		if err := rules.Remove(d.nft, name); err != nil {
			d.log.Warn("removing the closing table an earlier run left", "table", "ip "+name, "err", err)
			continue
		}
		d.log.Info("removed table ip "+name+": the closing table an earlier run left under that name", "table", "ip "+name)
	}
}

// install applies the ruleset once the queues are bound.
func (d *packetDaemon) install() error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if err := rules.Apply(d.nft, d.spec); err != nil {
		return err
	}
	d.installed = true
	d.removeLeftClosing()
	return nil
}

// remove takes the ruleset away for good (the Unbinding hook): the closing
// table stays when flows are selected, which resets those still held here
// at their next packet (rules.Close), else nothing does. Later reloads do
// nothing.
func (d *packetDaemon) remove() error {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.stopped = true
	if !d.installed {
		return nil
	}
	d.refreshRuleset() // the exit statistics include them
	d.installed = false
	return rules.Close(d.nft, d.spec)
}

// reload swaps in configuration c with source src: the new ruleset first
// (one batch: on failure the old one stays, and so does the old handler),
// then the handler. It returns what is installed now.
func (d *packetDaemon) reload(c *config.Config, src hostid.Source) (string, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.stopped {
		return "", fmt.Errorf("stopping")
	}
	if key := restartOnly(d.c, c); key != "" {
		return "", &config.Error{Key: key, Msg: "changes only on a restart"}
	}
	h, flows, err := d.prepare(c, src)
	if err != nil {
		return "", err
	}
	if tracksTCP(c) {
		d.countPackets(false)
	}
	spec := d.ruleSpec(c)
	keepClosing(&spec, d.spec.CloseBit, d.log) // the earlier run's bit, whatever marks.select says now
	if err := d.replaceRuleset(spec); err != nil {
		return "", err
	}
	// Each handler holds its own source; d.src is ident's.
	d.src.Store(src)
	d.flows.Store(flows)
	d.h.Store(h)
	d.c = c
	return installed(c, spec, d.mech), nil
}

// restartOnly names a key whose change a reload cannot apply: the queues
// are bound once, and ident, metrics, logging, the control socket, the
// selected flows' table, port-set and the mapping log are set up at start.
func restartOnly(old, c *config.Config) string {
	switch {
	case old.Queue != c.Queue:
		return "queue"
	case old.Has(ident.Name) != c.Has(ident.Name) || old.Ident.Listen != c.Ident.Listen:
		return "ident"
	case !c.PacketMethods():
		return "methods"
	case old.Metrics.Listen != c.Metrics.Listen:
		return "metrics.listen"
	case old.Metrics.Textfile != c.Metrics.Textfile:
		return "metrics.textfile"
	case old.Metrics != c.Metrics:
		return "metrics.interval"
	case old.Log != c.Log:
		return "log.format"
	case handlerConfig(old).WantsGSO() != handlerConfig(c).WantsGSO():
		// The queues ask for whole GSO packets (selected flows) at bind
		// time; per-segment IP-IDs (ip_id.scope new/all) forbid them.
		return "methods"
	case old.Selects() != c.Selects():
		return "methods" // nf_conntrack_tcp_be_liberal is set at start
	case selectQueues(old) != selectQueues(c):
		// Selection is IPv4 only: the selected flows' queues, bound at
		// start, come and go with the IPv4 inside prefixes.
		return "inside"
	case old.Selects() && old.Flows.Max != c.Flows.Max:
		// The selected flows in progress stay in their table (KeepStreams),
		// sized and bounded by flows.max at start.
		return "flows.max"
	case old.Status != c.Status:
		return "status.socket" // the control socket is served from start
	case old.Marks != c.Marks:
		// The flows in progress carry the old bits in their ct marks: a
		// ruleset that follows the new ones would let them pass
		// untranslated (selected) or untracked.
		return "marks"
	}
	return restartOnlyPortSet(old, c)
}

// restartOnlyPortSet names a key of port-set or the mapping log whose
// change a reload cannot apply: run installs the port-set table and starts
// the mapping log once (startPortSet), so `natreveal portset plan` would
// publish a policy the kernel does not apply.
func restartOnlyPortSet(old, c *config.Config) string {
	ps, logs := old.Has(portset.Name), old.MappingLog.File != ""
	switch {
	case ps != c.Has(portset.Name):
		return "methods"
	case old.MappingLog.File != c.MappingLog.File:
		return "mapping_log.file"
	case logs && old.MappingLog != c.MappingLog:
		return "mapping_log.destination"
	case (ps || logs) && !same(old.Inside, c.Inside):
		return "inside" // the mapping log's filter, the policy's inside hosts
	case ps && old.Table != c.Table:
		return "table" // the port-set table is <table>_portset
	case ps && !same(old.PortSet, c.PortSet):
		return "port_set"
	}
	return ""
}

// same compares two configuration values as fmt prints them: every field,
// addresses and prefixes canonically. reflect.DeepEqual would cost the
// router build 8 kB, a comparison per field half of that.
//
//go:noinline
func same(a, b any) bool { return fmt.Sprint(a) == fmt.Sprint(b) }

// installed describes the ruleset of spec for the log.
func installed(c *config.Config, spec rules.Spec, mech rules.Mechanism) string {
	fams := []string{}
	if c.HasIPv4() {
		fams = append(fams, "ip")
	}
	if c.HasIPv6() {
		fams = append(fams, "ip6")
	}
	return fmt.Sprintf("table %s %s, queues %d-%d via %s, methods %v, %s",
		strings.Join(fams, " and "), spec.Table, c.Queue.Num, c.Queue.Num+c.Queue.Count-1, mech, c.Methods, c.Placement)
}

// swapSource is a hostid.Source that a reload replaces.
type swapSource struct{ p atomic.Pointer[sourceBox] }

type sourceBox struct{ hostid.Source }

func (s *swapSource) Store(src hostid.Source) { s.p.Store(&sourceBox{src}) }
func (s *swapSource) HostID(a netip.Addr, inIf uint32) (uint32, bool) {
	return s.p.Load().HostID(a, inIf)
}
func (s *swapSource) Bits() int { return s.p.Load().Bits() }

// sweep ages out state whose end natreveal never saw (lost destroy events,
// a server that never answers): followed flows every 10 s, selected flows
// every minute.
func (d *packetDaemon) sweep() {
	t := time.NewTicker(10 * time.Second)
	defer t.Stop()
	for n := 1; ; n++ {
		select {
		case <-d.ctx.Done():
			return
		case now := <-t.C:
			if f := d.flows.Load(); f != nil { // nil until start stores the first table
				f.Sweep(now, 2*time.Minute)
			}
			if n%6 == 0 {
				d.sweepSelected()
			}
		}
	}
}

// selectedAge is how old a selected flow is before the sweep asks
// conntrack about it: past any handshake (its entry is confirmed).
const selectedAge = 2 * time.Minute

// sweepSelected frees the selected flows conntrack no longer holds.
func (d *packetDaemon) sweepSelected() {
	h, cc := d.h.Load(), d.livecc.Load()
	if h == nil || cc == nil {
		return
	}
	h.SweepSelected(selectedAge, func(k handler.FlowKey) bool {
		ok, err := cc.Holds(k.Tuple())
		return ok || err != nil // a failed lookup frees nothing
	})
}
