package conntrack

import (
	"context"
	"encoding/json"
	"io"
	"net/netip"
	"strconv"
	"sync"
	"time"

	ct "github.com/ti-mo/conntrack"
	"github.com/ti-mo/netfilter"

	"github.com/natreveal/natreveal/mapping"
)

// Mapping is one NAT binding seen in a conntrack event: a flow whose source
// the NAT translated, as it was created ("new") or removed ("destroy").
type Mapping struct {
	Time   time.Time
	Event  string // "new" or "destroy"
	Proto  uint8
	Inside netip.AddrPort // original source
	Public netip.AddrPort // source after NAT (the reply tuple's destination)
	Dst    netip.AddrPort // original destination
}

// WatchMappings calls fn for every new and destroy event of a flow whose
// source address or port was translated, until ctx ends. Like WatchDestroy
// it opens its own ctnetlink socket in network namespace netns (0: current)
// and events lost to a full socket buffer are dropped (NoENOBUFS).
//
// A "new" event comes when the kernel confirms the flow, after its first
// packet went through source NAT, so the public address and port are final.
func WatchMappings(ctx context.Context, netns int, fn func(Mapping)) error {
	groups := []netfilter.NetlinkGroup{netfilter.GroupCTNew, netfilter.GroupCTDestroy}
	return listenEvents(ctx, netns, 4<<20, groups, func(ev ct.Event) {
		var kind string
		switch ev.Type {
		case ct.EventNew:
			kind = "new"
		case ct.EventDestroy:
			kind = "destroy"
		default:
			return
		}
		if m, ok := mappingOf(ev.Flow, kind, time.Now()); ok {
			fn(m)
		}
	})
}

// mappingOf turns a flow into a Mapping; ok is false when its source was not
// translated.
func mappingOf(f *ct.Flow, kind string, now time.Time) (Mapping, bool) {
	m := Mapping{
		Time:   now,
		Event:  kind,
		Proto:  f.TupleOrig.Proto.Protocol,
		Inside: netip.AddrPortFrom(f.TupleOrig.IP.SourceAddress.Unmap(), f.TupleOrig.Proto.SourcePort),
		Public: netip.AddrPortFrom(f.TupleReply.IP.DestinationAddress.Unmap(), f.TupleReply.Proto.DestinationPort),
		Dst:    netip.AddrPortFrom(f.TupleOrig.IP.DestinationAddress.Unmap(), f.TupleOrig.Proto.DestinationPort),
	}
	if !m.Inside.Addr().IsValid() || m.Inside == m.Public {
		return Mapping{}, false
	}
	return m, true
}

// MappingRecord is one line of the mapping log (RFC 6888 §4: what a CGN logs
// to identify a subscriber: protocol, inside address, public address and
// port, time). The destination is left out unless asked for: RFC 6888 §4
// notes that logging destinations is a privacy concern and not needed to
// identify the subscriber.
type MappingRecord = mapping.Record

// ProtoName is the name of an IP protocol number for logs.
func ProtoName(p uint8) string {
	switch p {
	case 1:
		return "icmp"
	case 6:
		return "tcp"
	case 17:
		return "udp"
	case 58:
		return "ipv6-icmp"
	case 132:
		return "sctp"
	}
	return strconv.Itoa(int(p))
}

// Record builds the log line of m; hostID is "" when there is none.
func (m Mapping) Record(hostID string, withDst bool) MappingRecord {
	r := MappingRecord{
		Time:       m.Time.UTC(),
		Event:      m.Event,
		Proto:      ProtoName(m.Proto),
		Inside:     m.Inside.Addr().String(),
		InsidePort: m.Inside.Port(),
		HostID:     hostID,
		Public:     m.Public.Addr().String(),
		PublicPort: m.Public.Port(),
	}
	if withDst {
		r.Dst = m.Dst.String()
	}
	return r
}

// MappingWriter writes records as JSON lines, one Write per line, safe for
// concurrent use.
type MappingWriter struct {
	mu sync.Mutex
	w  io.Writer
}

// NewMappingWriter writes to w.
func NewMappingWriter(w io.Writer) *MappingWriter { return &MappingWriter{w: w} }

// Write writes one record.
func (mw *MappingWriter) Write(r MappingRecord) error {
	b, err := json.Marshal(r)
	if err != nil {
		return err
	}
	b = append(b, '\n')
	mw.mu.Lock()
	defer mw.mu.Unlock()
	_, err = mw.w.Write(b)
	return err
}
