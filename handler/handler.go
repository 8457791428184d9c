// Package handler is the packet path of queued packets: the SYNs and UDP
// flows of inside hosts get their HOST_ID (RFC 6967 §3) by the configured
// methods, with the flow tables that follow flows after their first packet,
// the counters and the MTU lookup; selected flows go to package stream (sequence translation, HTTP fields, the PROXY
// header). It is pure: the queue (package queue) reads and answers
// the packets, and conntrack, the HOST_ID source and the MTU are injected.
package handler

import (
	"errors"
	"net/netip"
	"sync"
	"time"

	"github.com/natreveal/natreveal/conntrack"
	"github.com/natreveal/natreveal/hostid"
	"github.com/natreveal/natreveal/markbits"
	"github.com/natreveal/natreveal/method"
	"github.com/natreveal/natreveal/method/all"
	"github.com/natreveal/natreveal/packet"
	"github.com/natreveal/natreveal/queue"
	"github.com/natreveal/natreveal/stream"
)

// Meta, Verdict and AfterSend are the queue's (queue.PacketHandler).
type (
	Meta      = queue.Meta
	Verdict   = queue.Verdict
	AfterSend = queue.AfterSend
)

// HandlerConfig is the SYN path's behaviour.
type HandlerConfig struct {
	Inside  []netip.Prefix
	PostNAT bool // packets are queued after source NAT: the tag mark or conntrack names the inside host
	// Steps are the enabled methods' packet steps, each built from its
	// method's configuration block. They run in packet order (method.Layer)
	// and registry order (method/all) within a layer, whatever their order
	// here.
	Steps    []method.Step
	TrackBit uint32
	DoneBit  uint32

	// Stream is the selected flows' settings (package stream; IPv4,
	// pre-NAT): the payload methods' parts, each filled from its method's
	// configuration block (method/all.Configs.Stream), and the common ones.
	Stream stream.Config
}

// Handler rewrites queued packets; it is pure (no syscalls): the HOST_ID
// source, the conntrack resolver and the MTU lookup are injected.
type Handler struct {
	cfg     HandlerConfig
	src     hostid.Source
	resolve func(conntrack.Key) (netip.AddrPort, error) // PostNAT only
	mtu     func(ifIndex uint32) int                    // 0: unknown
	flows   *Flows
	stats   *Stats
	now     func() time.Time
	track   bool           // follow flows after the SYN (RFC 7974 §4.2, ip-id scope new)
	track6  bool           // the same for IPv6 flows: tcp-option only (no IP-ID in IPv6)
	sel     *stream.Engine // selected flows (payload insertion); nil when none are
	steps   []step         // cfg.Steps in the order they run
	views   sync.Pool      // *packet.View: steps are called through an interface, so the view is not on the stack
}

// step is a method's packet step and its registry position, which indexes
// its counters; spoof is the step as a method.AntiSpoof, nil when it is
// none (resolved once here: no interface conversion per packet).
type step struct {
	method.Step
	idx   int
	spoof method.AntiSpoof
}

// NewHandler builds a Handler. resolve may be nil unless cfg.PostNAT.
func NewHandler(cfg HandlerConfig, src hostid.Source, resolve func(conntrack.Key) (netip.AddrPort, error),
	mtu func(uint32) int, flows *Flows, stats *Stats) *Handler {
	h := &Handler{
		cfg: cfg, src: src, resolve: resolve, mtu: mtu, flows: flows, stats: stats, now: time.Now,
		track: cfg.Tracks(), track6: cfg.Tracks6(), steps: orderSteps(cfg.Steps),
	}
	h.views.New = func() any { return new(packet.View) }
	h.sel = stream.New(cfg.Stream, &stats.Counters)
	return h
}

// orderSteps puts steps in the order they run: by layer from the outside
// in, then by registry position. A step of a method the registry does not
// list panics: it has no counters.
func orderSteps(steps []method.Step) []step {
	var out []step
	for l := method.LayerIP; l <= method.LayerTransport; l++ {
		for i, m := range all.List {
			for _, s := range steps {
				if s.Layer() == l && s.Name() == m.Name {
					if i >= maxMethods {
						panic("handler: more methods than maxMethods")
					}
					a, _ := s.(method.AntiSpoof)
					out = append(out, step{s, i, a})
				}
			}
		}
	}
	if len(out) != len(steps) {
		panic("handler: a step of a method the registry does not list")
	}
	return out
}

// needs ORs the steps' needs.
func (c HandlerConfig) needs() method.Needs {
	var n method.Needs
	for _, s := range c.Steps {
		n = n.Or(s.Needs())
	}
	return n
}

