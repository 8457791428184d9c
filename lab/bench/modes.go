package bench

import (
	"context"
	"encoding/json"
	"fmt"
	"net/netip"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/google/nftables"

	"github.com/natreveal/natreveal/internal/cpuprofile"
	"github.com/natreveal/natreveal/lab"
	"github.com/natreveal/natreveal/method/all"
	"github.com/natreveal/natreveal/method/ipid"
	"github.com/natreveal/natreveal/method/ipoption"
	"github.com/natreveal/natreveal/method/tcpoption"
	"github.com/natreveal/natreveal/queue"
	"github.com/natreveal/natreveal/rules"
)

// A mode is one way the NAT handles SYNs.
type mode struct {
	name string
	// methods for `natreveal run`; empty: no daemon.
	methods string
	// passthrough: the bench itself serves the queue, accepting every
	// packet unchanged (the cost of the NFQUEUE round trip alone), with
	// natreveal's queue client or, role "gonfqueue", go-nfqueue's.
	passthrough bool
	role        string
	// nft is a script loaded in the NAT namespace for the mode, removed
	// after it (ip-id in the kernel).
	nft, nftTable string
	// counter names the nft counter of the SYNs that count (see
	// serverCounters).
	counter string
	// args are extra flags of `natreveal run`.
	args []string
}

// allModes are the bench's own modes (no daemon, the pass-throughs), then
// one per registered method (method/all) whose marked SYNs serverCounters
// counts, in the registry's order, each followed by its variants.
var allModes = append([]mode{
	{name: "kernel", counter: "syn"},
	{name: "queue", passthrough: true, role: "passthrough", counter: "pass"},
	// The same pass-through with github.com/florianl/go-nfqueue/v2 as the
	// queue client (issue 15: the library against the hand-written one).
	{name: "go-nfqueue", passthrough: true, role: "gonfqueue", counter: "pass"},
}, methodModes()...)

// methodCounters names serverCounters' counter of each method the bench
// measures: how a SYN it marked looks at the server is the bench's match
// (an nft rule), not the method's.
var methodCounters = map[string]string{tcpoption.Name: "tcpopt", ipid.Name: "ipid", ipoption.Name: "ipopt"}

// methodVariants are modes that run a method another way.
var methodVariants = map[string][]mode{
	// ip-id in the kernel (ip_id.kernel): the daemon learns each host from
	// its first SYN into an nft map; the kernel writes the IP-ID of later
	// atomic SYNs itself and queues none of them.
	ipid.Name: {{name: "ip-id-kernel", methods: ipid.Name, args: []string{"--ip-id-kernel"}, counter: "ipid"}},
}

// methodModes returns a mode per registered router method that
// methodCounters counts, each followed by its variants.
func methodModes() []mode {
	var out []mode
	for _, m := range all.List {
		c, ok := methodCounters[m.Name]
		if !ok || !m.Router {
			continue
		}
		out = append(out, mode{name: m.Name, methods: m.Name, counter: c})
		out = append(out, methodVariants[m.Name]...)
	}
	return out
}

// daemon is a queue reader in the NAT namespace: `natreveal run`, or this
// binary in passthrough role.
type daemon struct{ *lab.Process }

func startDaemon(l *lab.Lab, m mode, binary string, queues int, lanes bool, env ...string) (*daemon, error) {
	var args []string
	if m.passthrough {
		self, err := os.Executable()
		if err != nil {
			return nil, err
		}
		args = []string{self, "bench", "-role", m.role, "-queues", strconv.Itoa(queues), "-lanes=" + strconv.FormatBool(lanes)}
	} else {
		args = []string{binary, "run", "--status-socket=", "--inside", lab.InsidePrefix, "--methods", m.methods,
			"--queue-count", strconv.Itoa(queues)}
		args = append(args, m.args...)
	}
	return startDaemonArgs(l, m.name, args, env...)
}

// startDaemonArgs runs args in the NAT namespace and waits for its
// "running:" line; env is added to the daemon's environment.
func startDaemonArgs(l *lab.Lab, name string, args []string, env ...string) (*daemon, error) {
	// Kernel drops count: a full queue drops (and counts) instead of
	// letting SYNs past unmarked, so a saturated queue shows as such.
	// The SYN path only: no UDP flows followed (which also spares the
	// conntrack destroy events that only tcp-option needs then).
	p, err := lab.StartInNS(context.Background(), l.NAT, args, append([]string{"NATREVEAL_QUEUE_FAIL_OPEN=false",
		"NATREVEAL_IP_ID_UDP_PACKETS=0", "NATREVEAL_IP_OPTION_UDP_PACKETS=0"}, env...), 15*time.Second)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	return &daemon{p}, nil
}

