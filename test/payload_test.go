package test

// End to end: http-header and proxy-protocol through the kernel's
// masquerade, with a real net/http server and a go-proxyproto listener in
// the server namespace.

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"math/rand"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	proxyproto "github.com/pires/go-proxyproto"

	"github.com/natreveal/natreveal/lab"
)

const (
	httpAddr  = lab.ServerAddr + ":80"
	proxyAddr = lab.ServerAddr + ":7000"
	bannerAdr = lab.ServerAddr + ":7001"
)

// payloadLab is the lab for payload insertion. natreveal run itself makes
// conntrack liberal about TCP windows in the NAT (the rewritten flows'
// acknowledgements are out of the window conntrack computed from the
// client's numbering; README "payload insertion") and restores it at exit.
func payloadLab(t *testing.T) *lab.Lab { return newLab(t) }

// beLiberal reads nf_conntrack_tcp_be_liberal in the NAT namespace.
func beLiberal(t *testing.T, l *lab.Lab) string {
	t.Helper()
	out, err := l.Exec(l.NAT, "sysctl", "-n", "net.netfilter.nf_conntrack_tcp_be_liberal")
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(out)
}

func writeConfig(t *testing.T, yaml string) string {
	p := filepath.Join(t.TempDir(), "natreveal.yaml")
	if err := os.WriteFile(p, []byte(yaml), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// httpServer serves in the server namespace: / echoes the forwarding
// fields, /upload hashes the body, /download?n= sends n pseudo-random bytes.
type httpServer struct {
	mu    sync.Mutex
	conns map[string]int // remote address -> requests
}

func startHTTP(t *testing.T, l *lab.Lab) *httpServer {
	hs := &httpServer{conns: map[string]int{}}
	var ln net.Listener
	if err := lab.Do(l.Srv, func() (err error) { ln, err = net.Listen("tcp4", httpAddr); return }); err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	fields := func(r *http.Request) string {
		return fmt.Sprintf("xff=%q fwd=%q", r.Header.Values("X-Forwarded-For"), r.Header.Values("Forwarded"))
	}
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		hs.mu.Lock()
		hs.conns[r.RemoteAddr]++
		hs.mu.Unlock()
		fmt.Fprint(w, fields(r))
	})
	mux.HandleFunc("/upload", func(w http.ResponseWriter, r *http.Request) {
		h := sha256.New()
		n, _ := io.Copy(h, r.Body)
		fmt.Fprintf(w, "%s %d %s", hex.EncodeToString(h.Sum(nil)), n, fields(r))
	})
	mux.HandleFunc("/download", func(w http.ResponseWriter, r *http.Request) {
		var n int64
		fmt.Sscan(r.URL.Query().Get("n"), &n)
		io.CopyN(w, rand.New(rand.NewSource(n)), n)
	})
	srv := &http.Server{Handler: mux}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	return hs
}

// client returns an HTTP client whose connections start in namespace ns;
// one connection at most, kept alive.
func client(ns string) *http.Client {
	tr := &http.Transport{
		MaxConnsPerHost: 1,
		DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			var c net.Conn
			err := lab.Do(ns, func() (err error) {
				c, err = (&net.Dialer{}).DialContext(ctx, network, addr)
				return
			})
			return c, err
		},
	}
	return &http.Client{Transport: tr, Timeout: 60 * time.Second}
}

