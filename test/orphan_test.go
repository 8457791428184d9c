package test

import (
	"bufio"
	"errors"
	"io"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/natreveal/natreveal/lab"
	"github.com/natreveal/natreveal/rules"
	ct "github.com/ti-mo/conntrack"
)

// TestHTTPHeaderKillRestart: after SIGKILL of an http-header daemon and a
// restart, no request on a keep-alive connection opened before reaches the
// server with the client's forged field and no HOST_ID: the new daemon has
// no edit list for those flows and resets them, counted (select-reset;
// issue 17 item 6, stream/orphan.go).
func TestHTTPHeaderKillRestart(t *testing.T) {
	l := payloadLab(t)
	startHTTP(t, l)
	cfg := writeConfig(t, httpConfig)
	d := startDaemon(t, l, "--config", cfg)

	const conns = 6
	ks := dialKeptHTTP(t, l, conns, 1)

	d.Kill() // SIGKILL, waited for
	d2 := startDaemon(t, l, "--config", cfg)

	resets := 0
	for i, k := range ks {
		for j := range 3 {
			got, err := k.request(10 * time.Second)
			if err != nil {
				if ne := net.Error(nil); errors.As(err, &ne) && ne.Timeout() {
					t.Errorf("connection %d request %d after the restart hung: %v", i, j, err)
				}
				resets++
				break
			}
			if !strings.HasPrefix(got, keptWant) {
				t.Errorf("connection %d request %d after the restart: the server saw %s, want %s", i, j, got, keptWant)
			}
		}
	}
	st := d2.stop(t)
	t.Logf("%d of %d connections reset; counters: select-reset %d select-unknown %d", resets, conns, st["select-reset"], st["select-unknown"])
	if resets != conns {
		t.Errorf("%d of %d kept-alive connections reset after the restart, want all", resets, conns)
	}
	if st["select-reset"] < uint64(resets) {
		t.Errorf("select-reset %d, want at least the %d connections reset", st["select-reset"], resets)
	}
}

// TestHTTPHeaderKillGap: requests a kept-alive connection sends while no
// daemon listens (between a SIGKILL and the restart, or on an HA node whose
// daemon died before its links) never reach the server untranslated: a
// selected flow's packets wait in the queue rules without bypass, so the
// kernel drops them, the client retransmits, and the restarted daemon
// resets the flow (stream/orphan.go). Passed unchanged, the request would
// reach the server at sequence numbers the edits moved (a corrupt stream,
// "400 Bad Request") or with the client's forged field.
func TestHTTPHeaderKillGap(t *testing.T) {
	l := payloadLab(t)
	startHTTP(t, l)
	cfg := writeConfig(t, httpConfig)
	d := startDaemon(t, l, "--config", cfg)

	const conns = 4
	ks := dialKeptHTTP(t, l, conns, 2) // two insertions in each flow's offset

	d.Kill() // SIGKILL, waited for
	// In the gap: no daemon listens on the queue.
	for i, k := range ks {
		if err := k.send(5 * time.Second); err != nil {
			t.Fatalf("connection %d: write in the gap: %v", i, err)
		}
	}
	time.Sleep(500 * time.Millisecond)
	d2 := startDaemon(t, l, "--config", cfg)
	resets := answeredOrReset(t, ks, 15*time.Second, "sent in the gap")
	st := d2.stop(t)
	t.Logf("%d of %d connections reset; counters: select-reset %d select-unknown %d", resets, conns, st["select-reset"], st["select-unknown"])
	if st["select-reset"] < uint64(resets) {
		t.Errorf("select-reset %d, want at least the %d connections reset", st["select-reset"], resets)
	}
}

// keptHTTP is a kept-alive HTTP/1.1 connection from inside client 1 to the
// lab's HTTP server, through an http-header daemon.
type keptHTTP struct {
	c  net.Conn
	br *bufio.Reader
}

// forgedRequest carries the client's own X-Forwarded-For, which natreveal
// replaces with its own; keptWant starts the server's answer to it then.
const (
	forgedRequest = "GET / HTTP/1.1\r\nHost: server\r\nX-Forwarded-For: 6.6.6.6\r\n\r\n"
	keptWant      = `200 OK xff=["_0x0002"]`
)

