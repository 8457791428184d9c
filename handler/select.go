package handler

import (
	"net/netip"
	"time"

	"github.com/natreveal/natreveal/method"
	"github.com/natreveal/natreveal/stream"
)

// The selected flows' settings, as package stream names them.
type (
	Selector    = stream.Selector
	HTTPFields  = stream.HTTPFields
	ProxyConfig = stream.ProxyConfig
	SeqAdjuster = stream.SeqAdjuster
	UploadSet   = stream.UploadSet
)

// Selects reports whether some flows are selected for payload insertion
// (http-header, proxy-protocol; stream.Config.Selects).
func (c HandlerConfig) Selects() bool { return c.Stream.Selects() }

// SetSeqAdj makes h hand selected flows to the kernel through a
// (stream.Engine.SetSeqAdj); pre-NAT placement only: the flow's original
// tuple is what the packets show.
func (h *Handler) SetSeqAdj(a SeqAdjuster) {
	if !h.cfg.PostNAT && h.sel != nil {
		h.sel.SetSeqAdj(a)
	}
}

// SetUploads makes h let request bodies of http-header flows skip the
// queue through u (stream.Engine.SetUploads), with SetSeqAdj; pre-NAT only.
func (h *Handler) SetUploads(u UploadSet) {
	if !h.cfg.PostNAT && h.sel != nil {
		h.sel.SetUploads(u)
	}
}

// KeepStreams makes h continue the selected flows of old (a reload): their
// translation state must outlive the handler, or their packets would go on
// untranslated. Nothing changes when either does not select flows.
func (h *Handler) KeepStreams(old *Handler) { h.sel.Keep(old.sel) }

// WantsGSO reports whether the queues should take GSO packets whole
// (QueueConfig.GSO): when flows are selected (every packet of a bulk
// transfer is queued) and no method writes something into every TCP packet
// that must differ per segment (ip-id in scope new or all: the kernel
// numbers the IP-IDs of a super-packet's segments up from the first).
func (c HandlerConfig) WantsGSO() bool {
	if !c.Selects() {
		return false
	}
	for _, s := range c.Steps {
		if p, ok := s.(method.PerSegment); ok && p.PerSegment() {
			return false
		}
	}
	return true
}

// Selects reports whether the payload methods select flows to dst.
func (h *Handler) Selects(dst netip.AddrPort) bool {
	return h.sel != nil && h.sel.Selected(dst.Addr().Unmap(), dst.Port())
}

// SweepSelected frees the selected flows whose end natreveal never saw
// (stream.Engine.Sweep); held says whether conntrack holds a flow's tuple.
// It returns how many it freed.
func (h *Handler) SweepSelected(age time.Duration, held func(FlowKey) bool) int {
	if h.sel == nil {
		return 0
	}
	return h.sel.Sweep(age, held)
}
