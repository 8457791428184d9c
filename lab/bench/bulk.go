package bench

// Selected flows (issue 6, issue 4): bulk throughput of one connection whose
// every packet goes through the daemon in both directions (http-header,
// proxy-protocol), against the same transfer with natreveal off.

import (
	"bufio"
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"sync"
	"time"

	proxyproto "github.com/pires/go-proxyproto"

	"github.com/natreveal/natreveal/internal/progress"
	"github.com/natreveal/natreveal/lab"
)

const (
	bulkHTTPPort  = 80
	bulkProxyPort = 7000
)

// bulkMode is one way a bulk transfer crosses the NAT.
type bulkMode struct {
	name   string
	config string // natreveal configuration (YAML); empty: no daemon
	proxy  bool   // the transfer speaks the bench's framing behind a PROXY listener, not HTTP
}

var allBulkModes = []bulkMode{
	{name: "kernel"},
	{name: "http-header", config: `inside: [` + lab.InsidePrefix + `]
methods: [http-header]
http_header:
  ports: [80]
  fields: [x-forwarded-for]
`},
	{name: "proxy-protocol", proxy: true, config: `inside: [` + lab.InsidePrefix + `]
methods: [proxy-protocol]
proxy_protocol:
  version: 2
  destinations: [198.51.100.1:7000]
`},
}

// bulkSample is one mode's transfers in one round.
type bulkSample struct {
	Down         float64           `json:"down_mbit_s"`
	Up           float64           `json:"up_mbit_s"`
	HTTPDown     float64           `json:"http_down_mbit_s,omitempty"` // kernel only: the HTTP transfers
	HTTPUp       float64           `json:"http_up_mbit_s,omitempty"`
	QueuedPerMiB float64           `json:"queued_per_mib"` // packets through the queue per MiB moved (both directions)
	CPUPerMiB    float64           `json:"cpu_ms_per_mib"` // daemon CPU (all threads) per MiB moved
	Drops        uint64            `json:"kernel_drops"`
	Stats        map[string]uint64 `json:"daemon_stats,omitempty"`
}

// BulkResult is a bulk mode's median over the rounds and its ratio to the
// same transfers with natreveal off.
type BulkResult struct {
	Mode         string       `json:"mode"`
	MiB          int          `json:"mib_per_transfer"`
	Down         float64      `json:"down_mbit_s"`
	DownRatio    float64      `json:"down_ratio"`
	Up           float64      `json:"up_mbit_s"`
	UpRatio      float64      `json:"up_ratio"`
	QueuedPerMiB float64      `json:"queued_per_mib"`
	CPUPerMiB    float64      `json:"cpu_ms_per_mib"`
	Drops        uint64       `json:"kernel_drops"`
	Rounds       []bulkSample `json:"rounds"`
}

// bulkServer serves both transfer kinds in the server namespace: HTTP on
// :80 (GET /download?n= sends n bytes, POST /upload reads the body and
// answers its length) and, behind a PROXY protocol listener on :7000, the
// bench's framing: 'd' + 8-byte n asks for n bytes, 'u' + 8-byte n sends n
// bytes and gets one byte back.
type bulkServer struct {
	hs *http.Server
	pl net.Listener
	wg sync.WaitGroup
}

var bulkData = func() []byte {
	b := make([]byte, 1<<20)
	for i := range b {
		b[i] = byte(i*7 + i>>8)
	}
	return b
}()

func writeN(w io.Writer, n int64) error {
	for n > 0 {
		k := min(n, int64(len(bulkData)))
		if _, err := w.Write(bulkData[:k]); err != nil {
			return err
		}
		n -= k
	}
	return nil
}

func startBulkServer(ns string) (*bulkServer, error) {
	s := &bulkServer{}
	var hl, pl net.Listener
	err := lab.Do(ns, func() (err error) {
		if hl, err = net.Listen("tcp4", fmt.Sprintf("%s:%d", lab.ServerAddr, bulkHTTPPort)); err != nil {
			return err
		}
		pl, err = net.Listen("tcp4", fmt.Sprintf("%s:%d", lab.ServerAddr, bulkProxyPort))
		return err
	})
	if err != nil {
		if hl != nil {
			hl.Close()
		}
		return nil, err
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/download", func(w http.ResponseWriter, r *http.Request) {
		n, _ := strconv.ParseInt(r.URL.Query().Get("n"), 10, 64)
		w.Header().Set("Content-Length", strconv.FormatInt(n, 10))
		writeN(w, n)
	})
	mux.HandleFunc("/upload", func(w http.ResponseWriter, r *http.Request) {
		n, _ := io.Copy(io.Discard, r.Body)
		fmt.Fprint(w, n)
	})
	s.hs = &http.Server{Handler: mux}
	go s.hs.Serve(hl)
	// A missing header (natreveal off) is fine: USE passes such connections on.
	s.pl = &proxyproto.Listener{Listener: pl}
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		for {
			c, err := s.pl.Accept()
			if err != nil {
				return
			}
			go serveFramed(c)
		}
	}()
	return s, nil
}

