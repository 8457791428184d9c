package test

import (
	"bufio"
	"errors"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/natreveal/natreveal/lab"
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
	type kept struct {
		c  net.Conn
		br *bufio.Reader
	}
	request := func(k kept) (string, error) {
		k.c.SetDeadline(time.Now().Add(10 * time.Second))
		if _, err := io.WriteString(k.c, "GET / HTTP/1.1\r\nHost: server\r\nX-Forwarded-For: 6.6.6.6\r\n\r\n"); err != nil {
			return "", err
		}
		resp, err := http.ReadResponse(k.br, nil)
		if err != nil {
			return "", err
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		return string(b), err
	}
	want := `xff=["_0x0002"]`
	var ks []kept
	for i := range conns {
		var c net.Conn
		if err := lab.Do(l.C1, func() (err error) { c, err = net.DialTimeout("tcp4", httpAddr, 5*time.Second); return }); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		k := kept{c, bufio.NewReader(c)}
		if got, err := request(k); err != nil || !strings.HasPrefix(got, want) {
			t.Fatalf("connection %d before the kill: %q %v", i, got, err)
		}
		ks = append(ks, k)
	}

	d.Kill() // SIGKILL, waited for
	d2 := startDaemon(t, l, "--config", cfg)

	resets := 0
	for i, k := range ks {
		for j := range 3 {
			got, err := request(k)
			if err != nil {
				if ne := net.Error(nil); errors.As(err, &ne) && ne.Timeout() {
					t.Errorf("connection %d request %d after the restart hung: %v", i, j, err)
				}
				resets++
				break
			}
			if !strings.HasPrefix(got, want) {
				t.Errorf("connection %d request %d after the restart: the server saw %s, want %s", i, j, got, want)
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
	type kept struct {
		c  net.Conn
		br *bufio.Reader
	}
	const req = "GET / HTTP/1.1\r\nHost: server\r\nX-Forwarded-For: 6.6.6.6\r\n\r\n"
	read := func(k kept) (string, error) {
		k.c.SetDeadline(time.Now().Add(15 * time.Second))
		resp, err := http.ReadResponse(k.br, nil)
		if err != nil {
			return "", err
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		return resp.Status + " " + string(b), err
	}
	want := `200 OK xff=["_0x0002"]`
	var ks []kept
	for i := range conns {
		var c net.Conn
		if err := lab.Do(l.C1, func() (err error) { c, err = net.DialTimeout("tcp4", httpAddr, 5*time.Second); return }); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		k := kept{c, bufio.NewReader(c)}
		// Two requests: the flow's offset is two insertions.
		for range 2 {
			if _, err := io.WriteString(c, req); err != nil {
				t.Fatal(err)
			}
			if got, err := read(k); err != nil || !strings.HasPrefix(got, want) {
				t.Fatalf("connection %d before the kill: %q %v", i, got, err)
			}
		}
		ks = append(ks, k)
	}

	d.Kill() // SIGKILL, waited for
	// In the gap: no daemon listens on the queue.
	for i, k := range ks {
		k.c.SetDeadline(time.Now().Add(5 * time.Second))
		if _, err := io.WriteString(k.c, req); err != nil {
			t.Fatalf("connection %d: write in the gap: %v", i, err)
		}
	}
	time.Sleep(500 * time.Millisecond)
	d2 := startDaemon(t, l, "--config", cfg)

	resets := 0
	for i, k := range ks {
		got, err := read(k)
		switch {
		case err != nil:
			if ne := net.Error(nil); errors.As(err, &ne) && ne.Timeout() {
				t.Errorf("connection %d: the request sent in the gap hung: %v", i, err)
			}
			resets++
		case !strings.HasPrefix(got, want):
			t.Errorf("connection %d: the request sent in the gap reached the server untranslated: answer %q, want %q or a reset", i, got, want)
		}
	}
	st := d2.stop(t)
	t.Logf("%d of %d connections reset; counters: select-reset %d select-unknown %d", resets, conns, st["select-reset"], st["select-unknown"])
	if st["select-reset"] < uint64(resets) {
		t.Errorf("select-reset %d, want at least the %d connections reset", st["select-reset"], resets)
	}
}
