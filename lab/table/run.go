package table

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"os/exec"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"

	"github.com/natreveal/natreveal/internal/progress"
	"github.com/natreveal/natreveal/lab"
)

// Options control a lab run.
type Options struct {
	Binary   string        // the natreveal (router) binary that runs on the NAT (`run`, `rules print`); required
	N        int           // connections (and UDP flows) per method per path
	PerfTime time.Duration // length of each new-connection rate measurement
	Quick    bool          // recorded in the result
	Only     []string      // run only these methods (nil: all of Methods)
	Log      io.Writer     // a log line per step (--verbose); nil: none
	// Progress shows which method, path and transport, probes done and
	// time left; nil: none.
	Progress *progress.Line
}

// Defaults for a full run and for --quick.
var (
	Full  = Options{N: 50, PerfTime: 2 * time.Second}
	Quick = Options{N: 20, PerfTime: 500 * time.Millisecond, Quick: true}
)

// Bounds of every flood.
const (
	probeTimeout = 5 * time.Second // connect timeout of one probe: a dropped SYN is retried twice within it (RTO 1 s, then 2 s)
	probeWidth   = 25              // probes in flight
	udpWait      = 2 * time.Second
	perfMax      = 20000 // connections per rate measurement at most
	perfWorkers  = 2     // per inside host
	runLimit     = 5 * time.Minute
)

type runner struct {
	ctx   context.Context
	o     Options
	t     *lab.Lab
	st    *store
	cert  tls.Certificate
	roots *x509.CertPool
	seq   atomic.Int64
	perfN int
	logMu sync.Mutex
	tr    *tracker // nil: no progress shown
	nth   int      // the method being measured, from 1
}

func (r *runner) logf(format string, args ...any) {
	if r.o.Log == nil {
		return
	}
	r.logMu.Lock()
	defer r.logMu.Unlock()
	fmt.Fprintf(r.o.Log, "lab: "+format+"\n", args...)
}

func (r *runner) label() string { return fmt.Sprintf("L%d", r.seq.Add(1)) }

// Run builds the lab, measures every method and deletes the lab again
// (also when ctx is cancelled: the caller cancels it on SIGINT/SIGTERM).
func Run(ctx context.Context, o Options) (res *Result, err error) {
	if o.N <= 0 {
		o.N = Full.N
	}
	if o.PerfTime <= 0 {
		o.PerfTime = Full.PerfTime
	}
	if o.Binary == "" {
		return nil, errors.New("lab: no natreveal binary to run on the NAT (Options.Binary)")
	}
	start := time.Now()
	// A bound on the whole run, whatever happens (a full run takes about
	// half a minute).
	ctx, cancel := context.WithTimeout(ctx, runLimit)
	defer cancel()
	r := &runner{ctx: ctx, o: o}
	if gone, err := lab.CleanLeftovers(); err != nil {
		return nil, err
	} else if len(gone) > 0 {
		r.logf("deleted leftovers of a killed run: %s", strings.Join(gone, " "))
	}
	if r.cert, r.roots, err = selfSigned(); err != nil {
		return nil, err
	}
	if r.t, err = lab.NewRouted(); err != nil {
		return nil, err
	}
	defer func() {
		if cerr := r.t.Close(); cerr != nil && err == nil {
			err = cerr
		}
	}()
	r.logf("namespaces %s", strings.Join(r.t.Namespaces(), " "))
	r.st = newStore(r.t.Srv)
	if err := r.warmup(); err != nil {
		return nil, err
	}
	udp, err := startUDP(r.t.Srv, r.st)
	if err != nil {
		return nil, err
	}
	defer udp.close()
	hipSrv, err := startHIP(r.t.Srv, r.st)
	if err != nil {
		return nil, err
	}
	defer hipSrv.close()

	var methods []*Method
	for i := range Methods {
		m := &Methods[i]
		if o.Only != nil && !slices.Contains(o.Only, m.Name) {
			continue
		}
		if !r.available(m) {
			r.logf("%s: not in this natreveal yet, left out", m.Name)
			if o.Progress != nil {
				o.Progress.Printf("lab: %s: not in this natreveal yet, left out", m.Name)
			}
			continue
		}
		methods = append(methods, m)
	}
	res = &Result{Date: start.UTC().Format(time.RFC3339), Kernel: kernel(), Quick: o.Quick, N: o.N,
		PerfSeconds: o.PerfTime.Seconds(), Paths: lab.Paths, Baseline: map[string]float64{}}

	// natreveal off: the new-connection rate of each family, before and
	// after the methods (their mean is the baseline).
	families := map[int]bool{}
	for _, m := range methods {
		if m.ReadConn != nil {
			families[m.Family] = true
		}
	}
	if o.Progress != nil {
		r.tr = newTracker(o.Progress, methods, len(families))
		defer o.Progress.Done()
	}
	base := map[int][]float64{}
	measureOff := func() error {
		for _, f := range []int{4, 6} {
			if !families[f] {
				continue
			}
			r.tr.begin("", 0, fmt.Sprintf("IPv%d rate", f), 0)
			_, rt, err := r.perf(nil, f)
			r.tr.end()
			if err != nil {
				return err
			}
			base[f] = append(base[f], rt)
			r.logf("natreveal off, IPv%d: %.0f new connections/s", f, rt)
		}
		return nil
	}
	if err := measureOff(); err != nil {
		return nil, err
	}
	var results []*MethodResult
	for i, m := range methods {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		r.nth = i + 1
		mr, err := r.method(m)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", m.Name, err)
		}
		results = append(results, mr)
	}
	if err := measureOff(); err != nil {
		return nil, err
	}
	for f, rs := range base {
		var sum float64
		for _, x := range rs {
			sum += x
		}
		res.Baseline[fmt.Sprintf("ipv%d", f)] = sum / float64(len(rs))
	}
	for _, mr := range results {
		if mr.Perf != nil {
			mr.Perf.BaselineRate = res.Baseline[fmt.Sprintf("ipv%d", mr.Family)]
			if mr.Perf.BaselineRate > 0 {
				mr.Perf.Ratio = mr.Perf.Rate / mr.Perf.BaselineRate
			}
			mr.Perf.Level = perfLevel(mr.Perf.Ratio)
		}
		res.Methods = append(res.Methods, *mr)
	}
	res.Seconds = time.Since(start).Seconds()
	return res, nil
}