// dialKeptHTTP opens n kept-alive connections from client 1 and makes
// requests requests on each, every one answered right (each insertion adds
// to the flow's offset); they close when the test ends.
func dialKeptHTTP(t *testing.T, l *lab.Lab, n, requests int) []keptHTTP {
	t.Helper()
	var ks []keptHTTP
	for i := range n {
		var c net.Conn
		if err := lab.Do(l.C1, func() (err error) { c, err = net.DialTimeout("tcp4", httpAddr, 5*time.Second); return }); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		k := keptHTTP{c, bufio.NewReader(c)}
		for j := range requests {
			if got, err := k.request(10 * time.Second); err != nil || !strings.HasPrefix(got, keptWant) {
				t.Fatalf("connection %d, request %d before the fault: %q %v", i, j, got, err)
			}
		}
		ks = append(ks, k)
	}
	return ks
}

// send writes forgedRequest, within d.
func (k keptHTTP) send(d time.Duration) error {
	k.c.SetDeadline(time.Now().Add(d))
	_, err := io.WriteString(k.c, forgedRequest)
	return err
}

// read reads one answer within d: its status line's status and its body.
func (k keptHTTP) read(d time.Duration) (string, error) {
	k.c.SetDeadline(time.Now().Add(d))
	resp, err := http.ReadResponse(k.br, nil)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp.Status + " " + string(b), err
}

// request is send then read.
func (k keptHTTP) request(d time.Duration) (string, error) {
	if err := k.send(d); err != nil {
		return "", err
	}
	return k.read(d)
}

// answeredOrReset reads, within d, each connection's answer to the request
// it sent during a fault (what): the right answer or a reset, never another
// answer (the request reached the server untranslated) and never a hang.
// It returns how many were reset.
func answeredOrReset(t *testing.T, ks []keptHTTP, d time.Duration, what string) int {
	t.Helper()
	resets := 0
	for i, k := range ks {
		got, err := k.read(d)
		switch {
		case err != nil:
			if ne := net.Error(nil); errors.As(err, &ne) && ne.Timeout() {
				t.Errorf("connection %d: the request %s hung: %v", i, what, err)
			}
			resets++
		case !strings.HasPrefix(got, keptWant):
			t.Errorf("connection %d: the request %s reached the server untranslated: answer %q, want %q or a reset", i, what, got, keptWant)
		}
	}
	return resets
}

// TestReusedPortSelectedFlow: a client that reuses its source port while
// conntrack still holds the old connection's entry in TIME_WAIT makes the
// kernel kill that entry on the new SYN; the destroy event must not free
// the new flow's state (stream.Engine.Forget). Every request on every reuse
// is answered with the client's HOST_ID, none reset.
func TestReusedPortSelectedFlow(t *testing.T) {
	l := payloadLab(t)
	startHTTP(t, l)
	d := startDaemon(t, l, "--config", writeConfig(t, httpConfig))

	const reuses = 150
	local := &net.TCPAddr{IP: net.ParseIP(lab.Client1), Port: 40123}
	want := `200 OK xff=["_0x0002"]`
	failed := 0
	for i := range reuses {
		var c net.Conn
		err := lab.Do(l.C1, func() (err error) {
			// The previous connection is in LAST_ACK until the server's
			// ACK of our FIN: try again briefly.
			for range 100 {
				c, err = (&net.Dialer{LocalAddr: local, Timeout: 5 * time.Second}).Dial("tcp4", httpAddr)
				if !errors.Is(err, syscall.EADDRINUSE) && !errors.Is(err, syscall.EADDRNOTAVAIL) {
					return err
				}
				time.Sleep(5 * time.Millisecond)
			}
			return err
		})
		if err != nil {
			t.Fatalf("reuse %d: dial from port %d: %v", i, local.Port, err)
		}
		k := keptHTTP{c, bufio.NewReader(c)}
		k.c.SetDeadline(time.Now().Add(10 * time.Second))
		_, err = io.WriteString(c, "GET / HTTP/1.1\r\nHost: server\r\nConnection: close\r\n\r\n")
		var got string
		if err == nil {
			got, err = k.read(10 * time.Second)
		}
		if err == nil {
			// The server closes first: its end holds TIME_WAIT, ours is
			// free for the next dial.
			_, err = k.br.ReadByte()
			if err == io.EOF {
				err = nil
			} else if err == nil {
				err = errors.New("bytes after the answer")
			}
		}
		c.Close()
		if err != nil || !strings.HasPrefix(got, want) {
			failed++
			if failed <= 3 {
				t.Errorf("reuse %d of port %d: answer %q, %v; want %s", i, local.Port, got, err, want)
			}
		}
	}
	st := d.stop(t)
	t.Logf("%d reuses of one source port, %d failed; counters: select-flows %d select-reopened %d select-reset %d",
		reuses, failed, st["select-flows"], st["select-reopened"], st["select-reset"])
	if failed > 0 || st["select-reset"] != 0 {
		t.Errorf("%d of %d connections failed, select-reset %d; want none", failed, reuses, st["select-reset"])
	}
	if st["select-flows"] < reuses {
		t.Errorf("select-flows %d, want every one of the %d connections selected", st["select-flows"], reuses)
	}
}

