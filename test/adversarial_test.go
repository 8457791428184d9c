package test

// The adversarial suite (issue 17): an inside host sends raw bytes through
// the NAT running natreveal; whatever it sends, no request reaches a server
// with its own X-Forwarded-For and without natreveal's, and no forged PROXY
// header reaches a PROXY server; removed bytes never hang a connection.

import (
	"errors"
	"fmt"
	"io"
	"net"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/natreveal/natreveal/lab"
)

const forged = "6.6.6.6"

// rawExchange sends b from ns to addr (in pieces of seg bytes, 0: at once)
// and returns what the server answered within wait (halfClose: after
// closing its sending side).
func rawExchange(t *testing.T, ns, addr string, b []byte, seg int, wait time.Duration, halfClose bool) string {
	t.Helper()
	out, _ := rawExchangeErr(t, ns, addr, b, seg, wait, halfClose)
	return out
}

// rawExchangeErr is rawExchange that also returns how reading ended (nil:
// the server closed; ECONNRESET: the connection was reset; a timeout: wait
// passed).
func rawExchangeErr(t *testing.T, ns, addr string, b []byte, seg int, wait time.Duration, halfClose bool) (string, error) {
	t.Helper()
	var c net.Conn
	if err := lab.Do(ns, func() (err error) { c, err = net.DialTimeout("tcp4", addr, 5*time.Second); return }); err != nil {
		t.Fatalf("dial %s: %v", addr, err)
	}
	defer c.Close()
	c.(*net.TCPConn).SetNoDelay(true)
	c.SetDeadline(time.Now().Add(wait))
	if seg <= 0 {
		seg = len(b)
	}
	for len(b) > 0 {
		n := min(seg, len(b))
		if _, err := c.Write(b[:n]); err != nil {
			break
		}
		b = b[n:]
		if len(b) > 0 && seg < 16 {
			time.Sleep(20 * time.Millisecond)
		}
	}
	if halfClose {
		c.(*net.TCPConn).CloseWrite()
	}
	out, err := io.ReadAll(c)
	return string(out), err
}

// The HTTP shapes of issue 17 item 4, each against Go net/http, Python
// http.server, nginx and HAProxy (each echoes the X-Forwarded-For it read).
func TestAdversarialHTTP(t *testing.T) {
	needTools(t, "nginx", "haproxy", "python3")
	l := newLab(t)
	startHTTP(t, l) // Go net/http on :80
	dir := t.TempDir()
	py := filepath.Join(dir, "echo.py")
	writeFile(t, py, `import http.server, sys
class H(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    def echo(self):
        n = int(self.headers.get("Content-Length") or 0)
        if n > 0: self.rfile.read(n)
        b = ("xff=%s\n" % self.headers.get_all("X-Forwarded-For")).encode()
        self.send_response(200); self.send_header("Content-Length", str(len(b))); self.end_headers(); self.wfile.write(b)
    do_GET = do_POST = do_PUT = do_CONNECT = echo
    def log_message(self, *a): pass
http.server.ThreadingHTTPServer((sys.argv[1], 8081), H).serve_forever()
`)
	startProc(t, l.Srv, "python3", py, lab.ServerAddr)
	startNginx(t, l, dir, fmt.Sprintf(`server { listen %s:8082; location / { return 200 "xff=$http_x_forwarded_for\n"; } }`, lab.ServerAddr))
	hpconf := filepath.Join(dir, "haproxy.cfg")
	writeFile(t, hpconf, fmt.Sprintf(`global
	pidfile %[1]s/haproxy.pid
defaults
	mode http
	timeout connect 5s
	timeout client 5s
	timeout server 5s
frontend echo
	bind %[2]s:8083
	http-request return status 200 content-type text/plain lf-string "xff=%%[req.fhdr(x-forwarded-for)]\n"
`, dir, lab.ServerAddr))
	startProc(t, l.Srv, "haproxy", "-db", "-f", hpconf)
	servers := map[string]string{"go": lab.ServerAddr + ":80", "python": lab.ServerAddr + ":8081",
		"nginx": lab.ServerAddr + ":8082", "haproxy": lab.ServerAddr + ":8083"}
	for name, addr := range servers {
		if !waitFor(10*time.Second, func() bool { return dials(l.C2, addr, 1) == 1 }) {
			t.Fatalf("%s does not answer on %s", name, addr)
		}
	}
	d := startDaemon(t, l, "--config", writeConfig(t, `inside: [100.64.0.0/24]
methods: [http-header]
http_header:
  ports: [80, 8081, 8082, 8083]
  fields: [x-forwarded-for]
`))
	xff := "X-Forwarded-For: " + forged + "\r\n"
	next := "GET /next HTTP/1.1\r\nHost: a\r\n" + xff + "\r\n"
	shapes := map[string]string{
		"plain forged":       "GET / HTTP/1.1\r\nHost: a\r\n" + xff + "Connection: close\r\n\r\n",
		"1.0 chunked + CL":   "POST / HTTP/1.0\r\nHost: a\r\nConnection: keep-alive\r\nTransfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n0\r\n\r\n" + next,
		"upgrade pipelined":  "GET / HTTP/1.1\r\nHost: a\r\nUpgrade: foo\r\nConnection: upgrade\r\n\r\n" + next,
		"connect pipelined":  "CONNECT a:80 HTTP/1.1\r\nHost: a:80\r\n\r\n" + next,
		"CL after spaces":    "POST / HTTP/1.1\r\nHost: a\r\nContent-Length:" + strings.Repeat(" ", 70) + "0\r\n\r\n" + next,
		"HTTP/1.2":           "GET / HTTP/1.2\r\nHost: a\r\n" + xff + "\r\n",
		"obs-folded TE":      "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding:\r\n chunked\r\nContent-Length: 5\r\n\r\n0\r\n\r\n" + next,
		"double space":       "GET  / HTTP/1.1\r\nHost: a\r\n" + xff + "\r\n",
		"leading space":      " GET / HTTP/1.1\r\nHost: a\r\n" + xff + "\r\n",
		"invalid CL":         "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 1x\r\n\r\n" + next,
		"space before colon": "GET / HTTP/1.1\r\nHost: a\r\nX-Forwarded-For : " + forged + "\r\n\r\n",
		"bare CR":            "GET / HTTP/1.1\r\nHost: a\rX-Forwarded-For: " + forged + "\r\n\r\n",
	}
	// The shapes natreveal refuses (http-refused): the client sees the
	// reset with its first retransmission, well before its 2 s deadline.
	refused := map[string]bool{"1.0 chunked + CL": true, "HTTP/1.2": true, "obs-folded TE": true,
		"double space": true, "leading space": true, "invalid CL": true, "space before colon": true, "bare CR": true}
	for server, addr := range servers {
		for shape, req := range shapes {
			got, err := rawExchangeErr(t, l.C1, addr, []byte(req), 0, 2*time.Second, false)
			if strings.Contains(got, forged) {
				t.Errorf("%s, %s: the forged field reached the server: %q", server, shape, got)
			}
			if refused[shape] && (got != "" || !errors.Is(err, syscall.ECONNRESET)) {
				t.Errorf("%s, %s: refused, but the client read %q, %v; want a reset", server, shape, got, err)
			}
			if shape == "plain forged" && !strings.Contains(got, "_0x0002") {
				t.Errorf("%s: natreveal's field missing: %q", server, got)
			}
		}
	}
	st := d.stop(t)
	t.Logf("counters: %v", st)
	if st["http-refused"] == 0 {
		t.Errorf("no connection refused: %v", st)
	}
}

