// Package metrics exposes natreveal's counters to Prometheus in the text
// exposition format (version 0.0.4). Nothing is counted twice: a Collector
// reads the packet path's atomic counters (handler.Stats), the flow table's
// size and the kernel's queue statistics when a scrape asks, so the packet
// path pays nothing. The Go runtime and process metrics (go_*, process_*)
// come from github.com/VictoriaMetrics/metrics, which, unlike the Prometheus
// client, links no protobuf: the router binary must fit a router's flash.
package metrics

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/natreveal/natreveal/handler"
	"github.com/natreveal/natreveal/method/all"
	"github.com/natreveal/natreveal/packet"
)

// QueueFile is the kernel's per-namespace list of bound NFQUEUE instances.
const QueueFile = "/proc/net/netfilter/nfnetlink_queue"

// Source is what a scrape reads. Every field may be nil.
type Source struct {
	Stats     func() *handler.Stats // packet path counters
	Flows     func() int            // flows followed now
	Lookups   func() uint64         // conntrack lookups (post-NAT resolver)
	Refresh   func()                // called first: brings the ruleset's counters into Stats
	QueueFile string                // default QueueFile; "-" disables
	Version   string                // natreveal_build_info
}

// Families. Results and reasons are labels, so a dashboard sums them.
var (
	descPackets = counterFamily("natreveal_packets_total",
		"Packets an encoder looked at, by method and result (written: marked; any other result: passed unchanged and why).",
		"method", "result")
	descQueued = counterFamily("natreveal_queue_packets_total",
		"Packets read from the NFQUEUE queues.")
	descVerdicts = counterFamily("natreveal_verdicts_total",
		"Verdicts the kernel accepted.")
	descModified = counterFamily("natreveal_modified_packets_total",
		"Packets re-injected rewritten.")
	descUnchanged = counterFamily("natreveal_unchanged_packets_total",
		"Packets accepted unchanged before any encoder ran, by reason.", "reason")
	descRefused = counterFamily("natreveal_refused_packets_total",
		"Inside SYNs with malformed options, dropped (anti-spoofing).")
	descVerdictErrors = counterFamily("natreveal_verdict_errors_total",
		"Verdicts the kernel refused.")
	descFlowEvents = counterFamily("natreveal_flow_events_total",
		"Flow tracking events: tracked, done, full (table at its cap), untracked, evicted.", "event")
	descFlows = gaugeFamily("natreveal_flows_tracked",
		"UDP flows whose first datagrams the daemon follows right now (the ruleset follows TCP flows).")
	descRestored = counterFamily("natreveal_tables_restored_total",
		"Times natreveal put its tables back after something else deleted them (a firewall reload's flush ruleset).")
	descMSS = counterFamily("natreveal_mss_lowered_total",
		"SYN-ACKs whose MSS was lowered to make room for the option (by the ruleset for tracked flows).")
	descCtLookups = counterFamily("natreveal_conntrack_lookups_total",
		"Conntrack lookups of the post-NAT path.")
	descCtMisses = counterFamily("natreveal_conntrack_misses_total",
		"Conntrack lookups that found no flow.")
	descCtErrors = counterFamily("natreveal_conntrack_errors_total",
		"Conntrack lookups that failed.")
	descKernelDropped = counterFamily("natreveal_kernel_queue_dropped_total",
		"Packets the kernel dropped because the queue was full (with queue.fail_open it accepts them unmarked instead, and counts nothing).", "queue")
	descUserDropped = counterFamily("natreveal_kernel_queue_user_dropped_total",
		"Packets the kernel could not deliver to natreveal's netlink socket.", "queue")
	descBuild = gaugeFamily("natreveal_build_info",
		"A constant 1 labelled with the build.", "goversion", "version")
)

// methods are the registered methods (method/all) whose counters are the
// packet path's encoder results, labelled with the method's name.
var methods = resultMethods()