// TestHTTPHeaderStopCloses: a stop leaves the closing table (rules.Close),
// so the kept-alive http-header flows the daemon held never pass
// untranslated after it: each one's next request is answered with a reset
// at the client and nothing of it reaches the server. The next run
// replaces the table; after a SIGKILL, `natreveal rules close` (systemd's
// ExecStopPost) leaves the same table; `rules remove` deletes it.
func TestHTTPHeaderStopCloses(t *testing.T) {
	l := payloadLab(t)
	hs := startHTTP(t, l)
	cfg := writeConfig(t, httpConfig)
	d := startDaemon(t, l, "--config", cfg)
	ks := dialKeptHTTP(t, l, 4, 2) // two insertions: the offset moved
	if log := d.stopLog(t); !strings.Contains(log, "now only resets the selected flows still open") {
		t.Errorf("the stop does not say it left the closing table:\n%s", log)
	}
	const closing = "table ip natreveal {\n" +
		"\tchain closing {\n" +
		"\t\ttype filter hook forward priority filter; policy accept;\n" +
		"\t\tct mark & 0x00040000 == 0x00040000 tcp flags syn / fin,syn,rst,ack ct mark set ct mark & 0xfffbffff\n" +
		"\t\tct mark & 0x00040000 == 0x00040000 reject with tcp reset\n" +
		"\t}\n" +
		"}\n"
	if want := rules.ClosingText(rules.Spec{Select: true, SelectBit: 0x00040000}); want != closing {
		t.Errorf("rules.ClosingText:\n%s\nwant what nft lists:\n%s", want, closing)
	}
	table := func() string {
		out, err := l.Exec(l.NAT, "nft", "list", "table", "ip", "natreveal")
		if err != nil {
			return ""
		}
		return out
	}
	if got := table(); got != closing {
		t.Fatalf("after the stop, table ip natreveal is\n%s\nwant\n%s", got, closing)
	}
	if out, err := l.Exec(l.NAT, binary, "status", "--socket", filepath.Join(t.TempDir(), "none.sock")); err == nil ||
		!strings.Contains(out, "table ip natreveal is the closing table") {
		t.Errorf("status after the stop (%v):\n%s", err, out)
	}
	served := func() int {
		hs.mu.Lock()
		defer hs.mu.Unlock()
		n := 0
		for _, c := range hs.conns {
			n += c
		}
		return n
	}
	before := served()
	for i, k := range ks {
		got, err := k.request(5 * time.Second)
		if !errors.Is(err, syscall.ECONNRESET) {
			t.Errorf("connection %d after the stop: answer %q, error %v; want a reset", i, got, err)
		}
	}
	if n := served() - before; n != 0 {
		t.Errorf("the server answered %d requests sent after the stop, want none", n)
	}
	// The resets come from the NAT: conntrack still holds the flows as
	// established. A new connection from a reset one's source port must
	// not be reset with them.
	ks[0].c.Close()
	local := ks[0].c.LocalAddr().(*net.TCPAddr)
	var again net.Conn
	if err := lab.Do(l.C1, func() (err error) {
		again, err = (&net.Dialer{LocalAddr: local, Timeout: 10 * time.Second}).Dial("tcp4", httpAddr)
		return
	}); err != nil {
		t.Fatalf("a new connection from port %d after the stop: %v", local.Port, err)
	}
	if got, err := (keptHTTP{again, bufio.NewReader(again)}).request(10 * time.Second); err != nil || !strings.HasPrefix(got, "200 OK") {
		t.Errorf("a new connection from port %d after the stop: answer %q, %v", local.Port, got, err)
	}
	again.Close()

	// The next run replaces the closing table and selects again.
	d = startDaemon(t, l, "--config", cfg)
	if got := table(); !strings.Contains(got, "chain steer") || strings.Contains(got, "chain closing") {
		t.Errorf("the closing chain stayed beside the running table:\n%s", got)
	}
	dialKeptHTTP(t, l, 1, 1)
	d.Kill()
	if out, err := l.Exec(l.NAT, binary, "rules", "close", "--config", cfg); err != nil {
		t.Fatalf("rules close: %v\n%s", err, out)
	}
	if got := table(); got != closing {
		t.Errorf("after SIGKILL and rules close, table ip natreveal is\n%s\nwant\n%s", got, closing)
	}
	if out, err := l.Exec(l.NAT, binary, "rules", "remove", "--config", cfg); err != nil {
		t.Fatalf("rules remove: %v\n%s", err, out)
	}
	if got := table(); got != "" {
		t.Errorf("after rules remove, table ip natreveal is\n%s", got)
	}
}

