package handler

import (
	"encoding/json"
	"sync/atomic"

	"github.com/natreveal/natreveal/method/all"
	"github.com/natreveal/natreveal/packet"
	"github.com/natreveal/natreveal/queue"
)

// maxMethods bounds the registry's length (method/all.List): Stats holds
// the step results of each method by its position there.
const maxMethods = 16

// maxEvents bounds a method's event counters (method.Events).
const maxEvents = 8

// Reason names a counter (queue.Reason).
type Reason = queue.Reason

// The counters, as the queue names them.
const (
	Packets             = queue.Packets
	Accepted            = queue.Accepted
	Modified            = queue.Modified
	NotParsed           = queue.NotParsed
	NoHostID            = queue.NoHostID
	CtMiss              = queue.CtMiss
	CtError             = queue.CtError
	FlowsFull           = queue.FlowsFull
	FlowsTracked        = queue.FlowsTracked
	TrackDone           = queue.TrackDone
	Untracked           = queue.Untracked
	MSSLowered          = queue.MSSLowered
	BacklogFull         = queue.BacklogFull
	Oversize            = queue.Oversize
	VerdictErrors       = queue.VerdictErrors
	Refused             = queue.Refused
	FlowsEvicted        = queue.FlowsEvicted
	SelFlows            = queue.SelFlows
	SelFull             = queue.SelFull
	SelDone             = queue.SelDone
	SelUnknown          = queue.SelUnknown
	SelOutOfOrder       = queue.SelOutOfOrder
	SelHeld             = queue.SelHeld
	SelCutMTU           = queue.SelCutMTU
	SelMSS              = queue.SelMSS
	HTTPRequests        = queue.HTTPRequests
	HTTPForged          = queue.HTTPForged
	HTTPNonHTTP         = queue.HTTPNonHTTP
	HTTPTLS             = queue.HTTPTLS
	ProxyWritten        = queue.ProxyWritten
	ProxyForgedReset    = queue.ProxyForgedReset
	ProxyForgedReplaced = queue.ProxyForgedReplaced
	GSOPackets          = queue.GSOPackets
	GSOPassed           = queue.GSOPassed
	SelKernel           = queue.SelKernel
	SelKernelFailed     = queue.SelKernelFailed
	SelKernelAcks       = queue.SelKernelAcks
	SelReset            = queue.SelReset
	SelUserAcks         = queue.SelUserAcks
	SelUploads          = queue.SelUploads
	SelUploadFailed     = queue.SelUploadFailed
	SelReopened         = queue.SelReopened
	SelSwept            = queue.SelSwept
	TablesRestored      = queue.TablesRestored
	numReasons          = queue.NumReasons
)

// Stats counts what the queue path did. Safe for concurrent use.
type Stats struct {
	queue.Counters
	// results counts the methods' packet steps' results, by registry
	// position (method/all).
	results [maxMethods][packet.NumResults]atomic.Uint64
	// events counts the methods' events (method.Events), by registry
	// position and the event's index in its method's names.
	events [maxMethods][maxEvents]atomic.Uint64
	// What the ruleset did without the daemon (rules.Counters): tracked
	// TCP flows it ended, SYN-ACK MSS values it lowered. Totals the daemon
	// stores (SetRuleset); Get adds them to TrackDone and MSSLowered.
	ruleDone, ruleMSS atomic.Uint64
}

func (s *Stats) inc(r Reason) { s.Inc(r) }

// Get returns counter r, with the ruleset's part for TrackDone and
// MSSLowered.
func (s *Stats) Get(r Reason) uint64 {
	v := s.Load(r)
	switch r {
	case TrackDone:
		v += s.ruleDone.Load()
	case MSSLowered:
		v += s.ruleMSS.Load()
	}
	return v
}

// SetRuleset stores the ruleset's totals: tracked flows the steer chain
// ended and SYN-ACKs whose MSS the mss chain lowered (rules.Spec.Track).
func (s *Stats) SetRuleset(done, mss uint64) {
	// They only grow: a table deleted under the daemon reads as 0 until
	// it is back (cmd/natreveal keep.go), and a total must not go down.
	storeMax(&s.ruleDone, done)
	storeMax(&s.ruleMSS, mss)
}

func storeMax(a *atomic.Uint64, v uint64) {
	for o := a.Load(); v > o && !a.CompareAndSwap(o, v); o = a.Load() {
	}
}

// Ruleset returns the totals SetRuleset stored.
func (s *Stats) Ruleset() (done, mss uint64) { return s.ruleDone.Load(), s.ruleMSS.Load() }

// Result returns encoder result r of the method named method (its counter
// label in the registry, method/all); 0 for a method without encoder results.
func (s *Stats) Result(method string, r packet.Result) uint64 {
	for i, m := range all.List {
		if m.Name == method && m.Counters != nil && r < packet.NumResults {
			return s.results[i][r].Load()
		}
	}
	return 0
}

// Events returns the event counters of the method named method
// (method.Events), one per name in its order, where the parts of the
// method count them; nil for a method without events. The counters live
// as long as s.
func (s *Stats) Events(method string) []atomic.Uint64 {
	for i, m := range all.List {
		if m.Name == method && len(m.Events.Names) > 0 {
			return s.events[i][:len(m.Events.Names)]
		}
	}
	return nil
}

// Event returns the event counter name of the method named method; 0 for
// one the method does not declare.
func (s *Stats) Event(method, name string) uint64 {
	for i, m := range all.List {
		if m.Name != method {
			continue
		}
		for j, n := range m.Events.Names {
			if n == name && j < maxEvents {
				return s.events[i][j].Load()
			}
		}
	}
	return 0
}

// Snapshot returns the non-zero counters by name; the results of a
// method's packet step appear as "<method>/<result>" (tcp-option/written),
// its events as "<prefix>/<event>" (ip-id-kernel/learned).
func (s *Stats) Snapshot() map[string]uint64 {
	m := map[string]uint64{}
	for i := Reason(0); i < numReasons; i++ {
		if v := s.Get(i); v != 0 {
			m[i.String()] = v
		}
	}
	for i, mt := range all.List {
		if mt.Counters == nil {
			continue
		}
		for r := packet.Result(0); r < packet.NumResults; r++ {
			if v := s.results[i][r].Load(); v != 0 {
				m[mt.Name+"/"+r.String()] = v
			}
		}
	}
	for i, mt := range all.List {
		for j, name := range mt.Events.Names {
			if v := s.events[i][j].Load(); v != 0 {
				m[mt.Events.Prefix+"/"+name] = v
			}
		}
	}
	return m
}

// MarshalJSON renders Snapshot.
func (s *Stats) MarshalJSON() ([]byte, error) { return json.Marshal(s.Snapshot()) }
