package queue

import "sync/atomic"

// Reason names a counter: what happened to a queued packet. The queue
// counts Packets, Accepted, BacklogFull, BacklogDropped, Oversize, VerdictErrors,
// GSOPackets and GSOPassed itself; the rest are the packet path's.
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
	SelFull                           // selected-flow table (or the host's share) at its cap: SYN dropped, fail closed
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
	GSOPackets                        // GSO super-packets queued whole (Config.GSO)
	GSOPassed                         // non-TCP GSO super-packets: accepted unchanged
	SelKernel                         // selected flows handed to conntrack's sequence adjustment, state dropped
	SelKernelFailed                   // ctnetlink failures of the handoff (the flow stays in user space)
	SelKernelAcks                     // http-header flows whose server segments went to the kernel's sequence adjustment
	SelUserAcks                       // ... and came back to the queue for a new edit
	SelReset                          // selected flows found without state (restart, failover): reset, never passed untranslated
	BacklogDropped                    // backlog full with fail_open false: dropped, not accepted unmarked
	SelHostFull                       // ... of them, the inside host at its share (flows.max/8): dropped, not passed unrewritten
	HTTPRefused                       // HTTP/1.x requests whose framing a lenient server could read differently: reset (RFC 9112)
	ProxyBadHeader                    // client PROXY headers too long or malformed to remove in replace mode: reset
	SelUploads                        // request bodies whose client segments skipped the queue (the uploads set)
	SelUploadFailed                   // uploads set elements that could not be added (the body stays queued) or removed
	SelSwept                          // selected flows (and handed-off tombstones) freed by the age sweep: conntrack no longer held them, their destroy event was lost
	SelReopened                       // destroy events of an older conntrack entry of a selected flow's tuple (a SYN reopened it): the state of the flow there now kept
	TablesRestored                    // natreveal's tables put back after something else deleted them (a firewall reload)
	NumReasons
)

var reasonNames = [NumReasons]string{
	"packets", "accepted", "modified", "not-parsed", "no-host-id", "ct-miss", "ct-error",
	"flows-full", "flows-tracked", "track-done", "untracked", "mss-lowered",
	"backlog-full", "oversize", "verdict-errors", "refused-malformed", "flows-evicted",
	"select-flows", "select-full", "select-done", "select-unknown", "select-out-of-order",
	"select-held", "select-cut-mtu", "select-mss-lowered", "http-requests", "http-forged-removed",
	"http-non-http", "http-tls", "proxy-written", "proxy-forged-reset", "proxy-forged-replaced",
	"gso-packets", "gso-passed", "select-kernel", "select-kernel-failed",
	"select-kernel-acks", "select-user-acks", "select-reset",
	"backlog-dropped", "select-host-full", "http-refused", "proxy-bad-header",
	"select-uploads", "select-upload-failed", "select-swept", "select-reopened",
	"tables-restored",
}

func (r Reason) String() string { return reasonNames[r] }

// Counters is one atomic counter per Reason. Safe for concurrent use.
type Counters struct {
	c [NumReasons]atomic.Uint64
}

// Inc adds one to counter r.
func (s *Counters) Inc(r Reason) { s.c[r].Add(1) }

// Add adds n to counter r.
func (s *Counters) Add(r Reason, n uint64) { s.c[r].Add(n) }

// Load returns counter r as counted.
func (s *Counters) Load(r Reason) uint64 { return s.c[r].Load() }

// Counter is what Serve counts into (the packet path's Stats).
type Counter interface {
	Add(r Reason, n uint64)
	Load(r Reason) uint64
}

var _ Counter = (*Counters)(nil)