// TestStartWithoutPayloadKeepsClosing: a run whose configuration has no
// payload method, started while flows the previous run selected are still
// open, keeps the closing chain beside its own ruleset (rules.Spec.CloseBit),
// so those flows are reset instead of passing untranslated; new flows pass,
// and its stop leaves the closing table again.
func TestStartWithoutPayloadKeepsClosing(t *testing.T) {
	l := payloadLab(t)
	hs := startHTTP(t, l)
	d := startDaemon(t, l, "--config", writeConfig(t, httpConfig))
	ks := dialKeptHTTP(t, l, 2, 2)
	d.stop(t)

	d = startDaemon(t, l, "--config", writeConfig(t, "inside: [100.64.0.0/24]\nmethods: [tcp-option]\n"))
	closingChain := strings.TrimSuffix(strings.TrimPrefix(rules.ClosingText(rules.Spec{Select: true, SelectBit: 0x00040000}),
		"table ip natreveal {\n"), "}\n")
	table := func() string {
		out, err := l.Exec(l.NAT, "nft", "list", "table", "ip", "natreveal")
		if err != nil {
			return ""
		}
		return out
	}
	if got := table(); !strings.Contains(got, "chain steer") ||
		!strings.Contains(got, closingChain) {
		t.Errorf("a tcp-option run after an http-header one with open flows: table ip natreveal is\n%s", got)
	}
	hs.mu.Lock()
	before := len(hs.conns)
	hs.mu.Unlock()
	for i, k := range ks {
		if got, err := k.request(5 * time.Second); !errors.Is(err, syscall.ECONNRESET) {
			t.Errorf("connection %d under the tcp-option run: answer %q, error %v; want a reset", i, got, err)
		}
	}
	if got := get(t, client(l.C2), "http://"+httpAddr+"/", nil); got != `xff=[] fwd=[]` {
		t.Errorf("a new connection under the tcp-option run: %q", got)
	}
	hs.mu.Lock()
	after := len(hs.conns)
	hs.mu.Unlock()
	if after != before+1 {
		t.Errorf("the server saw %d new connections, want the one new flow", after-before)
	}
	if log := d.stopLog(t); !strings.Contains(log, "flows an earlier run selected are still tracked: chain closing resets their packets") {
		t.Errorf("the run does not say why it keeps the closing chain:\n%s", log)
	}
	if got, want := table(), rules.ClosingText(rules.Spec{Select: true, SelectBit: 0x00040000}); got != want {
		t.Errorf("the tcp-option run's stop left\n%s\nwant the closing table\n%s", got, want)
	}

	// Once conntrack no longer tracks such flows, the count is 0: a run,
	// and a reload, install no closing chain. (The resets come from the
	// NAT, so conntrack does not see them; the entries are deleted here.)
	d = startDaemon(t, l, "--config", writeConfig(t, "inside: [100.64.0.0/24]\nmethods: [tcp-option]\n"))
	if err := lab.Do(l.NAT, func() error {
		c, err := ct.Dial(nil)
		if err != nil {
			return err
		}
		defer c.Close()
		return c.FlushFilter(ct.NewFilter().Mark(0x00040000).MarkMask(0x00040000))
	}); err != nil {
		t.Fatal(err)
	}
	d.Signal(syscall.SIGHUP)
	d.waitLog(t, "reloaded: ", 1)
	if got := table(); !strings.Contains(got, "chain steer") || strings.Contains(got, "chain closing") {
		t.Errorf("after its flows were gone and a reload, table ip natreveal is\n%s", got)
	}
	d.stop(t)
	if got := table(); got != "" {
		t.Errorf("the stop of a run without the closing chain left\n%s", got)
	}
}
