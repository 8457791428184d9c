package stream

import (
	"net/netip"
	"time"

	"github.com/natreveal/natreveal/packet"
	"github.com/natreveal/natreveal/queue"
)

// Config is which flows are selected and what they get.
type Config struct {
	HTTPHeader bool
	HTTPSel    []Selector // destinations whose flows get the HTTP fields
	HTTPFields HTTPFields
	Proxy      bool
	ProxySel   []Selector // destinations whose flows get a PROXY header
	ProxyCfg   ProxyConfig
	IDBits     int    // HOST_ID width for its text form (16 or 32)
	IDAddress  bool   // the text form is the inside address (hostid source "address")
	SelectBit  uint32 // verdict mark the remember chain copies to the ct mark
	// SeqAdjBit: the ct mark bit that keeps an http-header flow's server
	// segments out of the queue (rules.Spec.SeqAdjBit, kernelack.go); 0:
	// they are always queued.
	SeqAdjBit   uint32
	MaxSelected int // selected flows held at once; past that a SYN to select is dropped (fail closed)
	// MaxSelectedPerHost: selected flows one inside host may hold (0:
	// MaxSelected/8): one host cannot take every place.
	MaxSelectedPerHost int
}

// Selects reports whether some flows are selected for payload insertion
// (http-header, proxy-protocol): their SYN verdict sets SelectBit, which the
// remember chain copies into the ct mark, and the steer chain then queues
// every packet of those flows in both directions.
func (c Config) Selects() bool { return c.HTTPHeader || c.Proxy }

// Engine is the selected flows' path: their settings, counters, the
// kernel handoff and the table of their translation state. It settles
// verdicts by flow key (queue.Settler).
type Engine struct {
	cfg     Config
	st      *queue.Counters
	streams *Streams
	tombs   *tombs           // flows whose state ended here (orphan.go)
	seqadj  SeqAdjuster      // hands flows to the kernel (handoff.go); nil: never
	uploads UploadSet        // request bodies that skip the queue (upload.go); nil: none
	now     func() time.Time // the clock of the tombstones
}

// New builds an engine that counts into st; nil when cfg selects nothing.
func New(cfg Config, st *queue.Counters) *Engine {
	if !cfg.Selects() {
		return nil
	}
	n := max(cfg.MaxSelected, 1)
	return &Engine{cfg: cfg, st: st, streams: NewStreams(n, cfg.MaxSelectedPerHost), tombs: newTombs(n), now: time.Now}
}

// Keep makes e continue the selected flows of old (a reload): their
// translation state must outlive the engine, or their packets would go on
// untranslated. Nothing changes when either is nil.
func (e *Engine) Keep(old *Engine) {
	if e != nil && old != nil {
		e.streams, e.tombs = old.streams, old.tombs
	}
}

// Streams is the table of the flows e holds.
func (e *Engine) Streams() *Streams { return e.streams }

// Len counts the selected flows held.
func (e *Engine) Len() int { return e.streams.Len() }

// Forgetting is what Forget did with a flow's state.
type Forgetting uint8

const (
	NotHeld   Forgetting = iota // no state for the flow
	Forgotten                   // the state is dropped
	Kept                        // conntrack holds an entry of the tuple: the event was an older entry's
	AskAgain                    // the flow's SYN is unanswered and conntrack holds no entry of it yet
)

// Forget drops the state of a flow conntrack destroyed (its translation
// state, or its tombstone). The event may be an older entry's of the same
// tuple: a SYN reopens a tuple whose entry is in TIME_WAIT or CLOSE by
// killing that entry (nf_conntrack_proto_tcp.c, nf_conntrack_tcp_packet),
// and the event can reach the daemon after the new flow's SYN started its
// state here. Dropping that state would reset the new flow. So, for a flow
// held, live (nil: not asked) reports whether conntrack holds an entry of
// the tuple now, which is a later flow's: the state stays. A flow whose SYN
// is unanswered may still wait for its verdict, its entry not yet confirmed
// and so not found: Forget says AskAgain, unless last.
func (e *Engine) Forget(k FlowKey, live func() bool, last bool) Forgetting {
	handshake := false
	held := e.streams.With(k, func(s *stream) bool { handshake = s.ackOut < 0; return false })
	if !held && !e.tombs.With(k, func(*tomb) bool { return false }) {
		return NotHeld
	}
	if live != nil {
		if live() {
			e.st.Inc(queue.SelReopened)
			return Kept
		}
		if held && handshake && !last {
			return AskAgain
		}
	}
	e.tombs.Delete(k)
	if !held || !e.streams.With(k, func(s *stream) bool { e.dropUpload(k, s); return true }) {
		return NotHeld
	}
	return Forgotten
}

// selectFor returns which method a new flow to dst:port gets: 'p' PROXY,
// 'h' HTTP fields, 0 none. PROXY wins when both match (the header must come
// first; HTTP fields behind it are not added).
func (e *Engine) selectFor(dst netip.Addr, port uint16) (byte, bool) {
	if e.cfg.Proxy {
		for _, s := range e.cfg.ProxySel {
			if s.match(dst, port) {
				return 'p', s.OnAck || e.cfg.ProxyCfg.OnAck
			}
		}
	}
	if e.cfg.HTTPHeader {
		for _, s := range e.cfg.HTTPSel {
			if s.match(dst, port) {
				return 'h', false
			}
		}
	}
	return 0, false
}

