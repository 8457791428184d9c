// Package observe logs the HOST_ID of every incoming connection on a
// server without touching its traffic: an nftables table of its own copies
// each connection's first packet (TCP SYN, the first datagram of a UDP flow
// to selected ports, HIP packets) to NFLOG, and package reveal decodes the
// copies. NFLOG only copies: a slow or absent reader loses log records,
// never packets.
package observe

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	nflog "github.com/florianl/go-nflog/v2"
	"github.com/google/nftables"
	"golang.org/x/sys/unix"

	"github.com/natreveal/natreveal/method/all"
	"github.com/natreveal/natreveal/reveal"
)

// Config says what to observe.
type Config struct {
	Decoder reveal.Decoder
	// Group is the NFLOG group (0: DefaultGroup). Only one process per
	// network namespace can listen on a group.
	Group uint16
	// TCPPorts are the TCP destination ports watched; empty: all.
	TCPPorts []uint16
	// UDPPorts are the UDP destination ports watched; empty: no UDP.
	UDPPorts []uint16
	// Table names the nftables table (0: DefaultTable), family inet.
	Table string
	// Snaplen is how many bytes of each packet NFLOG copies (0:
	// DefaultSnaplen).
	Snaplen uint32
	// ReportNone also reports connections that carry no HOST_ID, as a
	// Record without Method.
	ReportNone bool
	// NetNS is a file descriptor of the network namespace to observe; 0
	// means the current one.
	NetNS int
	// Logf receives diagnostics (nil: none).
	Logf func(format string, args ...any)
	// Ready, when set, is called once the table is installed and the
	// NFLOG group bound: from then on every new connection is seen.
	Ready func(*Ruleset)
}

func (c Config) withDefaults() Config {
	if c.Group == 0 {
		c.Group = DefaultGroup
	}
	if c.Table == "" {
		c.Table = DefaultTable
	}
	if c.Snaplen == 0 {
		c.Snaplen = DefaultSnaplen
	}
	if c.Logf == nil {
		c.Logf = func(string, ...any) {}
	}
	return c
}

// wantTCP: a method that applies to TCP is enabled (all but hip).
func (c Config) wantTCP() bool { return c.wantProto(reveal.ProtoTCP) }

// wantUDP: UDP ports are named and a method that applies to UDP is enabled.
func (c Config) wantUDP() bool { return len(c.UDPPorts) > 0 && c.wantProto(reveal.ProtoUDP) }

// wantProto: an enabled method rides in packets of IP protocol proto, by
// its registry entry (method.Decoder.Proto, 0 for any; hip is the one
// method on a protocol of its own, which its own rule logs).
func (c Config) wantProto(proto uint8) bool {
	for _, m := range reveal.Methods {
		if md, _ := all.Lookup(string(m)); c.Decoder.Enabled(m) && (md.Decoder.Proto == 0 || md.Decoder.Proto == proto) {
			return true
		}
	}
	return false
}

// Stats counts what Run saw.
type Stats struct {
	Packets  uint64 `json:"packets"`  // NFLOG messages with a packet
	Records  uint64 `json:"records"`  // records emitted
	Repeats  uint64 `json:"repeats"`  // UDP datagrams of a flow already reported
	Unparsed uint64 `json:"unparsed"` // packets whose IP header did not parse
	Lost     uint64 `json:"lost"`     // times the kernel dropped log messages (ENOBUFS)
}

