package handler

import (
	"net/netip"

	"github.com/natreveal/natreveal/encoders"
)

// Selects reports whether some flows are selected for payload insertion
// (http-header, proxy-protocol): their SYN verdict sets SelectBit, which the
// remember chain copies into the ct mark, and the steer chain then queues
// every packet of those flows in both directions.
func (c HandlerConfig) Selects() bool { return c.HTTPHeader || c.Proxy }

// selectFor returns which method a new flow to dst:port gets: 'p' PROXY,
// 'h' HTTP fields, 0 none. PROXY wins when both match (the header must come
// first; HTTP fields behind it are not added).
func (h *Handler) selectFor(dst netip.Addr, port uint16) (byte, bool) {
	if h.cfg.Proxy {
		for _, s := range h.cfg.ProxySel {
			if s.match(dst, port) {
				return 'p', s.OnAck || h.cfg.ProxyCfg.OnAck
			}
		}
	}
	if h.cfg.HTTPHeader {
		for _, s := range h.cfg.HTTPSel {
			if s.match(dst, port) {
				return 'h', false
			}
		}
	}
	return 0, false
}

// selOriginal handles a client->server TCP segment (IPv4, pre-NAT) for
// payload insertion: a SYN may select its flow; a later segment of a
// selected flow is translated. v is the verdict so far (other methods);
// buf[:v.Len] (or buf[:n], parsed as ip/tcp) is the packet.
func (h *Handler) selOriginal(key FlowKey, id uint32, syn bool, ip encoders.IPv4, tcp encoders.TCP, buf []byte, n int, m Meta, v Verdict) Verdict {
	if !key.Inside.Is4() {
		return v
	}
	cur := n
	if v.Len > 0 {
		// Another method rewrote the packet: its headers moved.
		cur = v.Len
		var r encoders.Result
		if ip, tcp, r = encoders.ParseIPv4TCP(buf[:cur]); r != encoders.Unchanged {
			return v
		}
	}
	if syn {
		kind, onAck := h.selectFor(key.Server, key.ServerPort)
		if kind == 0 || tcp.PayloadLen > 0 { // TCP Fast Open data: not selected
			return v
		}
		text := IDText(id, h.cfg.IDBits, key.Inside, h.cfg.IDAddress)
		var s *stream
		switch kind {
		case 'h':
			s = newStream(tcp.Seq, httpHeaderBytes(h.cfg.HTTPFields, text, false), newHTTPParser(h.stats))
		case 'p':
			hdr, err := BuildProxyHeader(h.cfg.ProxyCfg.Version, h.cfg.ProxyCfg.CRC32C,
				netip.AddrPortFrom(key.Inside, key.InsidePort), netip.AddrPortFrom(key.Server, key.ServerPort), text)
			if err != nil {
				h.stats.inc(NotParsed)
				return v
			}
			s = newStream(tcp.Seq, hdr, &proxyParser{stats: h.stats, replace: h.cfg.ProxyCfg.ReplaceClient})
			s.addInsert(0, onAck)
		}
		s.maxIns = len(s.hdr)
		if !h.streams.start(key, s) {
			h.stats.inc(SelFull)
			return v
		}
		h.stats.inc(SelFlows)
		if kind == 'p' {
			h.stats.inc(ProxyWritten)
		}
		return h.setMark(v, m, h.cfg.SelectBit)
	}
	res, nl := segPass, cur
	var after AfterSend
	known := h.streams.with(key, func(s *stream) bool {
		res, nl = s.client(buf, cur, ip, tcp, h.outMTU(m), h.stats)
		if res != segDrop && !h.clientEdits(key, s) {
			res = segDrop
		}
		after = h.queued(key, s)
		if res == segDrop {
			return false
		}
		done := tcp.Flags&encoders.FlagRST != 0 || s.clientAck(tcp)
		if done {
			h.stats.inc(SelDone)
		}
		return done
	})
	if !known {
		h.stats.inc(SelUnknown)
		return v
	}
	v.After = after
	switch res {
	case segDrop:
		return Verdict{Drop: true, After: after}
	case segWritten, segReset:
		v.Len = nl
	}
	return v
}

// selReply handles a server->client segment of a selected flow: the
// SYN-ACK's MSS is lowered by the largest insertion (so a client segment
// plus the insertion still fits the path: RFC 9293 §3.7.1, the MSS the
// client sends with is the one the SYN-ACK announces), and acknowledgement
// and SACK blocks are mapped back. ok is false when the flow is not
// selected (the caller goes on with the tracking path).
func (h *Handler) selReply(key FlowKey, ip encoders.IPv4, tcp encoders.TCP, pkt []byte, m Meta) (Verdict, bool) {
	if h.streams == nil {
		return Verdict{}, false
	}
	var v Verdict // a tracked flow's SYN-ACK (tcp-option) had its MSS lowered in the kernel already
	synack := tcp.Flags&(encoders.FlagSYN|encoders.FlagACK) == encoders.FlagSYN|encoders.FlagACK
	known := h.streams.with(key, func(s *stream) bool {
		if synack {
			if r := encoders.LowerMSS(pkt, uint16(s.maxIns)); r == encoders.Written {
				h.stats.inc(SelMSS)
				v.Len = len(pkt)
			}
			h.dropHelper(key, s)
		}
		v.After = h.queued(key, s)
		changed, done := s.server(pkt, ip, tcp)
		if changed {
			v.Len = len(pkt)
		}
		h.serverSeen(s)
		if done {
			h.stats.inc(SelDone)
		}
		return done
	})
	if !known {
		h.stats.inc(SelUnknown) // a selected flow whose state ended: nothing to map
		return Verdict{}, true
	}
	return h.modified(v), true
}

// KeepStreams makes h continue the selected flows of old (a reload): their
// translation state must outlive the handler, or their packets would go on
// untranslated. Nothing changes when either does not select flows.
func (h *Handler) KeepStreams(old *Handler) {
	if h.streams != nil && old.streams != nil {
		h.streams = old.streams
	}
}

// WantsGSO reports whether the queues should take GSO packets whole
// (QueueConfig.GSO): when flows are selected (every packet of a bulk
// transfer is queued) and no method writes something into every TCP packet
// that must differ per segment (ip-id in scope new or all: the kernel
// numbers the IP-IDs of a super-packet's segments up from the first).
func (c HandlerConfig) WantsGSO() bool {
	return c.Selects() && !(c.IPID && c.IPIDScope != "syn")
}