// Item 8: a removed X-Forwarded-For of 16,000 bytes and more, and a header
// name sent one byte a segment, never hang (Go net/http).
func TestAdversarialHTTPNoHang(t *testing.T) {
	l := newLab(t)
	startHTTP(t, l)
	d := startDaemon(t, l, "--config", writeConfig(t, httpConfig))
	defer d.stop(t)
	for _, size := range []int{16000, 40000, 200000} {
		req := "GET / HTTP/1.1\r\nHost: a\r\nX-Forwarded-For: " + strings.Repeat("6", size) + "\r\nConnection: close\r\n\r\n"
		got := rawExchange(t, l.C1, httpAddr, []byte(req), 0, 20*time.Second, false)
		if !strings.Contains(got, "_0x0002") || strings.Contains(got, "666") {
			t.Errorf("removed field of %d bytes: %q", size, got)
		}
	}
	req := "GET / HTTP/1.1\r\nHost: a\r\nX-Forwarded-For: " + forged + "\r\nX-Forwarded-Proto: http\r\nConnection: close\r\n\r\n"
	got := rawExchange(t, l.C1, httpAddr, []byte(req), 1, 20*time.Second, false)
	if !strings.Contains(got, "_0x0002") || strings.Contains(got, forged) {
		t.Errorf("one byte a segment: %q", got)
	}
}

// Item 5: PROXY replace mode against a go-proxyproto server: a stacked
// second header, a v1 line one byte a segment, a v2 header claiming 65535
// bytes.
func TestAdversarialProxyReplace(t *testing.T) {
	l := newLab(t)
	proxyServer(t, l, proxyAddr, false)
	d := startDaemon(t, l, "--config", writeConfig(t, `inside: [100.64.0.0/24]
methods: [proxy-protocol]
proxy_protocol:
  version: 2
  client_header: replace
  destinations: [198.51.100.1:7000]
`))
	v1 := "PROXY TCP4 " + forged + " 198.51.100.1 1 7000\r\n"
	v2 := "\r\n\r\n\x00\r\nQUIT\n\x21\x11\xff\xff" + strings.Repeat("\x00", 64)
	// One byte a segment: replaced, the data arrives, nothing stalls.
	got := rawExchange(t, l.C1, proxyAddr, []byte(v1+"hello"), 1, 20*time.Second, true)
	if !strings.HasPrefix(got, lab.Client1+":") || !strings.Contains(got, " _0x0002 5 ") {
		t.Errorf("v1 one byte a segment: %q", got)
	}
	for name, b := range map[string]string{"stacked": v1 + v1 + "hello", "v2 65535": v2 + "hello"} {
		got, err := rawExchangeErr(t, l.C1, proxyAddr, []byte(b), 0, 5*time.Second, true)
		if strings.Contains(got, forged) || strings.Contains(got, " 5 ") {
			t.Errorf("%s: %q", name, got)
		}
		if got != "" || !errors.Is(err, syscall.ECONNRESET) { // not the 5 s deadline
			t.Errorf("%s: refused, but the client read %q, %v; want a reset", name, got, err)
		}
	}
	st := d.stop(t)
	if st["proxy-bad-header"] < 2 {
		t.Errorf("counters %v", st)
	}
}