// pid is the daemon's process id; 0 for no daemon (nil).
func (d *daemon) pid() int {
	if d == nil {
		return 0
	}
	return d.Pid()
}

// stop ends the daemon with SIGTERM and returns its final counters.
func (d *daemon) stop() (map[string]uint64, error) {
	if err := d.Stop(); err != nil {
		return nil, err
	}
	return parseStats(d.Output()), nil
}

// parseStats finds the last counters line of a daemon log: `stats {...}`
// (log), `msg=stats counters="{...}"` (slog text) or a JSON line with
// "counters".
func parseStats(log string) map[string]uint64 {
	lines := strings.Split(log, "\n")
	for i := len(lines) - 1; i >= 0; i-- {
		line := lines[i]
		var js string
		switch {
		case strings.HasPrefix(line, "{") && strings.Contains(line, `"counters"`):
			var v struct{ Counters map[string]uint64 }
			if json.Unmarshal([]byte(line), &v) == nil && v.Counters != nil {
				return v.Counters
			}
			continue
		case strings.Contains(line, "counters="):
			q := line[strings.Index(line, "counters=")+len("counters="):]
			if u, err := strconv.QuotedPrefix(q); err == nil {
				js, _ = strconv.Unquote(u)
			}
		case strings.Contains(line, "stats {"):
			js = line[strings.Index(line, "stats {")+len("stats "):]
		default:
			continue
		}
		st := map[string]uint64{}
		if json.Unmarshal([]byte(js), &st) == nil {
			return st
		}
	}
	return nil
}

// cpuNanos is the CPU time all threads of process pid have used so far
// (/proc/PID/task/*/schedstat, first field: nanoseconds on a CPU).
func cpuNanos(pid int) uint64 {
	tasks, _ := filepath.Glob(fmt.Sprintf("/proc/%d/task/*/schedstat", pid))
	var sum uint64
	for _, t := range tasks {
		b, err := os.ReadFile(t)
		if err != nil {
			continue
		}
		f := strings.Fields(string(b))
		if len(f) > 0 {
			n, _ := strconv.ParseUint(f[0], 10, 64)
			sum += n
		}
	}
	return sum
}

// userNanos is the user-mode CPU time of process pid (/proc/PID/stat utime,
// clock ticks of 10 ms: coarse, fine over a second of load).
func userNanos(pid int) uint64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0
	}
	s := string(b)
	f := strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
	if len(f) < 12 {
		return 0
	}
	ticks, _ := strconv.ParseUint(f[11], 10, 64) // field 14 of the whole line
	return ticks * 10_000_000
}

// queueStats sums /proc/net/netfilter/nfnetlink_queue of namespace ns:
// packets queued so far (id_sequence) and kernel drops (queue_dropped +
// queue_user_dropped).
type queueStats struct{ queued, dropped, full, userDropped, waiting uint64 }

func readQueueStats(ns string) (queueStats, error) {
	var b []byte
	err := lab.Do(ns, func() error {
		var err error
		b, err = os.ReadFile("/proc/thread-self/net/netfilter/nfnetlink_queue")
		if os.IsNotExist(err) {
			err = nil // nfnetlink_queue not loaded yet: nothing queued
		}
		return err
	})
	var s queueStats
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.Fields(line)
		if len(f) < 8 {
			continue
		}
		d1, _ := strconv.ParseUint(f[5], 10, 64)
		d2, _ := strconv.ParseUint(f[6], 10, 64)
		seq, _ := strconv.ParseUint(f[7], 10, 64)
		s.dropped += d1 + d2
		s.full += d1
		s.userDropped += d2
		w, _ := strconv.ParseUint(f[2], 10, 64) // queue_total: packets waiting for a verdict
		s.waiting += w
		s.queued += seq
	}
	return s, err
}