func serveFramed(c net.Conn) {
	defer c.Close()
	br := bufio.NewReaderSize(c, 256<<10)
	var hdr [9]byte
	for {
		if _, err := io.ReadFull(br, hdr[:]); err != nil {
			return
		}
		n := int64(binary.BigEndian.Uint64(hdr[1:]))
		switch hdr[0] {
		case 'd':
			if writeN(c, n) != nil {
				return
			}
		case 'u':
			if _, err := io.CopyN(io.Discard, br, n); err != nil {
				return
			}
			if _, err := c.Write([]byte{1}); err != nil {
				return
			}
		default:
			return
		}
	}
}

func (s *bulkServer) close() {
	s.hs.Close()
	s.pl.Close()
	s.wg.Wait()
}

// dialNS connects from namespace ns.
func dialNS(ns, addr string) (net.Conn, error) {
	var c net.Conn
	err := lab.Do(ns, func() (err error) {
		c, err = net.DialTimeout("tcp4", addr, 5*time.Second)
		return
	})
	return c, err
}

// transfer moves n bytes down, then n bytes up, over one connection, and
// returns both rates in Mbit/s.
func transfer(ns string, proxy bool, n int64) (down, up float64, err error) {
	port := bulkHTTPPort
	if proxy {
		port = bulkProxyPort
	}
	c, err := dialNS(ns, fmt.Sprintf("%s:%d", lab.ServerAddr, port))
	if err != nil {
		return 0, 0, err
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(2 * time.Minute))
	br := bufio.NewReaderSize(c, 256<<10)
	mbps := func(d time.Duration) float64 { return float64(n) * 8 / d.Seconds() / 1e6 }

	t0 := time.Now()
	if proxy {
		var hdr [9]byte
		hdr[0] = 'd'
		binary.BigEndian.PutUint64(hdr[1:], uint64(n))
		if _, err := c.Write(hdr[:]); err != nil {
			return 0, 0, err
		}
		if _, err := io.CopyN(io.Discard, br, n); err != nil {
			return 0, 0, fmt.Errorf("download: %w", err)
		}
	} else {
		fmt.Fprintf(c, "GET /download?n=%d HTTP/1.1\r\nHost: bench\r\n\r\n", n)
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			return 0, 0, fmt.Errorf("download: %w", err)
		}
		got, err := io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if err != nil || got != n {
			return 0, 0, fmt.Errorf("download: %d of %d bytes: %v", got, n, err)
		}
	}
	down = mbps(time.Since(t0))

	t0 = time.Now()
	if proxy {
		var hdr [9]byte
		hdr[0] = 'u'
		binary.BigEndian.PutUint64(hdr[1:], uint64(n))
		if _, err := c.Write(hdr[:]); err != nil {
			return 0, 0, err
		}
		if err := writeN(c, n); err != nil {
			return 0, 0, fmt.Errorf("upload: %w", err)
		}
		if _, err := io.ReadFull(br, hdr[:1]); err != nil {
			return 0, 0, fmt.Errorf("upload: %w", err)
		}
	} else {
		fmt.Fprintf(c, "POST /upload HTTP/1.1\r\nHost: bench\r\nContent-Length: %d\r\n\r\n", n)
		if err := writeN(c, n); err != nil {
			return 0, 0, fmt.Errorf("upload: %w", err)
		}
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			return 0, 0, fmt.Errorf("upload: %w", err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if string(b) != strconv.FormatInt(n, 10) {
			return 0, 0, fmt.Errorf("upload: server got %q of %d bytes", b, n)
		}
	}
	up = mbps(time.Since(t0))
	return down, up, nil
}

