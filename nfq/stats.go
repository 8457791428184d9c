package nfq

import (
	"encoding/json"
	"sync/atomic"

	"github.com/natreveal/natreveal/encoders"
)

// Reason names a counter: what happened to a queued packet.
type Reason uint8

const (
	Packets       Reason = iota // packets read from the queues
	Accepted                    // verdicts sent
	Modified                    // packets re-injected rewritten
	NotParsed                   // not IPv4/TCP or malformed: accepted unchanged
	NoHostID                    // the HOST_ID source had no identifier
	CtMiss                      // post-NAT: conntrack did not know the flow
	CtError                     // post-NAT: ctnetlink failed
	FlowsFull                   // flow table at its cap: SYN marked, not tracked
	FlowsTracked                // flows whose later segments were followed (RFC 7974 §4.2)
	TrackDone                   // tracking ended (data acknowledged or sent, FIN/RST, limit)
	Untracked                   // a tracked-rule packet without state (restart): tracking stopped
	MSSLowered                  // SYN-ACKs whose MSS was lowered for the option's room
	BacklogFull                 // workers busy: accepted unchanged at once
	Oversize                    // larger than a worker buffer: accepted unchanged
	VerdictErrors               // verdicts the kernel refused
	Refused                     // inside SYNs with malformed options, dropped (anti-spoofing)
	numReasons
)

var reasonNames = [numReasons]string{
	"packets", "accepted", "modified", "not-parsed", "no-host-id", "ct-miss", "ct-error",
	"flows-full", "flows-tracked", "track-done", "untracked", "mss-lowered",
	"backlog-full", "oversize", "verdict-errors", "refused-malformed",
}

func (r Reason) String() string { return reasonNames[r] }

// Stats counts what the queue path did. Safe for concurrent use.
type Stats struct {
	c      [numReasons]atomic.Uint64
	option [encoders.NumResults]atomic.Uint64 // tcp-option encoder results
	ipid   [encoders.NumResults]atomic.Uint64 // ip-id encoder results
}

func (s *Stats) inc(r Reason)                    { s.c[r].Add(1) }
func (s *Stats) Get(r Reason) uint64             { return s.c[r].Load() }
func (s *Stats) Option(r encoders.Result) uint64 { return s.option[r].Load() }
func (s *Stats) IPID(r encoders.Result) uint64   { return s.ipid[r].Load() }

// Snapshot returns the non-zero counters by name; encoder results appear as
// "tcp-option/<result>" and "ip-id/<result>".
func (s *Stats) Snapshot() map[string]uint64 {
	m := map[string]uint64{}
	for i := Reason(0); i < numReasons; i++ {
		if v := s.c[i].Load(); v != 0 {
			m[i.String()] = v
		}
	}
	for i := encoders.Result(0); i < encoders.NumResults; i++ {
		if v := s.option[i].Load(); v != 0 {
			m["tcp-option/"+i.String()] = v
		}
		if v := s.ipid[i].Load(); v != 0 {
			m["ip-id/"+i.String()] = v
		}
	}
	return m
}

// MarshalJSON renders Snapshot.
func (s *Stats) MarshalJSON() ([]byte, error) { return json.Marshal(s.Snapshot()) }