func resultMethods() []struct {
	name string
	get  func(*handler.Stats, packet.Result) uint64
} {
	var out []struct {
		name string
		get  func(*handler.Stats, packet.Result) uint64
	}
	for _, m := range all.List {
		if slices.Contains(m.Counters, m.Name) {
			name := m.Name
			out = append(out, struct {
				name string
				get  func(*handler.Stats, packet.Result) uint64
			}{name, func(s *handler.Stats, r packet.Result) uint64 { return s.Result(name, r) }})
		}
	}
	return out
}

// events are the registered methods' event counters (method.Events): a
// counter family each, labelled by event.
var events = eventFamilies()

type methodEvents struct {
	name  string   // the method's
	names []string // its events
	f     *family
}

func eventFamilies() []methodEvents {
	var out []methodEvents
	for _, m := range all.List {
		if e := m.Events; len(e.Names) > 0 {
			out = append(out, methodEvents{m.Name, e.Names, counterFamily(e.Metric, e.Help, "event")})
		}
	}
	return out
}

var unchangedReasons = []handler.Reason{handler.NotParsed, handler.NoHostID, handler.BacklogFull, handler.Oversize}

var flowEvents = []struct {
	name string
	r    handler.Reason
}{
	{"tracked", handler.FlowsTracked}, {"done", handler.TrackDone}, {"full", handler.FlowsFull},
	{"untracked", handler.Untracked}, {"evicted", handler.FlowsEvicted},
}

// Collector reads a Source at scrape time.
type Collector struct{ src Source }

// NewCollector returns a Collector reading src at scrape time.
func NewCollector(src Source) *Collector {
	if src.QueueFile == "" {
		src.QueueFile = QueueFile
	}
	return &Collector{src: src}
}

// Expose writes natreveal's families in the text exposition format. An
// unreadable queue file fails the scrape, as it did under the Prometheus
// client.
func (c *Collector) Expose(w io.Writer) error {
	var e exposition
	if err := c.collect(&e); err != nil {
		return err
	}
	return e.write(w)
}

func (c *Collector) collect(e *exposition) error {
	counter := func(f *family, v uint64, labels ...string) { e.add(f, float64(v), labels...) }
	e.add(descBuild, 1, runtime.Version(), c.src.Version)
	if c.src.Refresh != nil {
		c.src.Refresh()
	}
	if c.src.Stats != nil {
		if st := c.src.Stats(); st != nil {
			for _, m := range methods {
				for r := packet.Result(0); r < packet.NumResults; r++ {
					if r == packet.Unchanged && m.get(st, r) == 0 {
						continue // "nothing needed changing" is rare; keep the series list short
					}
					counter(descPackets, m.get(st, r), m.name, r.String())
				}
			}
			counter(descQueued, st.Get(handler.Packets))
			counter(descVerdicts, st.Get(handler.Accepted))
			counter(descModified, st.Get(handler.Modified))
			for _, r := range unchangedReasons {
				counter(descUnchanged, st.Get(r), r.String())
			}
			counter(descRefused, st.Get(handler.Refused))
			counter(descVerdictErrors, st.Get(handler.VerdictErrors))
			for _, ev := range flowEvents {
				counter(descFlowEvents, st.Get(ev.r), ev.name)
			}
			counter(descMSS, st.Get(handler.MSSLowered))
			counter(descRestored, st.Get(handler.TablesRestored))
			for _, ev := range events {
				for _, name := range ev.names {
					counter(ev.f, st.Event(ev.name, name), name)
				}
			}
			counter(descCtMisses, st.Get(handler.CtMiss))
			counter(descCtErrors, st.Get(handler.CtError))
		}
	}
	if c.src.Lookups != nil {
		counter(descCtLookups, c.src.Lookups())
	} else {
		counter(descCtLookups, 0)
	}
	if c.src.Flows != nil {
		e.add(descFlows, float64(c.src.Flows()))
	}
	if c.src.QueueFile != "-" {
		qs, err := ReadQueues(c.src.QueueFile)
		if err != nil {
			return fmt.Errorf("metrics: %s: %w", descKernelDropped.Name, err)
		}
		for _, q := range qs {
			n := strconv.Itoa(int(q.Num))
			counter(descKernelDropped, q.Dropped, n)
			counter(descUserDropped, q.UserDropped, n)
		}
	}
	return nil
}

