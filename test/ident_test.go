package test

import (
	"bufio"
	"fmt"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/natreveal/natreveal/lab"
)

// ident (RFC 1413, RFC 6967 §4.9): the server asks the NAT's public address
// on port 113 who owns the connection it received; natreveal answers with
// the HOST_ID of the inside host, found through conntrack.
func TestIdentAnswersWithHostID(t *testing.T) {
	l := newLab(t)
	s := listen(t, l)
	d := startDaemon(t, l, "--inside", lab.InsidePrefix, "--methods", "ident", "--ident-listen", lab.NATPublic+":113")

	var queries []string
	want := map[string]string{}
	for i, h := range []struct {
		ns string
		id string
	}{{l.C1, "0x0002"}, {l.C2, "0x0003"}} {
		got := connect(t, s, h.ns, fmt.Sprintf("ident%d", i), 0)
		_, port, _ := net.SplitHostPort(got.Src)
		q := port + " , 8080"
		queries = append(queries, q)
		want[q] = port + ", 8080 : USERID : OTHER :" + h.id
	}
	queries = append(queries, "1 , 8080", "70000, 8080")
	want["1 , 8080"] = "1, 8080 : ERROR : NO-USER"
	want["70000, 8080"] = "0, 8080 : ERROR : INVALID-PORT"

	err := lab.Do(l.Srv, func() error {
		// A server asks from the address the connection came to (RFC 1413
		// §3: the responder only answers about the querier's own connections).
		dl := net.Dialer{Timeout: 5 * time.Second, LocalAddr: &net.TCPAddr{IP: net.ParseIP(lab.ServerAddr)}}
		c, err := dl.Dial("tcp4", lab.NATPublic+":113")
		if err != nil {
			return err
		}
		defer c.Close()
		c.SetDeadline(time.Now().Add(5 * time.Second))
		r := bufio.NewReader(c)
		for _, q := range queries {
			if _, err := fmt.Fprintf(c, "%s\r\n", q); err != nil {
				return err
			}
			line, err := r.ReadString('\n')
			if err != nil {
				return fmt.Errorf("query %q: %w", q, err)
			}
			if got := strings.TrimRight(line, "\r\n"); got != want[q] {
				t.Errorf("query %q: answer %q, want %q", q, got, want[q])
			}
		}
		return nil
	})
	if err != nil {
		t.Fatalf("%v\n%s", err, d.Output())
	}
	out := d.stopLog(t)
	if !strings.Contains(out, "ident counters: ") {
		t.Errorf("no ident counters at exit:\n%s", out)
	}
}