// Tracks reports whether flows are followed after their SYN: the ruleset
// queues their client segments until the server shows the connection
// established (rules.Spec.Track).
func (c HandlerConfig) Tracks() bool { return c.needs().Track }

// Tracks6 is Tracks for IPv6 flows: only the RFC 7974 option follows them.
func (c HandlerConfig) Tracks6() bool { return c.needs().Track6 }

// UDP reports whether the first packets of IPv4 UDP flows carry a HOST_ID.
func (c HandlerConfig) UDP() bool { return c.udpPackets(false) > 0 }

// UDP6 reports whether the first packets of IPv6 UDP flows carry a HOST_ID.
func (c HandlerConfig) UDP6() bool { return c.udpPackets(true) > 0 }

// udpPackets is how many packets of a UDP flow some method marks.
func (c HandlerConfig) udpPackets(v6 bool) int {
	if v6 {
		return c.needs().UDP6
	}
	return c.needs().UDP
}

// Handle decides about the packet in buf[:n]; buf has room for growth up to
// cap(buf). Any failure leaves the packet unchanged (fail open) and counts.
// IPv4 and IPv6 share the queues: the version nibble (RFC 791 §3.1, RFC
// 8200 §3) picks the path.
func (h *Handler) Handle(buf []byte, n int, m Meta) Verdict {
	if n > 0 && buf[0]>>4 == 6 {
		return h.handle(buf, n, m, netip.Addr{}) // pre-NAT only (config refuses post-nat with IPv6)
	}
	if !h.cfg.PostNAT {
		return h.handle(buf, n, m, netip.Addr{})
	}
	// Post-NAT: a tag rule put the inside source address in the mark of an
	// unmarked packet (rules.SourceFromMark). Read it, and give the packet
	// its mark 0 back.
	tag := markbits.SourceFromMark(m.Mark)
	if !h.inside(tag) {
		return h.handle(buf, n, m, netip.Addr{})
	}
	m.Mark = 0
	v := h.handle(buf, n, m, tag)
	if !v.SetMark {
		v.SetMark, v.Mark = true, 0
	}
	return v
}

// handle is Handle for either family; tag is the inside source a
// post-NAT tag rule reported, or the zero Addr. The packet is parsed once
// here (packet.View) and the view goes to every step, which keeps it true
// when it rewrites the packet. IPv6 (RFC 8200) is queued before NAT66: TCP
// gets the RFC 7974 option and the Destination Option on the SYN, UDP the
// Destination Option on the first packets of a flow.
func (h *Handler) handle(buf []byte, n int, m Meta, tag netip.Addr) Verdict {
	pv := h.views.Get().(*packet.View)
	defer h.views.Put(pv)
	return h.parsed(pv, buf, n, m, tag)
}

// parsed is handle with the view v to parse into.
func (h *Handler) parsed(v *packet.View, buf []byte, n int, m Meta, tag netip.Addr) Verdict {
	r := v.Parse(buf, n)
	if v.IPRes != packet.Unchanged {
		h.stats.inc(NotParsed)
		return Verdict{}
	}
	if v.Proto == packet.ProtoUDP {
		if r != packet.Unchanged {
			h.stats.inc(NotParsed)
			return Verdict{}
		}
		return h.udp(v, buf, m, tag)
	}
	if r != packet.Unchanged {
		// A SYN from an inside host with a malformed option list could hide
		// its own HOST_ID from the rewrite: refuse it (anti-spoofing, RFC
		// 6967 §3). No real TCP stack sends one. IPv6 is pre-NAT only.
		fromInside := tag.IsValid() || ((!h.cfg.PostNAT || v.Version == 6) && h.inside(v.Src))
		if r == packet.BadHeader && fromInside && isSYN(buf[:n], v.Proto, v.L4Off, v.Frag) {
			h.stats.inc(Refused)
			return Verdict{Drop: true}
		}
		h.stats.inc(NotParsed)
		return Verdict{}
	}
	// Reply packets head for an inside host: the reverse NAT is done by now.
	if h.inside(v.Dst) {
		if h.sel != nil && v.Version == 4 {
			key := FlowKey{Proto: 6, Inside: v.Dst, InsidePort: v.TCP.DstPort, Server: v.Src, ServerPort: v.TCP.SrcPort}
			if vd, ok := h.sel.Reply(key, v, buf); ok {
				return h.modified(vd)
			}
		}
		return h.reply()
	}
	return h.original(v, buf, m, tag)
}