// available reports whether the natreveal binary knows m: `rules print`
// (pure, no kernel access with --mechanism native) refuses an unknown
// method with exit code 2 and "unknown method".
func (r *runner) available(m *Method) bool {
	if m.NATArgs == nil {
		return true
	}
	args := append([]string{"rules", "print", "--mechanism", "native", "--inside", inside(m)}, m.NATArgs...)
	out, err := exec.Command(r.o.Binary, args...).CombinedOutput()
	var ee *exec.ExitError
	return !(errors.As(err, &ee) && ee.ExitCode() == 2 && strings.Contains(string(out), "unknown method"))
}

func inside(m *Method) string {
	if m.Family == 6 {
		return lab.InsidePrefix6
	}
	return lab.InsidePrefix
}

func kernel() string {
	var u unix.Utsname
	if unix.Uname(&u) != nil {
		return ""
	}
	return unix.ByteSliceToString(u.Release[:])
}

// method measures one method: servers up, natreveal on, every transport
// on the clean path, N probes per path, the rate on the clean path.
func (r *runner) method(m *Method) (*MethodResult, error) {
	mr := &MethodResult{Name: m.Name, Column: m.Column, Family: m.Family, Carried: map[Transport]*Carried{},
		Success: map[lab.Path]*Success{}, ServerReads: m.ServerReads, KernelChange: m.KernelChange,
		Configured: m.Configured, Claim: m.Claim}
	if err := r.t.SetPath(lab.PathClean); err != nil {
		return nil, err
	}
	var srv *servers
	if m.ReadConn != nil {
		var err error
		if srv, err = startServers(r.t.Srv, r.st, m, r.cert, 0); err != nil {
			return nil, err
		}
		defer srv.close()
	}
	if m.NATPrep != nil {
		if err := m.NATPrep(r.t); err != nil {
			return nil, err
		}
	}
	if m.NATArgs != nil {
		args := append([]string{"--inside", inside(m)}, m.NATArgs...)
		r.logf("%s: natreveal run %s", m.Name, strings.Join(args, " "))
		d, err := lab.StartInNS(r.ctx, r.t.NAT, append([]string{r.o.Binary, "run", "--status-socket="}, args...), nil, 15*time.Second)
		if err != nil {
			return nil, err
		}
		defer d.Stop()
	}
	for _, tr := range m.Transports {
		r.tr.begin(m.Name, r.nth, "carried over "+string(tr), len(r.t.Hosts))
		c := r.carried(m, tr)
		r.tr.end()
		mr.Carried[tr] = c
		r.logf("%s: carried over %s: %v %v", m.Name, tr, c.OK, c.Hosts)
		if err := r.ctx.Err(); err != nil {
			return nil, err
		}
	}
	for _, p := range lab.Paths {
		if err := r.t.SetPath(p); err != nil {
			return nil, err
		}
		probes := 0
		if m.Custom == nil {
			if slices.Contains(m.Transports, TCP) || slices.Contains(m.Transports, HTTP) {
				probes += r.o.N
			}
			if slices.Contains(m.Transports, UDP) {
				probes += r.o.N
			}
		}
		r.tr.begin(m.Name, r.nth, string(p)+" path", probes)
		s, err := r.success(m)
		r.tr.end()
		if err != nil {
			return nil, err
		}
		mr.Success[p] = s
		r.logf("%s: %s path: %d/%d completed, HOST_ID right in %d", m.Name, p, s.Completed, s.Attempted, s.Revealed)
		if err := r.ctx.Err(); err != nil {
			return nil, err
		}
	}
	if err := r.t.SetPath(lab.PathClean); err != nil {
		return nil, err
	}
	if m.Custom != nil {
		ok := mr.Success[lab.PathClean].Revealed == mr.Success[lab.PathClean].Attempted
		mr.Notes = append(mr.Notes, fmt.Sprintf("lab: the sender HITs of both hosts arrived intact: %s", yesNo(ok)))
	}
	if _, ok := blockerFor(m.Name); ok {
		r.tr.begin(m.Name, r.nth, "blacklisting c1", 2*r.o.N)
		b, err := r.block(m)
		r.tr.end()
		if err != nil {
			return nil, err
		}
		mr.Block = b
		if b != nil {
			r.logf("%s: c1 blocked (%s): c1 %d/%d refused, c2 %d/%d completed", m.Name, b.Where,
				b.Blocked.Refused, b.Blocked.Attempted, b.Neighbour.Completed, b.Neighbour.Attempted)
		}
		if err := r.ctx.Err(); err != nil {
			return nil, err
		}
	}
	if m.ReadConn != nil && slices.Contains(m.Transports, TCP) {
		r.tr.begin(m.Name, r.nth, "new connections/s", 0)
		n, rt, err := r.perf(m, m.Family)
		r.tr.end()
		if err != nil {
			return nil, err
		}
		mr.Perf = &Perf{Conns: n, Rate: rt}
		r.logf("%s: %.0f new connections/s", m.Name, rt)
	}
	mr.Deployable = deployable(m, mr)
	return mr, nil
}