// Run installs the table, reports each observed connection to emit (one
// Record per HOST_ID found, from one goroutine) until ctx is done or
// receiving fails, and removes the table again in every case once it was
// installed. It returns what it counted and the first error.
func Run(ctx context.Context, cfg Config, emit func(reveal.Record)) (st Stats, err error) {
	cfg = cfg.withDefaults()
	rs := Build(cfg)
	if len(rs.Rules) == 0 {
		return st, errors.New("observe: nothing to observe: no method applies (UDP needs --udp-ports, hip needs hip)")
	}

	var nftOpts []nftables.ConnOption
	if cfg.NetNS != 0 {
		nftOpts = append(nftOpts, nftables.WithNetNSFd(cfg.NetNS))
	}
	nft, err := nftables.New(nftOpts...)
	if err != nil {
		return st, fmt.Errorf("observe: nftables: %w", err)
	}

	// Bind the group before the rules exist, so that no logged packet
	// finds nobody listening.
	nf, err := nflog.Open(&nflog.Config{
		NetNS:    cfg.NetNS,
		Group:    cfg.Group,
		Copymode: nflog.CopyPacket,
		Bufsize:  cfg.Snaplen, // the instance's copy range (NFULA_CFG_MODE)
		QThresh:  1,           // hand every packet over at once
	})
	if err != nil {
		return st, fmt.Errorf("observe: nflog: %w", err)
	}
	if err := nf.Con.SetReadBuffer(4 << 20); err != nil {
		cfg.Logf("nflog: read buffer: %v", err)
	}

	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	h := &handler{cfg: cfg, emit: emit, udp: newFlowSet(udpFlowCap, udpFlowTTL)}
	var (
		failOnce sync.Once
		failErr  error
		lost     atomic.Uint64
		tableIn  bool
	)
	// Every way out: the table goes first (no more packets are logged),
	// then the socket; no emit call happens after Run returns.
	defer func() {
		if tableIn {
			if rerr := remove(nft, cfg.Table); rerr != nil && err == nil {
				err = rerr
			}
		}
		cancel()
		nf.Close()
		st = h.stop()
		st.Lost = lost.Load()
		if err == nil {
			err = failErr
		}
	}()
	fail := func(err error) {
		failOnce.Do(func() { failErr = err })
		cancel()
	}
	err = nf.RegisterWithErrorFunc(ctx, h.hook, func(err error) int {
		switch {
		case ctx.Err() != nil:
			return 1
		case errors.Is(err, unix.ENOBUFS):
			if n := lost.Add(1); n&(n-1) == 0 { // 1, 2, 4, 8...
				cfg.Logf("nflog: the kernel dropped log messages (%d times): the reader is too slow", n)
			}
			return 0
		}
		fail(fmt.Errorf("observe: nflog receive: %w", err))
		return 1
	})
	if err != nil {
		// The kernel answers EPERM both without CAP_NET_ADMIN and when
		// another socket holds the group; go-nflog does not wrap it.
		return st, fmt.Errorf("observe: nflog group %d: %w (is another process logging on this group? choose another --group)", cfg.Group, err)
	}

	if err := install(nft, rs); err != nil {
		return st, err
	}
	tableIn = true
	cfg.Logf("observing: table inet %s, nflog group %d, snaplen %d, methods %v", cfg.Table, cfg.Group, cfg.Snaplen, methodsOf(cfg.Decoder))
	if cfg.Ready != nil {
		cfg.Ready(rs)
	}
	<-ctx.Done()
	return st, nil
}

func methodsOf(d reveal.Decoder) []reveal.Method {
	if d.Methods == nil {
		return reveal.DefaultMethods
	}
	return d.Methods
}

// handler turns NFLOG messages into records. hook runs on go-nflog's one
// receiving goroutine.
type handler struct {
	cfg    Config
	emit   func(reveal.Record)
	udp    *flowSet
	found  []reveal.Found
	mu     sync.Mutex // held while handling; stop waits for it
	st     Stats
	closed bool
}

func (h *handler) hook(a nflog.Attribute) int {
	if a.Payload == nil {
		return 0
	}
	now := time.Now()
	if a.Timestamp != nil && !a.Timestamp.IsZero() {
		now = *a.Timestamp
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closed {
		return 1
	}
	h.handle(now, *a.Payload)
	return 0
}

// stop waits for a packet being handled, makes later ones ignored, and
// returns the counters.
func (h *handler) stop() Stats {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.closed = true
	return h.st
}

func (h *handler) handle(now time.Time, pkt []byte) {
	h.st.Packets++
	fl, ok := reveal.ParseFlow(pkt)
	if !ok {
		h.st.Unparsed++
		return
	}
	if !fl.Opening() {
		return // not what the rules select (e.g. a SYN cut before its flags)
	}
	if fl.Proto == reveal.ProtoUDP && !h.udp.first(now, flowKey{fl.Src, fl.Dst, fl.SrcPort, fl.DstPort}) {
		h.st.Repeats++
		return
	}
	h.found = h.cfg.Decoder.Decode(pkt, h.found[:0])
	for _, f := range h.found {
		h.emit(reveal.NewRecord(now, fl, f))
		h.st.Records++
	}
	if len(h.found) == 0 && h.cfg.ReportNone {
		h.emit(reveal.NewRecord(now, fl, reveal.Found{}))
		h.st.Records++
	}
}

// UDP flows are reported once while they keep sending: `ct state new` holds
// for every datagram of a flow that got no reply yet.
const (
	udpFlowCap = 65536
	udpFlowTTL = 30 * time.Second // nf_conntrack_udp_timeout of an unreplied flow
)

type flowKey struct {
	src, dst         netip.Addr
	srcPort, dstPort uint16
}

// flowSet remembers flows seen within ttl, at most max of them.
type flowSet struct {
	max  int
	ttl  time.Duration
	seen map[flowKey]time.Time
}

func newFlowSet(max int, ttl time.Duration) *flowSet {
	return &flowSet{max: max, ttl: ttl, seen: make(map[flowKey]time.Time)}
}

// first reports whether k was not seen within ttl before now, and notes it.
func (s *flowSet) first(now time.Time, k flowKey) bool {
	last, ok := s.seen[k]
	s.seen[k] = now
	if ok && now.Sub(last) < s.ttl {
		return false
	}
	if len(s.seen) > s.max {
		for k2, t := range s.seen {
			if now.Sub(t) >= s.ttl {
				delete(s.seen, k2)
			}
		}
		if len(s.seen) > s.max { // all recent: forget them all, report again
			clear(s.seen)
			s.seen[k] = now
		}
	}
	return true
}