func get(t *testing.T, c *http.Client, url string, hdr map[string]string) string {
	t.Helper()
	req, _ := http.NewRequest("GET", url, nil)
	for k, v := range hdr {
		req.Header.Add(k, v)
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func sha(b []byte) string { s := sha256.Sum256(b); return hex.EncodeToString(s[:]) }

const httpConfig = `inside: [100.64.0.0/24]
methods: [http-header]
http_header:
  ports: [80]
  fields: [x-forwarded-for, forwarded]
`

func TestHTTPHeader(t *testing.T) {
	l := payloadLab(t)
	hs := startHTTP(t, l)
	if v := beLiberal(t, l); v != "0" {
		t.Fatalf("nf_conntrack_tcp_be_liberal is %s before start, want the default 0", v)
	}
	d := startDaemon(t, l, "--config", writeConfig(t, httpConfig))
	if v := beLiberal(t, l); v != "1" {
		t.Errorf("natreveal run did not set nf_conntrack_tcp_be_liberal (%s)", v)
	}
	url := "http://" + httpAddr

	for _, c := range []struct{ ns, id string }{{l.C1, "_0x0002"}, {l.C2, "_0x0003"}} {
		got := get(t, client(c.ns), url+"/", nil)
		want := fmt.Sprintf(`xff=["%s"] fwd=["for=\"%s\""]`, c.id, c.id)
		if got != want {
			t.Errorf("%s: server saw %s, want %s", c.ns, got, want)
		}
	}
	// A client forging both fields (twice) is overridden.
	cl := client(l.C1)
	req, _ := http.NewRequest("GET", url+"/", nil)
	req.Header["X-Forwarded-For"] = []string{"6.6.6.6", "7.7.7.7"}
	req.Header["Forwarded"] = []string{"for=6.6.6.6"}
	resp, err := cl.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if want := `xff=["_0x0002"] fwd=["for=\"_0x0002\""]`; string(b) != want {
		t.Errorf("forged fields: server saw %s, want %s", b, want)
	}

	// Keep-alive: 100 requests on one connection, each with the fields.
	hs.mu.Lock()
	clear(hs.conns)
	hs.mu.Unlock()
	ka := client(l.C2)
	for i := 0; i < 100; i++ {
		if got := get(t, ka, url+"/", map[string]string{"X-Forwarded-For": "1.2.3.4"}); !strings.HasPrefix(got, `xff=["_0x0003"]`) {
			t.Fatalf("keep-alive request %d: %s", i, got)
		}
	}
	hs.mu.Lock()
	if len(hs.conns) != 1 {
		t.Errorf("keep-alive: %d connections, want 1 (%v)", len(hs.conns), hs.conns)
	}
	hs.mu.Unlock()

	bulk(t, ka, url, "_0x0003")
	// Another download on the same connection: once the kernel holds the
	// offset, neither the server's segments nor the client's
	// acknowledgements are queued (stream/kernelack.go, the pureack chain).
	// What is queued is the request and the segments before the handoff
	// (20-80 here); queueing the acknowledgements too was 400 or more.
	q0 := queuedPackets(t, l)
	download(t, ka, url, 32<<20)
	if n := queuedPackets(t, l) - q0; n > 150 {
		t.Errorf("a 32 MiB download queued %d packets, want at most 150", n)
	} else {
		t.Logf("a 32 MiB download queued %d packets", n)
	}
	// An upload on the same connection, then another request: the body's
	// segments skip the queue once the kernel holds the offset (the uploads
	// set, stream/upload.go); what is queued is the request, the segments
	// before the server acknowledged it and the body's last 64 KiB: 3-15
	// packets in the lab, 152 once on a loaded machine, where the handoff
	// waits for the flow's verdicts in flight while the client keeps
	// sending. Queueing the whole body was about 19 per MiB, 600 or more for
	// 32 MiB: the bound is half of that.
	q0 = queuedPackets(t, l)
	upload(t, ka, url, 32<<20, "_0x0003")
	if n := queuedPackets(t, l) - q0; n > 300 {
		t.Errorf("a 32 MiB upload queued %d packets, want at most 300", n)
	} else {
		t.Logf("a 32 MiB upload queued %d packets", n)
	}
	if got := get(t, ka, url+"/", nil); !strings.HasPrefix(got, `xff=["_0x0003"]`) {
		t.Errorf("the request after the upload: server saw %s", got)
	}
	hs.mu.Lock()
	if len(hs.conns) != 1 {
		t.Errorf("keep-alive: %d connections after the upload, want 1 (%v)", len(hs.conns), hs.conns)
	}
	hs.mu.Unlock()
	st := d.stop(t)
	if v := beLiberal(t, l); v != "0" {
		t.Errorf("nf_conntrack_tcp_be_liberal is %s after stop, want 0 restored", v)
	}
	t.Logf("counters: %v", st)
	if st["http-requests"] < 105 || st["select-flows"] < 4 || st["http-forged-removed"] < 103 {
		t.Errorf("counters %v", st)
	}
	// The bulk transfers' server segments went to the kernel's sequence
	// adjustment, and came back for the next request (stream/kernelack.go).
	if st["select-kernel-acks"] < 2 || st["select-user-acks"] < 1 || st["select-kernel-failed"] != 0 {
		t.Errorf("kernel acks %d, back %d, failed %d", st["select-kernel-acks"], st["select-user-acks"], st["select-kernel-failed"])
	}
	if st["select-uploads"] < 1 || st["select-upload-failed"] != 0 {
		t.Errorf("uploads %d, failed %d", st["select-uploads"], st["select-upload-failed"])
	}
}

// upload posts size pseudo-random bytes with a Content-Length; the server
// must have the same bytes and the HOST_ID.
func upload(t *testing.T, c *http.Client, url string, size int, id string) {
	t.Helper()
	data := make([]byte, size)
	rand.New(rand.NewSource(int64(size))).Read(data)
	resp, err := c.Post(url+"/upload", "application/octet-stream", bytes.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if w := fmt.Sprintf(`%s %d xff=["%s"]`, sha(data), size, id); !strings.HasPrefix(string(b), w) {
		t.Errorf("upload: server answered %s, want %s", b, w)
	}
}

// bulk uploads (Content-Length and chunked) and downloads 10 MiB.
func bulk(t *testing.T, c *http.Client, url, id string) {
	t.Helper()
	const size = 10 << 20
	data := make([]byte, size)
	rand.New(rand.NewSource(1)).Read(data)
	want := sha(data)
	for _, chunked := range []bool{false, true} {
		var body io.Reader = bytes.NewReader(data)
		if chunked {
			body = io.MultiReader(bytes.NewReader(data)) // unknown length: chunked
		}
		req, _ := http.NewRequest("POST", url+"/upload", body)
		if chunked {
			req.ContentLength = -1
		}
		resp, err := c.Do(req)
		if err != nil {
			t.Fatalf("upload (chunked %v): %v", chunked, err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if w := fmt.Sprintf(`%s %d xff=["%s"]`, want, size, id); !strings.HasPrefix(string(b), w) {
			t.Errorf("upload (chunked %v): server answered %s, want %s", chunked, b, w)
		}
	}
	download(t, c, url, size)
}

// download fetches size pseudo-random bytes and checks them.
func download(t *testing.T, c *http.Client, url string, size int64) {
	t.Helper()
	resp, err := c.Get(fmt.Sprintf("%s/download?n=%d", url, size))
	if err != nil {
		t.Fatal(err)
	}
	h := sha256.New()
	n, err := io.Copy(h, resp.Body)
	resp.Body.Close()
	exp := sha256.New()
	io.CopyN(exp, rand.New(rand.NewSource(size)), size)
	if err != nil || n != size || !bytes.Equal(h.Sum(nil), exp.Sum(nil)) {
		t.Errorf("download: %d bytes, %v, hash mismatch %v", n, err, !bytes.Equal(h.Sum(nil), exp.Sum(nil)))
	}
}

// Loss in the path (a bounded random drop in the NAT's forward hook, before
// the queue): transfers stay intact.
func TestHTTPHeaderLoss(t *testing.T) {
	l := payloadLab(t)
	startHTTP(t, l)
	// 2 % of the forwarded packets, both directions; the transfer bounds
	// the count.
	if err := l.Nft(l.NAT, `table inet loss {
	chain lose {
		type filter hook forward priority filter; policy accept;
		numgen random mod 100 < 2 counter drop
	}
}
`); err != nil {
		t.Fatal(err)
	}
	d := startDaemon(t, l, "--config", writeConfig(t, httpConfig))
	bulk(t, client(l.C1), "http://"+httpAddr, "_0x0002")
	out, _ := l.Exec(l.NAT, "nft", "list", "chain", "inet", "loss", "lose")
	t.Logf("loss rule: %s", out)
	st := d.stop(t)
	t.Logf("counters: %v", st)
	if !strings.Contains(out, "counter packets") || strings.Contains(out, "counter packets 0 ") {
		t.Errorf("no packet was dropped:\n%s", out)
	}
	if st["select-kernel-acks"] < 1 {
		t.Errorf("no flow's server segments went to the kernel: %v", st)
	}
}

// A flow that is not selected is never queued after its SYN.
func TestNotSelectedNotQueued(t *testing.T) {
	l := payloadLab(t)
	s := listen(t, l) // :8080, not selected
	d := startDaemon(t, l, "--config", writeConfig(t, httpConfig))
	connect(t, s, l.C1, "unselected", 2<<20)
	st := d.stop(t)
	if st["packets"] > 2 || st["select-flows"] != 0 {
		t.Errorf("an unselected 2 MiB flow was queued: %v", st)
	}
}

// proxyServer accepts PROXY-protocol connections: the reply names the
// header's source and UNIQUE_ID TLV, then the SHA-256 of what followed. On
// the banner port it speaks first.
func proxyServer(t *testing.T, l *lab.Lab, addr string, banner bool) {
	var ln net.Listener
	if err := lab.Do(l.Srv, func() (err error) { ln, err = net.Listen("tcp4", addr); return }); err != nil {
		t.Fatal(err)
	}
	pl := &proxyproto.Listener{Listener: ln, Policy: func(net.Addr) (proxyproto.Policy, error) { return proxyproto.REQUIRE, nil }}
	t.Cleanup(func() { pl.Close() })
	go func() {
		for {
			c, err := pl.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				c.SetDeadline(time.Now().Add(60 * time.Second))
				pc := c.(*proxyproto.Conn)
				hdr := pc.ProxyHeader() // reads the header
				id := ""
				if hdr != nil {
					tlvs, _ := hdr.TLVs()
					for _, tl := range tlvs {
						if tl.Type == proxyproto.PP2_TYPE_UNIQUE_ID {
							id = string(tl.Value)
						}
					}
				}
				if banner {
					fmt.Fprintf(c, "220 hello %s %s\r\n", pc.RemoteAddr(), id)
				}
				h := sha256.New()
				n, _ := io.Copy(h, c)
				fmt.Fprintf(c, "%s %s %d %s", pc.RemoteAddr(), id, n, hex.EncodeToString(h.Sum(nil)))
			}()
		}
	}()
}

func ppDial(t *testing.T, ns, addr string) *net.TCPConn {
	var c net.Conn
	if err := lab.Do(ns, func() (err error) { c, err = net.DialTimeout("tcp4", addr, 10*time.Second); return }); err != nil {
		t.Fatal(err)
	}
	c.SetDeadline(time.Now().Add(60 * time.Second))
	return c.(*net.TCPConn)
}

func TestProxyProtocol(t *testing.T) {
	l := payloadLab(t)
	proxyServer(t, l, proxyAddr, false)
	proxyServer(t, l, bannerAdr, true)
	d := startDaemon(t, l, "--config", writeConfig(t, `inside: [100.64.0.0/24]
methods: [proxy-protocol]
proxy_protocol:
  version: 2
  crc32c: true
  destinations: [198.51.100.0/24:7000, 198.51.100.1:7001+ack]
`))
	data := make([]byte, 10<<20)
	rand.New(rand.NewSource(2)).Read(data)
	for _, c := range []struct{ ns, ip, id string }{{l.C1, lab.Client1, "_0x0002"}, {l.C2, lab.Client2, "_0x0003"}} {
		conn := ppDial(t, c.ns, proxyAddr)
		if _, err := conn.Write(data); err != nil {
			t.Fatal(err)
		}
		conn.CloseWrite()
		b, err := io.ReadAll(conn)
		conn.Close()
		want := fmt.Sprintf("%s:%s %s %d %s", c.ip, strings.Split(conn.LocalAddr().String(), ":")[1], c.id, len(data), sha(data))
		if err != nil || string(b) != want {
			t.Errorf("%s: server answered %q (%v), want %q", c.ns, b, err, want)
		}
	}
	// Server speaks first: the header rides on the handshake ACK.
	conn := ppDial(t, l.C2, bannerAdr)
	br := bufio.NewReader(conn)
	line, err := br.ReadString('\n')
	if err != nil || !strings.Contains(line, lab.Client2+":") || !strings.HasSuffix(line, " _0x0003\r\n") {
		t.Fatalf("banner %q, %v", line, err)
	}
	conn.Write([]byte("QUIT\r\n"))
	conn.CloseWrite()
	rest, _ := io.ReadAll(br)
	conn.Close()
	if !strings.Contains(string(rest), " _0x0003 6 ") {
		t.Errorf("after banner: %q", rest)
	}
	// A client's own PROXY header: the connection is reset, at both ends:
	// the client sees the reset with its next segment (its FIN) or its
	// first retransmission (the closed server's RST answers natreveal's
	// bare ACK), not at its deadline.
	for _, closeWrite := range []bool{true, false} {
		conn = ppDial(t, l.C1, proxyAddr)
		start := time.Now()
		conn.Write([]byte("PROXY TCP4 6.6.6.6 198.51.100.1 1 7000\r\nhello"))
		if closeWrite {
			conn.CloseWrite()
		}
		b, err := io.ReadAll(conn)
		took := time.Since(start)
		conn.Close()
		if strings.Contains(string(b), "6.6.6.6") || len(b) != 0 {
			t.Errorf("forged PROXY header passed: %q", b)
		}
		if !errors.Is(err, syscall.ECONNRESET) || took > 5*time.Second {
			t.Errorf("forged PROXY header (FIN sent %v): the client read %v after %v, want a reset within 5s", closeWrite, err, took)
		}
		t.Logf("forged PROXY header (FIN sent %v): the client was reset after %v", closeWrite, took)
	}
	// The same after the banner: the header went on the handshake ACK, and
	// the server's RCV.NXT is past it.
	conn = ppDial(t, l.C2, bannerAdr)
	br = bufio.NewReader(conn)
	if line, err := br.ReadString('\n'); err != nil || !strings.HasSuffix(line, " _0x0003\r\n") {
		t.Fatalf("banner %q, %v", line, err)
	}
	start := time.Now()
	conn.Write([]byte("PROXY TCP4 6.6.6.6 198.51.100.1 1 7001\r\nQUIT\r\n"))
	rest, err = io.ReadAll(br)
	took := time.Since(start)
	conn.Close()
	if len(rest) != 0 || !errors.Is(err, syscall.ECONNRESET) || took > 5*time.Second {
		t.Errorf("forged PROXY header after the banner: the client read %q, %v after %v, want a reset within 5s", rest, err, took)
	}
	t.Logf("forged PROXY header after the banner: the client was reset after %v", took)
	st := d.stop(t)
	t.Logf("counters: %v", st)
	if st["proxy-written"] < 6 || st["proxy-forged-reset"] < 3 {
		t.Errorf("counters %v", st)
	}
	// The two bulk flows went to the kernel's sequence adjustment once their
	// header was acknowledged: a handful of packets per flow through the
	// queue, not the 20 MiB (stream/handoff.go). The banner flow may end before
	// its verdicts ever settle (QUIT, FIN and the server's answer in flight
	// together), and then it ends in user space, which is as correct.
	if st["select-kernel"] < 2 || st["select-kernel-failed"] != 0 {
		t.Errorf("handoffs: %d, failed %d; counters %v", st["select-kernel"], st["select-kernel-failed"], st)
	}
	// 10 MiB is about 160 GSO packets per flow: 40 proves the handoff while
	// leaving room for packets queued while verdicts were still in flight.
	if perFlow := st["packets"] / max(st["select-flows"], 1); perFlow > 40 {
		t.Errorf("%d packets queued per selected flow, want a handful; counters %v", perFlow, st)
	}
}

// Loss in the path (2 % random drop in the NAT's forward hook, before the
// queue, both directions) around the PROXY header and the handoff to the
// kernel: every transfer stays intact.
func TestProxyProtocolLoss(t *testing.T) {
	l := payloadLab(t)
	proxyServer(t, l, proxyAddr, false)
	if err := l.Nft(l.NAT, `table inet loss {
	chain lose {
		type filter hook forward priority filter; policy accept;
		numgen random mod 100 < 2 counter drop
	}
}
`); err != nil {
		t.Fatal(err)
	}
	d := startDaemon(t, l, "--config", writeConfig(t, `inside: [100.64.0.0/24]
methods: [proxy-protocol]
proxy_protocol:
  destinations: [198.51.100.0/24:7000]
`))
	data := make([]byte, 10<<20)
	rand.New(rand.NewSource(3)).Read(data)
	for i := range 8 {
		// Small first writes too: the header's segment and the ones after
		// it are the ones whose loss matters.
		conn := ppDial(t, l.C1, proxyAddr)
		for _, part := range [][]byte{data[:i+1], data[i+1 : 1000], data[1000:]} {
			if _, err := conn.Write(part); err != nil {
				t.Fatal(err)
			}
		}
		conn.CloseWrite()
		b, err := io.ReadAll(conn)
		conn.Close()
		want := fmt.Sprintf("%s:%s _0x0002 %d %s", lab.Client1, strings.Split(conn.LocalAddr().String(), ":")[1], len(data), sha(data))
		if err != nil || string(b) != want {
			t.Errorf("transfer %d: server answered %q (%v), want %q", i, b, err, want)
		}
	}
	out, _ := l.Exec(l.NAT, "nft", "list", "chain", "inet", "loss", "lose")
	t.Logf("loss rule: %s", out)
	st := d.stop(t)
	t.Logf("counters: %v", st)
	if !strings.Contains(out, "counter packets") || strings.Contains(out, "counter packets 0 ") {
		t.Errorf("no packet was dropped:\n%s", out)
	}
	if st["select-kernel"] == 0 {
		t.Errorf("no flow went to the kernel: %v", st)
	}
}

// The bulk throughput of a selected flow as a ratio to the same transfer
// with natreveal off, in one run (issue 4, "Done when").
func TestSelectedThroughputRatio(t *testing.T) {
	l := payloadLab(t)
	startHTTP(t, l)
	const size = 32 << 20
	url := fmt.Sprintf("http://%s/download?n=%d", httpAddr, size)
	run := func() time.Duration {
		c := client(l.C1)
		start := time.Now()
		resp, err := c.Get(url)
		if err != nil {
			t.Fatal(err)
		}
		n, _ := io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if n != size {
			t.Fatalf("got %d bytes", n)
		}
		return time.Since(start)
	}
	off := run()
	d := startDaemon(t, l, "--config", writeConfig(t, httpConfig))
	on := run()
	d.stop(t)
	mbps := func(d time.Duration) float64 { return float64(size) * 8 / d.Seconds() / 1e6 }
	t.Logf("download %d MiB: natreveal off %.0f Mbit/s, selected flow %.0f Mbit/s, ratio %.2f",
		size>>20, mbps(off), mbps(on), off.Seconds()/on.Seconds())
}

// queuedPackets is how many packets the NAT's queues have taken so far: the
// sum of id_sequence, the last packet id, over its queues
// (/proc/net/netfilter/nfnetlink_queue, per network namespace).
func queuedPackets(t *testing.T, l *lab.Lab) uint64 {
	t.Helper()
	out, err := l.Exec(l.NAT, "cat", "/proc/net/netfilter/nfnetlink_queue")
	if err != nil {
		t.Fatal(err)
	}
	var n uint64
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		f := strings.Fields(line)
		if len(f) < 8 {
			continue
		}
		v, err := strconv.ParseUint(f[7], 10, 64)
		if err != nil {
			t.Fatalf("nfnetlink_queue: %q: %v", line, err)
		}
		n += v
	}
	return n
}