// carried: did each host's HOST_ID reach the server over tr?
func (r *runner) carried(m *Method, tr Transport) *Carried {
	c := &Carried{OK: true}
	for _, h := range r.t.Hosts {
		hr := HostResult{Host: h.Name, Want: hexID(h.HostID)}
		label := r.label()
		var err error
		switch tr {
		case TCP:
			err = tcpProbe(h.NS, m.Family, label, probeTimeout)
		case HTTP:
			err = httpProbe(h.NS, m.Family, label, false, r.roots, probeTimeout)
		case TLS:
			err = httpProbe(h.NS, m.Family, label, true, r.roots, probeTimeout)
		case UDP:
			err = udpSend(h.NS, m.Family, label)
		}
		if err == nil {
			id, found, completed, rerr := r.outcome(m, tr, label, time.Now().Add(udpWait))
			hr.Completed = completed
			if found {
				hr.Got = hexID(id)
			}
			hr.OK = completed && found && id == h.HostID
			if rerr != "" {
				hr.Err = rerr
			}
		} else {
			hr.Err = err.Error()
		}
		c.OK = c.OK && hr.OK
		c.Hosts = append(c.Hosts, hr)
		r.tr.probe()
	}
	return c
}

// outcome is what the server saw of a labelled probe: for UDP it waits
// until the datagram (and, IPv4, its raw copy) arrived or deadline.
func (r *runner) outcome(m *Method, tr Transport, label string, deadline time.Time) (id uint32, found, completed bool, err string) {
	if tr != UDP {
		rec, ok := r.st.conn(label)
		if !ok {
			return 0, false, false, errNoRecord.Error()
		}
		return rec.ID, rec.Found, true, rec.Err
	}
	for {
		d, ok := r.st.datagram(label)
		if ok && d.Sock && (m.Family == 6 || d.Raw) {
			id, found := m.ReadUDP(&d)
			return id, found, true, ""
		}
		if time.Now().After(deadline) {
			if ok && d.Sock {
				id, found := m.ReadUDP(&d)
				return id, found, true, ""
			}
			return 0, false, false, "datagram did not arrive"
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// success runs N probes (alternating hosts) over TCP and N over UDP where
// the method applies to them, on the router's current path.
func (r *runner) success(m *Method) (*Success, error) {
	s := &Success{}
	if m.Custom != nil {
		sent, arrived, revealed, err := m.Custom(r, r.o.N)
		if err != nil {
			return nil, err
		}
		s.Attempted, s.Completed, s.Revealed = sent, arrived, revealed
		s.finish()
		return s, nil
	}
	count := func(tr Transport) *Count {
		c := &Count{Attempted: r.o.N}
		var mu sync.Mutex
		labels := make([]string, r.o.N)
		parallel(r.o.N, probeWidth, func(i int) {
			h := r.t.Hosts[i%len(r.t.Hosts)]
			labels[i] = r.label()
			var err error
			switch tr {
			case UDP:
				err = udpSend(h.NS, m.Family, labels[i])
			case HTTP:
				err = httpProbe(h.NS, m.Family, labels[i], false, r.roots, probeTimeout)
			default:
				err = tcpProbe(h.NS, m.Family, labels[i], probeTimeout)
			}
			r.tr.probe()
			if err != nil {
				labels[i] = ""
				mu.Lock()
				if c.Error == "" {
					c.Error = err.Error()
				}
				mu.Unlock()
			}
		})
		deadline := time.Now().Add(udpWait)
		parallel(r.o.N, probeWidth, func(i int) {
			if labels[i] == "" {
				return
			}
			h := r.t.Hosts[i%len(r.t.Hosts)]
			id, found, completed, oerr := r.outcome(m, tr, labels[i], deadline)
			mu.Lock()
			defer mu.Unlock()
			if !completed && c.Error == "" {
				c.Error = oerr
			}
			if completed {
				c.Completed++
				if found && id == h.HostID {
					c.Revealed++
				}
			}
		})
		return c
	}
	switch {
	case slices.Contains(m.Transports, TCP):
		s.TCP = count(TCP)
	case slices.Contains(m.Transports, HTTP):
		s.TCP = count(HTTP) // an HTTP-only method (http-header): probes are HTTP requests
	}
	if slices.Contains(m.Transports, UDP) {
		s.UDP = count(UDP)
	}
	for _, c := range []*Count{s.TCP, s.UDP} {
		if c != nil {
			s.Attempted += c.Attempted
			s.Completed += c.Completed
			s.Revealed += c.Revealed
		}
	}
	s.finish()
	return s, nil
}

// perf measures the new-connection rate to a fresh port with m's reader
// in the server (m nil: natreveal off, nothing read).
func (r *runner) perf(m *Method, family int) (int64, float64, error) {
	r.perfN++
	port := portPerf + r.perfN
	srv, err := startServers(r.t.Srv, r.st, m, r.cert, port)
	if err != nil {
		return 0, 0, err
	}
	defer srv.close()
	n, rt := rate(r.t.Hosts, family, port, r.o.PerfTime, perfMax, perfWorkers)
	return n, rt, nil
}

// deployable says whether the method held on every path and over every
// transport it claims; a transport the analysis's claim marks as not
// supported (http-header over TLS: "No") does not count against it.
func deployable(m *Method, mr *MethodResult) string {
	if m.NeedsEndHosts {
		return "no"
	}
	var failed []string
	for _, p := range lab.Paths {
		s := mr.Success[p]
		if s == nil || s.Attempted == 0 || s.Completed < s.Attempted || s.Revealed < s.Attempted {
			failed = append(failed, string(p))
		}
	}
	var over []string
	counted := 0
	for _, tr := range Transports {
		c, ok := mr.Carried[tr]
		if !ok || yn(m.Claim.For(string(tr))) == "no" {
			continue
		}
		counted++
		if !c.OK {
			over = append(over, strings.ToUpper(string(tr)))
		}
	}
	if len(failed) == 0 && len(over) == 0 {
		return "yes"
	}
	if slices.Contains(failed, string(lab.PathClean)) || (counted > 0 && len(over) == counted) {
		return "no"
	}
	var not []string
	if len(failed) > 0 {
		not = append(not, "not on "+strings.Join(failed, ", "))
	}
	if len(over) > 0 {
		not = append(not, "not over "+strings.Join(over, ", "))
	}
	return "partly: " + strings.Join(not, ", ")
}

func hexID(id uint32) string { return fmt.Sprintf("0x%04x", id) }

func yesNo(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}

// warmup waits (at most 10 s) until each host reaches the server over IPv4
// and IPv6 (neighbour discovery, routes), so no measurement pays for it.
func (r *runner) warmup() error {
	srv, err := startServers(r.t.Srv, r.st, nil, r.cert, 0)
	if err != nil {
		return err
	}
	defer srv.close()
	deadline := time.Now().Add(10 * time.Second)
	for _, h := range r.t.Hosts {
		for _, f := range []int{4, 6} {
			for {
				err := tcpProbe(h.NS, f, "", 500*time.Millisecond)
				if err == nil {
					break
				}
				if time.Now().After(deadline) || r.ctx.Err() != nil {
					return fmt.Errorf("lab: %s cannot reach the server over IPv%d: %w", h.Name, f, err)
				}
				time.Sleep(50 * time.Millisecond)
			}
		}
	}
	return nil
}
