package nfq

import (
	"encoding/json"
	"sync/atomic"

	"github.com/natreveal/natreveal/encoders"
)

// Reason names a counter: what happened to a queued packet.
type Reason uint8

const (
	Packets             Reason = iota // packets read from the queues
	Accepted                          // verdicts sent
	Modified                          // packets re-injected rewritten
	NotParsed                         // not IPv4/IPv6 TCP/UDP or malformed: accepted unchanged
	NoHostID                          // the HOST_ID source had no identifier
	CtMiss                            // post-NAT: conntrack did not know the flow
	CtError                           // post-NAT: ctnetlink failed
	FlowsFull                         // flow table at its cap: SYN marked, not tracked
	FlowsTracked                      // flows whose later segments were followed (RFC 7974 §4.2)
	TrackDone                         // tracking ended: UDP flows here, TCP flows in the ruleset (SetRuleset)
	Untracked                         // a server's TCP segment outside selected flows (the ruleset queues none): unchanged
	MSSLowered                        // SYN-ACKs whose MSS was lowered for the option's room (in the ruleset: SetRuleset)
	BacklogFull                       // workers busy: accepted unchanged at once
	Oversize                          // larger than a worker buffer: accepted unchanged
	VerdictErrors                     // verdicts the kernel refused
	Refused                           // inside SYNs with malformed options, dropped (anti-spoofing)
	FlowsEvicted                      // followed flows forgotten on a conntrack destroy event
	SelFlows                          // flows selected for payload insertion (http-header, proxy-protocol)
	SelFull                           // selected-flow table at its cap: SYN passed, flow not selected
	SelDone                           // selected flows whose state ended (both FINs acknowledged, RST)
	SelUnknown                        // packets of a selected flow without state (restart, ended): unchanged
	SelOutOfOrder                     // client segments past a gap the parser must see first: dropped
	SelHeld                           // client segments cut before an undecided header line
	SelCutMTU                         // client segments cut before an insertion that would outgrow the path
	SelMSS                            // SYN-ACKs of selected flows whose MSS was lowered
	HTTPRequests                      // HTTP/1.x requests that got the HOST_ID fields
	HTTPForged                        // X-Forwarded-For / Forwarded fields of clients removed
	HTTPNonHTTP                       // selected flows (or their rest) that were not HTTP/1.x: unchanged
	HTTPTLS                           // selected http-header flows that started a TLS handshake: unchanged
	ProxyWritten                      // PROXY headers inserted
	ProxyForgedReset                  // connections reset for a client's own PROXY header
	ProxyForgedReplaced               // client PROXY headers replaced by natreveal's
	GSOPackets                        // GSO super-packets queued whole (QueueConfig.GSO)
	GSOPassed                         // non-TCP GSO super-packets: accepted unchanged
	SelKernel                         // selected flows handed to conntrack's sequence adjustment, state dropped (handoff.go)
	SelKernelFailed                   // ctnetlink failures of the handoff (the flow stays in user space)
	SelKernelAcks                     // http-header flows whose server segments went to the kernel's sequence adjustment (kernelack.go)
	SelUserAcks                       // ... and came back to the queue for a new edit
	numReasons
)

var reasonNames = [numReasons]string{
	"packets", "accepted", "modified", "not-parsed", "no-host-id", "ct-miss", "ct-error",
	"flows-full", "flows-tracked", "track-done", "untracked", "mss-lowered",
	"backlog-full", "oversize", "verdict-errors", "refused-malformed", "flows-evicted",
	"select-flows", "select-full", "select-done", "select-unknown", "select-out-of-order",
	"select-held", "select-cut-mtu", "select-mss-lowered", "http-requests", "http-forged-removed",
	"http-non-http", "http-tls", "proxy-written", "proxy-forged-reset", "proxy-forged-replaced",
	"gso-packets", "gso-passed", "select-kernel", "select-kernel-failed",
	"select-kernel-acks", "select-user-acks",
}

func (r Reason) String() string { return reasonNames[r] }

// Stats counts what the queue path did. Safe for concurrent use.
type Stats struct {
	c      [numReasons]atomic.Uint64
	option [encoders.NumResults]atomic.Uint64 // tcp-option encoder results
	ipid   [encoders.NumResults]atomic.Uint64 // ip-id encoder results
	ipopt  [encoders.NumResults]atomic.Uint64 // ip-option encoder results
	dstopt [encoders.NumResults]atomic.Uint64 // dest-opt encoder results
	kern   kernStats                          // in-kernel ip-id path (ipidkernel.go)
	// What the ruleset did without the daemon (rules.Counters): tracked
	// TCP flows it ended, SYN-ACK MSS values it lowered. Totals the daemon
	// stores (SetRuleset); Get adds them to TrackDone and MSSLowered.
	ruleDone, ruleMSS atomic.Uint64
	live              atomic.Pointer[liveness] // Serve's loops while it runs (Stuck)
}

func (s *Stats) inc(r Reason) { s.c[r].Add(1) }

// Get returns counter r, with the ruleset's part for TrackDone and
// MSSLowered.
func (s *Stats) Get(r Reason) uint64 {
	v := s.c[r].Load()
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
	s.ruleDone.Store(done)
	s.ruleMSS.Store(mss)
}

// Ruleset returns the totals SetRuleset stored.
func (s *Stats) Ruleset() (done, mss uint64)     { return s.ruleDone.Load(), s.ruleMSS.Load() }
func (s *Stats) Option(r encoders.Result) uint64 { return s.option[r].Load() }
func (s *Stats) IPID(r encoders.Result) uint64   { return s.ipid[r].Load() }
func (s *Stats) IPOpt(r encoders.Result) uint64  { return s.ipopt[r].Load() }
func (s *Stats) DestOpt(r encoders.Result) uint64 {
	return s.dstopt[r].Load()
}

// Snapshot returns the non-zero counters by name; encoder results appear as
// "tcp-option/<result>", "ip-id/<result>", "ip-option/<result>" and
// "dest-opt/<result>".
func (s *Stats) Snapshot() map[string]uint64 {
	m := map[string]uint64{}
	for i := Reason(0); i < numReasons; i++ {
		if v := s.Get(i); v != 0 {
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
		if v := s.ipopt[i].Load(); v != 0 {
			m["ip-option/"+i.String()] = v
		}
		if v := s.dstopt[i].Load(); v != 0 {
			m["dest-opt/"+i.String()] = v
		}
	}
	s.kern.snapshot(m)
	return m
}

// MarshalJSON renders Snapshot.
func (s *Stats) MarshalJSON() ([]byte, error) { return json.Marshal(s.Snapshot()) }
