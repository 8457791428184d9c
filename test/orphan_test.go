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
