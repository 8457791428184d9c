package nfq

import (
	"errors"
	"net/netip"
	"time"

	"github.com/natreveal/natreveal/conntrack"
	"github.com/natreveal/natreveal/encoders"
	"github.com/natreveal/natreveal/hostid"
)

// Meta is what the kernel tells about a queued packet besides its bytes.
type Meta struct {
	Mark  uint32
	InIf  uint32
	OutIf uint32
}

// Verdict is the answer for one packet: accept, except Drop for the one case
// natreveal refuses (see Handle); Len > 0 means buf[:Len] replaces the
// packet; SetMark sets the packet mark.
type Verdict struct {
	Len     int
	SetMark bool
	Mark    uint32
	Drop    bool
}

// HandlerConfig is the SYN path's behaviour.
type HandlerConfig struct {
	Inside    []netip.Prefix
	PostNAT   bool // packets are queued after source NAT: ask conntrack
	TCPOption bool
	OptionLen int // 2 or 4
	MaxSegs   int // client segments after the SYN that may carry the option
	IPID      bool
	IPIDScope string // "syn", "new", "all"
	TrackBit  uint32
	DoneBit   uint32
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
	track   bool // follow flows after the SYN (RFC 7974 §4.2, ip-id scope new)
}

// NewHandler builds a Handler. resolve may be nil unless cfg.PostNAT.
func NewHandler(cfg HandlerConfig, src hostid.Source, resolve func(conntrack.Key) (netip.AddrPort, error),
	mtu func(uint32) int, flows *Flows, stats *Stats) *Handler {
	return &Handler{
		cfg: cfg, src: src, resolve: resolve, mtu: mtu, flows: flows, stats: stats, now: time.Now,
		track: cfg.Tracks(),
	}
}

// Tracks reports whether flows are followed after their SYN, so the ruleset
// must queue their packets (both directions) until the handler says done.
func (c HandlerConfig) Tracks() bool {
	return c.TCPOption || (c.IPID && c.IPIDScope == "new")
}

// Handle decides about the packet in buf[:n]; buf has room for growth up to
// cap(buf). Any failure leaves the packet unchanged (fail open) and counts.
func (h *Handler) Handle(buf []byte, n int, m Meta) Verdict {
	pkt := buf[:n]
	ip, r := encoders.ParseIPv4(pkt)
	if r != encoders.Unchanged {
		h.stats.inc(NotParsed)
		return Verdict{}
	}
	tcp, r := encoders.ParseTCP(pkt, ip)
	if r != encoders.Unchanged {
		// A SYN from an inside host with a malformed option list could hide
		// its own HOST_ID from the rewrite: refuse it (anti-spoofing, seed
		// §5). No real TCP stack sends one.
		if r == encoders.BadHeader && !h.cfg.PostNAT && h.inside(ip.Src) && isSYN(pkt, ip) {
			h.stats.inc(Refused)
			return Verdict{Drop: true}
		}
		h.stats.inc(NotParsed)
		return Verdict{}
	}
	// Reply packets head for an inside host: the reverse NAT is done by now.
	if h.inside(ip.Dst) {
		return h.reply(ip, tcp, pkt, m)
	}
	return h.original(ip, tcp, buf, n, m)
}

func (h *Handler) inside(a [4]byte) bool {
	addr := netip.AddrFrom4(a)
	for _, p := range h.cfg.Inside {
		if p.Contains(addr) {
			return true
		}
	}
	return false
}