// Queue is one line of /proc/net/netfilter/nfnetlink_queue.
type Queue struct {
	Num         uint16
	PortID      uint32 // netlink port of the listener
	Total       uint32 // packets waiting in the queue now
	Dropped     uint64 // queue full (queue_dropped)
	UserDropped uint64 // netlink delivery failed (queue_user_dropped)
}

// ReadQueues parses file (QueueFile). Its columns (net/netfilter/
// nfnetlink_queue.c, seq_show): queue_number peer_portid queue_total
// copy_mode copy_range queue_dropped queue_user_dropped id_sequence 1.
func ReadQueues(file string) ([]Queue, error) {
	f, err := os.Open(file)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return ParseQueues(f)
}

// ParseQueues parses the text of QueueFile.
func ParseQueues(r io.Reader) ([]Queue, error) {
	var out []Queue
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) == 0 {
			continue
		}
		if len(f) < 7 {
			return nil, fmt.Errorf("metrics: %q: want at least 7 columns", sc.Text())
		}
		var v [7]uint64
		for i := range v {
			n, err := strconv.ParseUint(f[i], 10, 64)
			if err != nil {
				return nil, fmt.Errorf("metrics: %q: column %d: %w", sc.Text(), i+1, err)
			}
			v[i] = n
		}
		if v[0] > 65535 {
			return nil, fmt.Errorf("metrics: %q: queue number out of range", sc.Text())
		}
		out = append(out, Queue{Num: uint16(v[0]), PortID: uint32(v[1]), Total: uint32(v[2]), Dropped: v[5], UserDropped: v[6]})
	}
	return out, sc.Err()
}

// Registry is what /metrics serves: natreveal's collector, then the Go
// runtime and process metrics.
type Registry struct{ c *Collector }

// NewRegistry returns a registry holding natreveal's collector and the Go
// runtime and process metrics.
func NewRegistry(src Source) *Registry { return &Registry{c: NewCollector(src)} }

// Expose writes one scrape.
func (r *Registry) Expose(w io.Writer) error {
	var b bytes.Buffer
	if err := r.c.Expose(&b); err != nil {
		return err
	}
	writeProcess(&b) // process.go
	_, err := w.Write(b.Bytes())
	return err
}

// ServeHTTP answers a scrape; a failed one is a 500 naming the error.
func (r *Registry) ServeHTTP(w http.ResponseWriter, _ *http.Request) {
	var b bytes.Buffer
	if err := r.Expose(&b); err != nil {
		http.Error(w, "An error has occurred while serving metrics:\n\n"+err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", contentType)
	w.Write(b.Bytes())
}

// Server serves /metrics.
type Server struct {
	srv  *http.Server
	ln   net.Listener
	done chan error
}

// Listen starts serving h (a *Registry, or another exposition) as /metrics
// on addr ("host:port").
func Listen(addr string, h http.Handler) (*Server, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("metrics: listen on %s: %w", addr, err)
	}
	mux := http.NewServeMux()
	mux.Handle("/metrics", h)
	s := &Server{
		srv: &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second, ReadTimeout: 10 * time.Second,
			WriteTimeout: 10 * time.Second, MaxHeaderBytes: 8 << 10},
		ln: ln, done: make(chan error, 1),
	}
	go func() {
		err := s.srv.Serve(ln)
		if errors.Is(err, http.ErrServerClosed) {
			err = nil
		}
		s.done <- err
	}()
	return s, nil
}

// Addr is the address the server listens on.
func (s *Server) Addr() net.Addr { return s.ln.Addr() }

// Close stops the server, waiting at most a second for scrapes in flight.
func (s *Server) Close() error {
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	if err := s.srv.Shutdown(ctx); err != nil {
		s.srv.Close()
	}
	return <-s.done
}
