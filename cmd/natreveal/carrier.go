package main

import (
	"context"
	"log/slog"

	"github.com/natreveal/natreveal/conntrack"
	"github.com/natreveal/natreveal/handler"
)

// carrierWatch takes the seqadj carrier helper (rules.Spec.SeqAdjHelper,
// the kernel's ftp helper) off selected flows that conntrack reports new
// with a reply already seen: entries made over ctnetlink, such as those
// conntrackd commits on an HA backup's takeover. Its cache keeps the helper
// name of the flow's first event, though the daemon that saw the SYN took
// the helper off on the SYN-ACK (stream/handoff.go); committed, the flow
// would have the FTP helper read its data (docs/ha.md).
type carrierWatch struct {
	helper  string
	cc      handler.SeqAdjuster // the handoff's ctnetlink socket
	handler func() *handler.Handler
	log     *slog.Logger
}

// watchCarrier starts the watch until ctx ends.
func watchCarrier(ctx context.Context, helper string, cc handler.SeqAdjuster, h func() *handler.Handler, log *slog.Logger) (*carrierWatch, error) {
	w := &carrierWatch{helper: helper, cc: cc, handler: h, log: log}
	if err := conntrack.WatchNew(ctx, w.created); err != nil {
		return nil, err
	}
	return w, nil
}

// created handles one new event.
func (w *carrierWatch) created(e conntrack.Created) {
	if !w.carries(e) {
		return
	}
	if err := w.cc.DropHelper(e.OrigSrc, e.OrigDst); err != nil {
		w.log.Warn("seqadj carrier: a committed flow keeps its helper", "src", e.OrigSrc, "dst", e.OrigDst, "err", err)
	}
}

// carries reports whether e is a selected flow made with the carrier
// helper attached and a reply already seen. A flow's own first packet
// makes it without a reply; the SYN-ACK's handling takes the helper off.
func (w *carrierWatch) carries(e conntrack.Created) bool {
	if e.Proto != 6 || !e.SeenReply || e.Helper != w.helper {
		return false
	}
	h := w.handler()
	return h != nil && h.Selects(e.OrigDst)
}
