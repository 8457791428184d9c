// Package mapping merges the RFC 6888 §4 mapping logs of several NAT nodes
// (an HA pair whose conntrack table conntrackd copies, or several active
// NATs) into one history of bindings, and answers the question a log exists
// for: which inside host held public address:port at time t.
//
// Each log is what `natreveal run` writes with mapping_log.file: one JSON
// object per line, a "new" when the kernel confirms a translated flow and a
// "destroy" when it ends. Merged by time, a flow that moved to the backup
// (conntrackd commits it there, so the backup logs a "new" for it) stays one
// binding; its first node may never log the "destroy" (it was killed), so a
// binding belongs to the node that logged its latest "new", and only that
// node's "destroy" ends it (a former owner's destroy is its stale copy
// expiring).
package mapping

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"sort"
	"time"
)

// Record is one line of a mapping log (RFC 6888 §4), as natreveal run writes
// it (conntrack.MappingRecord) and the merge reads it.
type Record struct {
	Time       time.Time `json:"time"`
	Event      string    `json:"event"` // "new" or "destroy"
	Proto      string    `json:"proto"`
	Inside     string    `json:"inside"`
	InsidePort uint16    `json:"inside_port"`
	HostID     string    `json:"host_id,omitempty"`
	Public     string    `json:"public"`
	PublicPort uint16    `json:"public_port"`
	Dst        string    `json:"dst,omitempty"`
	Node       string    `json:"-"` // the log it came from
}

// LineError is a line of a mapping log that is not a record: the file is
// not a mapping log, or a damaged one.
type LineError struct {
	Node string // the log
	Line int    // from 1
	Err  error
}

func (e *LineError) Error() string {
	return fmt.Sprintf("mapping log %s line %d: %v", e.Node, e.Line, e.Err)
}

func (e *LineError) Unwrap() error { return e.Err }

// Read parses a mapping log; node names it in the bindings. A line that is
// not a record is a *LineError; a failed read any other error.
func Read(r io.Reader, node string) ([]Record, error) {
	var out []Record
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	n := 1
	for ; sc.Scan(); n++ {
		if len(sc.Bytes()) == 0 {
			continue
		}
		var rec Record
		if err := json.Unmarshal(sc.Bytes(), &rec); err != nil {
			return nil, &LineError{node, n, err}
		}
		if rec.Event != "new" && rec.Event != "destroy" {
			return nil, &LineError{node, n, fmt.Errorf("event %q is not new or destroy", rec.Event)}
		}
		if _, err := netip.ParseAddr(rec.Public); err != nil {
			return nil, &LineError{node, n, fmt.Errorf("public: %w", err)}
		}
		rec.Node = node
		out = append(out, rec)
	}
	switch err := sc.Err(); {
	case errors.Is(err, bufio.ErrTooLong):
		return nil, &LineError{node, n, err}
	case err != nil:
		return nil, fmt.Errorf("mapping log %s: %w", node, err)
	}
	return out, nil
}

// Binding is one flow's translation, merged over the nodes that carried it:
// the inside host held Public:PublicPort from Start until End (zero: still
// open when the logs end).
type Binding struct {
	Proto      string    `json:"proto"`
	Inside     string    `json:"inside"`
	InsidePort uint16    `json:"inside_port"`
	HostID     string    `json:"host_id,omitempty"`
	Public     string    `json:"public"`
	PublicPort uint16    `json:"public_port"`
	Dst        string    `json:"dst,omitempty"`
	Start      time.Time `json:"start"`
	End        time.Time `json:"end,omitzero"`
	Nodes      []string  `json:"nodes"` // in the order they took the flow
	owner      string
}

// flowKey names one translated flow across nodes: the same inside and
// public endpoints (and destination, when logged).
type flowKey struct {
	proto, inside, public, dst string
	insidePort, publicPort     uint16
}

func keyOf(r Record) flowKey {
	return flowKey{r.Proto, r.Inside, r.Public, r.Dst, r.InsidePort, r.PublicPort}
}

// Merge merges the records of any number of logs by time into bindings,
// ordered by start. A "new" for a flow already open (another node took it
// over) moves the binding to that node; a "destroy" ends it only from its
// current owner. A "destroy" with no "new" before it (the log began
// mid-flow) gives a binding with a zero Start.
func Merge(logs ...[]Record) []Binding {
	var all []Record
	for _, l := range logs {
		all = append(all, l...)
	}
	sort.SliceStable(all, func(i, j int) bool { return all[i].Time.Before(all[j].Time) })
	var out []Binding
	open := map[flowKey]int{} // index into out
	for _, r := range all {
		k := keyOf(r)
		i, ok := open[k]
		switch {
		case r.Event == "new" && ok:
			b := &out[i]
			if b.owner != r.Node {
				b.Nodes = append(b.Nodes, r.Node)
				b.owner = r.Node
			}
			if b.HostID == "" {
				b.HostID = r.HostID
			}
		case r.Event == "new":
			open[k] = len(out)
			out = append(out, binding(r, r.Time))
		case ok && out[i].owner == r.Node:
			out[i].End = r.Time
			delete(open, k)
		case ok:
			// A former owner's copy expiring: the flow lives on.
		default:
			b := binding(r, time.Time{})
			b.End = r.Time
			out = append(out, b)
		}
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].Start.Before(out[j].Start) })
	return out
}

func binding(r Record, start time.Time) Binding {
	return Binding{Proto: r.Proto, Inside: r.Inside, InsidePort: r.InsidePort, HostID: r.HostID,
		Public: r.Public, PublicPort: r.PublicPort, Dst: r.Dst, Start: start,
		Nodes: []string{r.Node}, owner: r.Node}
}

// Covers reports whether b held its public port at t: Start <= t and, if
// it ended, t <= End.
func (b Binding) Covers(t time.Time) bool {
	return !t.Before(b.Start) && (b.End.IsZero() || !t.After(b.End))
}

// Open reports whether b has no end in the logs (no "destroy" record from
// its owner): Covers then holds for any time after Start, though the host
// may have released the port when the log stopped.
func (b Binding) Open() bool { return b.End.IsZero() }

// Last is the time of the latest record of logs (zero when there is none):
// a lookup after it answers from bindings the logs saw still open.
func Last(logs ...[]Record) time.Time {
	var t time.Time
	for _, l := range logs {
		for _, r := range l {
			if r.Time.After(t) {
				t = r.Time
			}
		}
	}
	return t
}

// Lookup returns the bindings of proto on public at time t. Without the
// destination in the logs (RFC 6888 §4 advises leaving it out) the kernel
// may give one public port to flows of several inside hosts towards
// different destinations at the same time; the answer is then several
// bindings, and Hosts tells whether they name one host.
func Lookup(bs []Binding, proto string, public netip.AddrPort, t time.Time) []Binding {
	var out []Binding
	for _, b := range bs {
		if b.Proto == proto && b.PublicPort == public.Port() && b.Covers(t) {
			if a, err := netip.ParseAddr(b.Public); err == nil && a == public.Addr() {
				out = append(out, b)
			}
		}
	}
	return out
}

// Hosts lists the distinct inside hosts of bs, in order.
func Hosts(bs []Binding) []string {
	var out []string
	seen := map[string]bool{}
	for _, b := range bs {
		if !seen[b.Inside] {
			seen[b.Inside] = true
			out = append(out, b.Inside)
		}
	}
	return out
}