// modified counts a rewritten packet.
func (h *Handler) modified(v Verdict) Verdict {
	if v.Len > 0 {
		h.stats.inc(Modified)
	}
	return v
}

func (h *Handler) inside(a netip.Addr) bool {
	for _, p := range h.cfg.Inside {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// insideEnd fills in the inside end of key, a flow seen at the queue: the
// tag, or post-NAT (IPv4 only) what conntrack says; ok false when that
// failed (counted).
func (h *Handler) insideEnd(key *FlowKey, tag netip.Addr, v4 bool) (ok bool) {
	switch {
	case tag.IsValid():
		// The port is the one after NAT: replies match it as long as the
		// NAT kept the client's port (masquerade does unless ports clash).
		key.Inside = tag
	case h.cfg.PostNAT && v4:
		in, err := h.resolve(conntrack.Key{
			Proto: key.Proto,
			Src:   netip.AddrPortFrom(key.Inside, key.InsidePort),
			Dst:   netip.AddrPortFrom(key.Server, key.ServerPort),
		})
		if err != nil {
			h.countCtErr(err)
			return false
		}
		key.Inside, key.InsidePort = in.Addr().Unmap(), in.Port()
	}
	return true
}

// original handles a client->server TCP segment.
func (h *Handler) original(pv *packet.View, buf []byte, m Meta, tag netip.Addr) Verdict {
	v4 := pv.Version == 4
	key := FlowKey{Proto: 6, Inside: pv.Src, InsidePort: pv.TCP.SrcPort, Server: pv.Dst, ServerPort: pv.TCP.DstPort}
	if !h.insideEnd(&key, tag, v4) {
		return h.unmarkedSYN(Verdict{}, pv, buf) // forged.go
	}
	id, ok := h.src.HostID(key.Inside, m.InIf)
	if !ok {
		h.stats.inc(NoHostID)
		return h.unmarkedSYN(Verdict{}, pv, buf) // forged.go
	}
	track := h.track
	if !v4 {
		track = h.track6
	}
	v, syn, mark := h.follow(pv.TCP, m, track)
	h.run(&v, pv, buf, method.Packet{ID: id, Inside: key.Inside, SYN: syn, Tracked: mark}, m)
	if h.sel != nil && v4 {
		v = h.sel.Original(key, id, syn, pv, buf, m, h.outMTU(m), v)
	}
	return h.modified(v)
}

// run runs the methods' steps on the packet and counts their results; a
// step that changed the packet sets its new length in vd.
func (h *Handler) run(vd *Verdict, pv *packet.View, buf []byte, p method.Packet, m Meta) {
	if len(h.steps) == 0 {
		return
	}
	p.MTU = h.outMTU(m)
	for i := range h.steps {
		s := &h.steps[i]
		r, nl := s.Rewrite(pv, buf, p)
		if r == method.Skip {
			continue
		}
		h.stats.results[s.idx][r].Add(1)
		if nl > 0 {
			vd.Len = nl
		} else if r != packet.Written && r != packet.Unchanged && s.spoof != nil {
			*vd = h.unmarked(*vd, pv, buf, s.spoof) // forged.go: no forged HOST_ID leaves unwritten
		}
	}
}

// follow classifies a client->server TCP segment: a SYN starts a followed
// flow (track: the verdict sets TrackBit, and the steer chain then queues
// the flow's client segments until the server shows it established, RFC
// 7974 §4.2, or tcp_option.max_segments is reached; rules.Spec.Track).
// Those segments carry the option: no state is kept here. mark: the
// segment carries the option.
func (h *Handler) follow(tcp packet.TCP, m Meta, track bool) (v Verdict, syn, mark bool) {
	syn = tcp.Flags&(packet.FlagSYN|packet.FlagACK|packet.FlagRST|packet.FlagFIN) == packet.FlagSYN
	switch {
	case syn:
		if track {
			h.stats.inc(FlowsTracked)
			v = h.setMark(v, m, h.cfg.TrackBit)
		}
		return v, true, true
	case track:
		// Pre-NAT the steer chain put TrackBit in the mark of segments of
		// the tracked phase; post-NAT (no AllTCP with tcp-option, no
		// selected flows: config) every queued later segment is one.
		phase := h.cfg.PostNAT || m.Mark&h.cfg.TrackBit != 0
		return v, false, phase && tcp.Flags&packet.FlagRST == 0
	}
	return v, false, false
}

func (h *Handler) outMTU(m Meta) int {
	if m.GSO {
		return 0xffff // the kernel segments it: only the IPv4 length bounds it
	}
	if h.mtu == nil {
		return 0
	}
	return h.mtu(m.OutIf)
}

// udp handles a UDP datagram: the first packets of each flow from an inside
// host carry the HOST_ID (IPv4: ip-option, ip-id; IPv6: the Destination
// Option); the flow is followed through the ct mark until the last of them,
// then the ruleset stops queueing it.
func (h *Handler) udp(pv *packet.View, buf []byte, m Meta, tag netip.Addr) Verdict {
	if h.inside(pv.Dst) {
		return Verdict{} // a reply of a followed flow: nothing to write
	}
	v4 := pv.Version == 4
	key := FlowKey{Proto: 17, Inside: pv.Src, InsidePort: pv.UDP.SrcPort, Server: pv.Dst, ServerPort: pv.UDP.DstPort}
	if !h.insideEnd(&key, tag, v4) {
		return Verdict{}
	}
	v, seq, ok := h.udpSeq(key, m, h.cfg.udpPackets(!v4))
	if !ok {
		return v
	}
	id, ok := h.src.HostID(key.Inside, m.InIf)
	if !ok {
		h.stats.inc(NoHostID)
		return v
	}
	h.run(&v, pv, buf, method.Packet{ID: id, Inside: key.Inside, UDPSeq: seq}, m)
	return h.modified(v)
}

// udpSeq counts a datagram of a UDP flow that some method marks on its
// first limit packets: seq is its number in the flow, ok false when it is
// past the limit (queued before the ct mark said done). v carries the marks.
func (h *Handler) udpSeq(key FlowKey, m Meta, limit int) (v Verdict, seq int, ok bool) {
	// A finished flow stays in the table (until conntrack destroys it or it
	// ages out) so that packets queued before the ct mark said done are
	// not taken for a new flow.
	if !h.flows.With(key, func(f *flow) bool {
		if f.segs < 0xffff {
			f.segs++
		}
		seq = int(f.segs)
		return false
	}) {
		seq = 1
		switch {
		case limit <= 1:
		case h.flows.start(key, h.now().Unix()):
			h.stats.inc(FlowsTracked)
			v = h.setMark(v, m, h.cfg.TrackBit)
		default:
			h.stats.inc(FlowsFull)
			limit = 1
		}
	}
	if seq >= limit {
		if seq == limit && limit > 1 {
			h.stats.inc(TrackDone)
		}
		v = h.setMark(v, m, h.cfg.DoneBit)
	}
	return v, seq, seq <= limit
}

func (h *Handler) countCtErr(err error) {
	if errors.Is(err, conntrack.ErrNotFound) {
		h.stats.inc(CtMiss)
	} else {
		h.stats.inc(CtError)
	}
}

// reply handles a server->client TCP packet that is not one of a selected
// flow: the ruleset queues none (the kernel lowers the SYN-ACK's MSS and
// ends tracking, rules.Spec.Track), so it passes unchanged and counts.
func (h *Handler) reply() Verdict {
	h.stats.inc(Untracked)
	return Verdict{}
}

// isSYN reads the flags of a TCP header at offset tcpOff that did not parse
// (bad options).
func isSYN(pkt []byte, proto uint8, tcpOff int, frag bool) bool {
	off := tcpOff + 13
	return proto == 6 && !frag && off < len(pkt) &&
		pkt[off]&(packet.FlagSYN|packet.FlagACK) == packet.FlagSYN
}

// setMark adds bit to the packet's mark, keeping the bits others set.
func (h *Handler) setMark(v Verdict, m Meta, bit uint32) Verdict {
	if !v.SetMark {
		v.Mark = m.Mark
	}
	v.SetMark, v.Mark = true, v.Mark|bit
	return v
}

// ForgetFlow drops state for a flow conntrack destroyed. Post-NAT flows are
// keyed by the port after NAT, so both ports are tried. live and last are a
// selected flow's (stream.Engine.Forget); again: call again later with last.
func (h *Handler) ForgetFlow(k FlowKey, natPort uint16, live func() bool, last bool) (again bool) {
	evicted := h.flows.Delete(k)
	if h.sel != nil {
		switch h.sel.Forget(k, live, last) {
		case stream.Forgotten:
			evicted = true
		case stream.AskAgain:
			again = true
		}
	}
	if h.cfg.PostNAT && natPort != k.InsidePort {
		k.InsidePort = natPort
		evicted = h.flows.Delete(k) || evicted
	}
	if evicted {
		h.stats.inc(FlowsEvicted)
	}
	return again
}