// measureBulk runs one bulk mode once.
func measureBulk(ctx context.Context, l *lab.Lab, m bulkMode, binary, dir string, mib int) (s bulkSample, err error) {
	var d *daemon
	if m.config != "" {
		if d, err = startConfigDaemon(l, m, binary, dir); err != nil {
			return s, err
		}
		defer func() {
			if d != nil {
				d.Kill()
			}
		}()
	}
	n := int64(mib) << 20
	q0, err := readQueueStats(l.NAT)
	if err != nil {
		return s, err
	}
	var cpu0 uint64
	if d != nil {
		cpu0 = cpuNanos(d.Pid())
	}
	if m.config == "" {
		// Kernel only: both framings, each the baseline of its mode.
		if s.Down, s.Up, err = transfer(l.C1, true, n); err != nil {
			return s, err
		}
		if s.HTTPDown, s.HTTPUp, err = transfer(l.C1, false, n); err != nil {
			return s, err
		}
	} else if s.Down, s.Up, err = transfer(l.C1, m.proxy, n); err != nil {
		return s, err
	}
	q1, _ := readQueueStats(l.NAT)
	moved := 2 * float64(n) / (1 << 20)
	if d != nil {
		s.CPUPerMiB = float64(cpuNanos(d.Pid())-cpu0) / 1e6 / moved
		s.QueuedPerMiB = float64(q1.queued-q0.queued) / moved
	}
	s.Drops = q1.dropped - q0.dropped
	if d != nil {
		st, err := d.stop()
		d = nil
		if err != nil {
			return s, err
		}
		s.Stats = st
	}
	return s, ctx.Err()
}

// runBulk alternates the bulk modes over the rounds (the first is kernel
// only) and returns their medians with ratios to kernel only.
func runBulk(ctx context.Context, l *lab.Lab, modes []bulkMode, binary, dir string, rounds, mib int) ([]BulkResult, error) {
	srv, err := startBulkServer(l.Srv)
	if err != nil {
		return nil, err
	}
	defer srv.close()
	// Warm up (the server's first connections, page cache, conntrack).
	if _, _, err := transfer(l.C1, false, 4<<20); err != nil {
		return nil, fmt.Errorf("bulk warm-up: %w", err)
	}
	samples := make([][]bulkSample, len(modes))
	pl := progress.Stderr()
	defer pl.Done()
	for r := 0; r < rounds; r++ {
		for k := range modes {
			i := (r + k) % len(modes)
			stepProgress(pl, r, rounds, k, len(modes), "bulk "+modes[i].name)
			s, err := measureBulk(ctx, l, modes[i], binary, dir, mib)
			if err != nil {
				return nil, fmt.Errorf("round %d, bulk %s: %w", r+1, modes[i].name, err)
			}
			pl.Printf("round %d bulk %-14s down %6.0f Mbit/s  up %6.0f Mbit/s  queued %6.0f/MiB  cpu %5.2f ms/MiB  drops %d\n",
				r+1, modes[i].name, s.Down, s.Up, s.QueuedPerMiB, s.CPUPerMiB, s.Drops)
			samples[i] = append(samples[i], s)
		}
	}
	var res []BulkResult
	for i, m := range modes {
		ss := samples[i]
		b := BulkResult{Mode: m.name, MiB: mib, Rounds: ss}
		b.Down = median(ss, func(s bulkSample) float64 { return s.Down })
		b.Up = median(ss, func(s bulkSample) float64 { return s.Up })
		b.QueuedPerMiB = median(ss, func(s bulkSample) float64 { return s.QueuedPerMiB })
		b.CPUPerMiB = median(ss, func(s bulkSample) float64 { return s.CPUPerMiB })
		for _, s := range ss {
			b.Drops += s.Drops
		}
		res = append(res, b)
	}
	// Each mode against the kernel-only transfers of its own framing; the
	// ratio is the median of the per-round ratios (drift cancels).
	k := samples[0]
	for i := range res {
		r := &res[i]
		if i == 0 {
			r.DownRatio, r.UpRatio = 1, 1
			continue
		}
		var dr, ur []float64
		for j, s := range samples[i] {
			kd, ku := k[j].Down, k[j].Up
			if !modes[i].proxy {
				kd, ku = k[j].HTTPDown, k[j].HTTPUp
			}
			dr = append(dr, s.Down/kd)
			ur = append(ur, s.Up/ku)
		}
		r.DownRatio = median(dr, func(x float64) float64 { return x })
		r.UpRatio = median(ur, func(x float64) float64 { return x })
	}
	return res, nil
}