// Original handles a client->server TCP segment (IPv4, pre-NAT) for
// payload insertion: a SYN may select its flow; a later segment of a
// selected flow is translated. v is the verdict so far (other methods);
// buf[:pv.N], parsed as pv, is the packet (the view follows what other
// methods rewrote); mtu is the largest packet the output path takes (0:
// unknown).
func (e *Engine) Original(key FlowKey, id uint32, syn bool, pv *packet.View, buf []byte,
	m queue.Meta, mtu int, v queue.Verdict) queue.Verdict {
	if !key.Inside.Is4() || pv.Version != 4 {
		return v
	}
	cur, ip, tcp := pv.N, pv.IP4, pv.TCP
	if syn {
		kind, onAck := e.selectFor(key.Server, key.ServerPort)
		if kind == 0 || tcp.PayloadLen > 0 { // TCP Fast Open data: not selected
			return v
		}
		if e.lateSYN(key, tcp.Seq+1) {
			e.st.Inc(queue.SelUnknown)
			return v
		}
		text := IDText(id, e.cfg.IDBits, key.Inside, e.cfg.IDAddress)
		var s *stream
		switch kind {
		case 'h':
			s = newStream(tcp.Seq, HeaderBytes(e.cfg.HTTPFields, text, false), newHTTPParser(e.st))
		case 'p':
			hdr, err := BuildProxyHeader(e.cfg.ProxyCfg.Version, e.cfg.ProxyCfg.CRC32C,
				netip.AddrPortFrom(key.Inside, key.InsidePort), netip.AddrPortFrom(key.Server, key.ServerPort), text)
			if err != nil {
				e.st.Inc(queue.NotParsed)
				return v
			}
			s = newStream(tcp.Seq, hdr, &proxyParser{stats: e.st, replace: e.cfg.ProxyCfg.ReplaceClient})
			s.addInsert(0, onAck)
		}
		s.maxIns, s.started = len(s.hdr), e.now().Unix()
		if r := e.streams.start(key, s); r != started {
			// Fail closed: a flow that should be selected never passes
			// unrewritten (the client's own fields would reach the
			// server). The SYN is dropped; the client tries again.
			e.st.Inc(queue.SelFull)
			if r == fullHost {
				e.st.Inc(queue.SelHostFull)
			}
			return queue.Verdict{Drop: true}
		}
		e.st.Inc(queue.SelFlows)
		if kind == 'p' {
			e.st.Inc(queue.ProxyWritten)
		}
		return setMark(v, m, e.cfg.SelectBit)
	}
	res, nl := segPass, cur
	var after queue.AfterSend
	known := e.streams.With(key, func(s *stream) bool {
		res, nl = s.client(buf, cur, ip, tcp, mtu, e.st)
		if res != segDrop && !e.clientEdits(key, s) {
			res = segDrop
		}
		after = e.queued(key, s)
		if res == segDrop {
			return false
		}
		done := tcp.Flags&packet.FlagRST != 0 || s.clientAck(tcp)
		if done {
			e.st.Inc(queue.SelDone)
		}
		if done {
			e.dropUpload(key, s)
			e.bury(key, s.isn1, false) // before the state goes: no packet finds neither
		}
		return done
	})
	if !known {
		return e.orphanClient(key, ip, tcp, buf[:cur], m, v)
	}
	v.After = after
	switch res {
	case segDrop:
		return queue.Verdict{Drop: true, After: after}
	case segWritten, segReset, segProbe:
		v.Len = nl
	}
	return v
}

// Reply handles a server->client segment of a selected flow: the
// SYN-ACK's MSS is lowered by the largest insertion (so a client segment
// plus the insertion still fits the path: RFC 9293 §3.7.1, the MSS the
// client sends with is the one the SYN-ACK announces), and acknowledgement
// and SACK blocks are mapped back. ok is false when the flow is not
// selected (the caller goes on with the tracking path). The packet is
// buf[:pv.N], parsed as pv.
func (e *Engine) Reply(key FlowKey, pv *packet.View, buf []byte) (queue.Verdict, bool) {
	pkt, ip, tcp := buf[:pv.N], pv.IP4, pv.TCP
	var v queue.Verdict // a tracked flow's SYN-ACK (tcp-option) had its MSS lowered in the kernel already
	drop := false
	synack := tcp.Flags&(packet.FlagSYN|packet.FlagACK) == packet.FlagSYN|packet.FlagACK
	known := e.streams.With(key, func(s *stream) bool {
		if synack {
			if r := packet.LowerMSS(pv, pkt, uint16(s.maxIns)); r == packet.Written {
				e.st.Inc(queue.SelMSS)
				v.Len = len(pkt)
			}
			e.dropHelper(key, s)
		}
		v.After = e.queued(key, s)
		if drop = !e.serverFin(key, s, tcp.Flags&packet.FlagFIN != 0); drop {
			return false
		}
		if hp, ok := s.p.(*httpParser); ok && tcp.PayloadLen > 0 {
			hp.serverSaid(pkt[tcp.Off+tcp.HdrLen : ip.TotalLen])
		}
		changed, done := s.server(pkt, ip, tcp)
		if changed {
			v.Len = len(pkt)
		}
		e.serverSeen(s)
		if done {
			e.st.Inc(queue.SelDone)
		}
		if done {
			e.dropUpload(key, s)
			e.bury(key, s.isn1, false) // before the state goes: no packet finds neither
		}
		return done
	})
	if !known {
		return e.orphanServer(key, ip, tcp, pkt), true
	}
	if drop {
		return queue.Verdict{Drop: true, After: v.After}, true
	}
	return v, true
}

// setMark adds bit to the packet's mark, keeping the bits others set.
func setMark(v queue.Verdict, m queue.Meta, bit uint32) queue.Verdict {
	if !v.SetMark {
		v.Mark = m.Mark
	}
	v.SetMark, v.Mark = true, v.Mark|bit
	return v
}

// Selected reports whether a new flow to dst:port would be selected.
func (e *Engine) Selected(dst netip.Addr, port uint16) bool {
	m, _ := e.selectFor(dst, port)
	return m != 0
}