// original handles a client->server packet.
func (h *Handler) original(ip encoders.IPv4, tcp encoders.TCP, buf []byte, n int, m Meta) Verdict {
	key := FlowKey{Inside: ip.Src, InsidePort: tcp.SrcPort, Server: ip.Dst, ServerPort: tcp.DstPort}
	if h.cfg.PostNAT {
		in, err := h.resolve(conntrack.Key{
			Proto: 6,
			Src:   netip.AddrPortFrom(netip.AddrFrom4(ip.Src), tcp.SrcPort),
			Dst:   netip.AddrPortFrom(netip.AddrFrom4(ip.Dst), tcp.DstPort),
		})
		if err != nil {
			if errors.Is(err, conntrack.ErrNotFound) {
				h.stats.inc(CtMiss)
			} else {
				h.stats.inc(CtError)
			}
			return Verdict{}
		}
		key.Inside, key.InsidePort = in.Addr().As4(), in.Port()
	}
	id, ok := h.src.HostID(netip.AddrFrom4(key.Inside), m.InIf)
	if !ok {
		h.stats.inc(NoHostID)
		return Verdict{}
	}

	syn := tcp.Flags&(encoders.FlagSYN|encoders.FlagACK|encoders.FlagRST|encoders.FlagFIN) == encoders.FlagSYN
	var v Verdict
	mark, ipid := false, false
	switch {
	case syn:
		mark, ipid = true, h.cfg.IPID
		if h.track {
			if h.flows.start(key, tcp.Seq, h.now().Unix()) {
				h.stats.inc(FlowsTracked)
				v = h.setMark(v, m, h.cfg.TrackBit)
			} else {
				h.stats.inc(FlowsFull)
			}
		}
	case h.track:
		end := tcp.Flags&(encoders.FlagFIN|encoders.FlagRST) != 0
		carry, ended := false, false
		known := h.flows.with(key, func(f *flow) bool {
			f.segs++
			carry = int(f.segs) <= h.cfg.MaxSegs
			ended = !carry || end
			return ended
		})
		switch {
		case !known:
			// Queued by the tracking rule but unknown here (the daemon
			// restarted, or the flow ended): stop queueing this flow.
			if h.cfg.IPIDScope != "all" {
				h.stats.inc(Untracked)
			}
			v = h.setMark(v, m, h.cfg.DoneBit)
		case ended:
			h.stats.inc(TrackDone)
			v = h.setMark(v, m, h.cfg.DoneBit)
		}
		mark = carry
		ipid = h.cfg.IPID && h.cfg.IPIDScope != "syn" && carry
	}
	if h.cfg.IPID && h.cfg.IPIDScope == "all" {
		ipid = true
	}

	length := n
	if ipid {
		r := encoders.SetIPID(buf[:length], uint16(id))
		h.stats.ipid[r].Add(1)
		if r == encoders.Written {
			v.Len = length
		}
	}
	if mark && h.cfg.TCPOption {
		mtu := 0
		if h.mtu != nil {
			mtu = h.mtu(m.OutIf)
		}
		nl, r, stripped := encoders.AddHostIDOption(buf, length, id, h.cfg.OptionLen, mtu)
		h.stats.option[r].Add(1)
		if r == encoders.Written || stripped {
			v.Len = nl
		}
	}
	if v.Len > 0 {
		h.stats.inc(Modified)
	}
	return v
}

// reply handles a server->client packet of a followed flow: lower the MSS of
// the SYN-ACK so the client leaves room for the option, and end the flow once
// the server shows the connection is established (RFC 7974 §4.2: "the return
// segment either includes or acknowledges data").
func (h *Handler) reply(ip encoders.IPv4, tcp encoders.TCP, pkt []byte, m Meta) Verdict {
	var v Verdict
	key := FlowKey{Inside: ip.Dst, InsidePort: tcp.DstPort, Server: ip.Src, ServerPort: tcp.SrcPort}
	synack := tcp.Flags&(encoders.FlagSYN|encoders.FlagACK) == encoders.FlagSYN|encoders.FlagACK
	done := false
	known := h.track && h.flows.with(key, func(f *flow) bool {
		acked := tcp.Flags&encoders.FlagACK != 0 && int32(tcp.Ack-(f.isn+1)) > 0
		done = tcp.PayloadLen > 0 || acked || tcp.Flags&(encoders.FlagRST|encoders.FlagFIN) != 0
		return done
	})
	if !known {
		h.stats.inc(Untracked)
		return h.setMark(v, m, h.cfg.DoneBit)
	}
	if synack && h.cfg.TCPOption {
		if r := encoders.LowerMSS(pkt, encoders.HostIDOptionSpace); r == encoders.Written {
			h.stats.inc(MSSLowered)
			h.stats.inc(Modified)
			v.Len = len(pkt)
		}
	}
	if done {
		h.stats.inc(TrackDone)
		v = h.setMark(v, m, h.cfg.DoneBit)
	}
	return v
}

// isSYN reads the flags of a TCP header that did not parse (bad options).
func isSYN(pkt []byte, ip encoders.IPv4) bool {
	off := ip.HdrLen + 13
	return ip.Proto == 6 && !ip.IsFragment() && off < len(pkt) &&
		pkt[off]&(encoders.FlagSYN|encoders.FlagACK) == encoders.FlagSYN
}

// setMark adds bit to the packet's mark, keeping the bits others set.
func (h *Handler) setMark(v Verdict, m Meta, bit uint32) Verdict {
	if !v.SetMark {
		v.Mark = m.Mark
	}
	v.SetMark, v.Mark = true, v.Mark|bit
	return v
}

// ForgetFlow drops state for a flow conntrack destroyed.
func (h *Handler) ForgetFlow(k FlowKey) { h.flows.Delete(k) }