// Counters of the SYNs the flood gets through (nft, in table ip bench):
// at the server, before anything else sees them, all of them ("syn") and
// those that carry a HOST_ID: the RFC 7974 option makes the raw SYN's
// 40-byte TCP header longer ("tcpopt"), ip-id writes lower16 of the lab
// hosts, 2 or 3 (the raw SYNs leave the kernel with ID 0: DF set, no
// socket), the IPv4 option makes the IP header longer ("ipopt"). The queue
// only mode's verdicts carry packet mark 0x100 (nothing else changes), seen
// in the NAT namespace after source NAT ("pass"). A SYN let go unchanged
// (backlog full) does not count for the modes that mark.
const (
	serverCounters = `table ip bench {
	counter syn { }
	counter tcpopt { }
	counter ipid { }
	counter ipopt { }
	chain pre {
		type filter hook prerouting priority raw - 10; policy accept;
		tcp dport 9 tcp flags syn / fin,syn,rst,ack counter name syn
		tcp dport 9 tcp flags syn / fin,syn,rst,ack tcp doff > 10 counter name tcpopt
		tcp dport 9 tcp flags syn / fin,syn,rst,ack ip id 2-3 counter name ipid
		tcp dport 9 tcp flags syn / fin,syn,rst,ack ip hdrlength > 5 counter name ipopt
	}
}
`
	natCounters = `table ip bench {
	counter pass { }
	chain post {
		type filter hook postrouting priority srcnat + 5; policy accept;
		tcp dport 9 meta mark & 0x100 == 0x100 counter name pass
	}
}
`
	passMark = 0x100
)

func readCounter(l *lab.Lab, m mode) (uint64, time.Time, error) {
	ns := l.Srv
	if m.counter == "pass" {
		ns = l.NAT
	}
	return readCounterNS(l, ns, m.counter)
}

// readCounterNS reads nft counter name of table ip bench in namespace ns,
// and when (the middle of the read).
func readCounterNS(l *lab.Lab, ns, name string) (uint64, time.Time, error) {
	t0 := time.Now()
	out, err := l.Exec(ns, "nft", "list", "counter", "ip", "bench", name)
	mid := t0.Add(time.Since(t0) / 2)
	if err != nil {
		return 0, mid, err
	}
	f := strings.Fields(out)
	for i := range f {
		if f[i] == "packets" && i+1 < len(f) {
			n, err := strconv.ParseUint(f[i+1], 10, 64)
			return n, mid, err
		}
	}
	return 0, mid, fmt.Errorf("no packets in %q", out)
}

// passthrough is the role of this binary that serves the queue for the
// "queue" mode: natreveal's own ruleset (SYNs of inside hosts) and queue.Serve
// with the daemon's queue settings, but a handler that accepts every packet
// as it is, only marked (passMark) so that the bench can count them.
func passthrough(queues int, lanes bool) error {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	if err := cpuprofile.FromEnv(); err != nil { // -hold -cpuprofile
		return err
	}
	nft, spec, err := passRules(queues)
	if err != nil {
		return err
	}
	st := &queue.Counters{}
	qc := queue.Config{Count: uint16(queues), MaxLen: 4096, Backlog: 1024, RcvBuf: 8 << 20, PerCPU: lanes && queues > 1}
	err = queue.Serve(ctx, qc, acceptAll{}, st, queue.Hooks{
		Bound: func() error {
			if err := rules.Apply(nft, spec); err != nil {
				return err
			}
			fmt.Fprintln(os.Stderr, "running: passthrough")
			return nil
		},
		Unbinding: func() { rules.Remove(nft, "") },
	})
	counts := map[string]uint64{}
	for r := range queue.NumReasons {
		if n := st.Load(r); n > 0 {
			counts[r.String()] = n
		}
	}
	b, _ := json.Marshal(counts)
	fmt.Fprintf(os.Stderr, "stats %s\n", b)
	return err
}

// passRules opens nftables and returns the ruleset the passthrough and
// go-nfqueue roles install: SYNs of the lab's inside hosts, pre-NAT, spread
// over queues.
func passRules(queues int) (*nftables.Conn, rules.Spec, error) {
	nft, err := nftables.New()
	if err != nil {
		return nil, rules.Spec{}, err
	}
	mech, err := rules.Probe(nft)
	if err != nil {
		return nil, rules.Spec{}, err
	}
	return nft, rules.Spec{
		Inside: []netip.Prefix{netip.MustParsePrefix(lab.InsidePrefix)}, QueueCount: uint16(queues),
		Mechanism: mech, Placement: rules.PreNAT, SYN: true,
	}, nil
}

// waitQueueEmpty waits until namespace ns's queues hold no packet (each
// got its verdict or was dropped), at most limit: a slow client can still
// hold thousands when the flood ends, and those are neither received nor
// dropped yet.
func waitQueueEmpty(ns string, limit time.Duration) {
	for end := time.Now().Add(limit); time.Now().Before(end); time.Sleep(20 * time.Millisecond) {
		if q, err := readQueueStats(ns); err != nil || q.waiting == 0 {
			return
		}
	}
}

type acceptAll struct{}

func (acceptAll) Handle([]byte, int, queue.Meta) queue.Verdict {
	return queue.Verdict{SetMark: true, Mark: passMark}
}
