package test

import (
	"bufio"
	"fmt"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/natreveal/natreveal/ident"
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

// identAsk sends one query on a connection of its own from ServerAddr, in
// the server's namespace, and returns the reply line without its EOL.
func identAsk(l *lab.Lab, query string) (string, error) {
	var reply string
	err := lab.Do(l.Srv, func() error {
		dl := net.Dialer{Timeout: 5 * time.Second, LocalAddr: &net.TCPAddr{IP: net.ParseIP(lab.ServerAddr)}}
		c, err := dl.Dial("tcp4", lab.NATPublic+":113")
		if err != nil {
			return err
		}
		defer c.Close()
		c.SetDeadline(time.Now().Add(5 * time.Second))
		if _, err := fmt.Fprintf(c, "%s\r\n", query); err != nil {
			return err
		}
		line, err := bufio.NewReader(c).ReadString('\n')
		if err != nil {
			return fmt.Errorf("query %q: %w", query, err)
		}
		reply = strings.TrimRight(line, "\r\n")
		return nil
	})
	return reply, err
}

// Issue 17 item 10: 64 idle connections from one address took every slot
// of the responder and 10 of 10 legitimate queries went unanswered; and the
// NAT's own connections got a HOST_ID. Now one source holds a few slots,
// the others are answered, and only inside hosts' connections are.
func TestIdentIdleFloodAndOwnConnections(t *testing.T) {
	l := newLab(t)
	s := listen(t, l)
	d := startDaemon(t, l, "--inside", lab.InsidePrefix, "--methods", "ident", "--ident-listen", lab.NATPublic+":113")

	// The attacker: the server namespace's other address, 64 connections
	// that never send a query.
	var idle []net.Conn
	t.Cleanup(func() {
		for _, c := range idle {
			c.Close()
		}
	})
	if err := lab.Do(l.Srv, func() error {
		dl := net.Dialer{Timeout: 5 * time.Second, LocalAddr: &net.TCPAddr{IP: net.ParseIP(lab.ServerPublic)}}
		for range 64 {
			c, err := dl.Dial("tcp4", lab.NATPublic+":113")
			if err != nil {
				return err
			}
			idle = append(idle, c)
		}
		return nil
	}); err != nil {
		t.Fatalf("idle connections: %v\n%s", err, d.Output())
	}

	var ports [2]string
	for i, ns := range []string{l.C1, l.C2} {
		got := connect(t, s, ns, fmt.Sprintf("flood%d", i), 0)
		_, ports[i], _ = net.SplitHostPort(got.Src)
	}
	ids := [2]string{"0x0002", "0x0003"}
	for i := range 10 {
		q := ports[i%2] + " , 8080"
		got, err := identAsk(l, q)
		if err != nil {
			t.Fatalf("legitimate query %d of 10 under the flood: %v\n%s", i+1, err, d.Output())
		}
		if want := ports[i%2] + ", 8080 : USERID : OTHER :" + ids[i%2]; got != want {
			t.Errorf("query %d: %q, want %q", i+1, got, want)
		}
	}

	// The NAT's own connection to the server: no inside owner, NO-USER
	// (before: the HOST_ID of its public address).
	own := connect(t, s, l.NAT, "natown", 0)
	if host, _, _ := net.SplitHostPort(own.Src); host != lab.NATPublic {
		t.Fatalf("the NAT's own connection came from %s, want %s", own.Src, lab.NATPublic)
	}
	_, port, _ := net.SplitHostPort(own.Src)
	if got, err := identAsk(l, port+" , 8080"); err != nil || got != port+", 8080 : ERROR : NO-USER" {
		t.Errorf("the NAT's own connection: %q, %v; want NO-USER", got, err)
	}

	out := d.stopLog(t)
	if want := fmt.Sprintf("refused_source=%d", 64-ident.DefaultMaxPerSource); !strings.Contains(out, want) {
		t.Errorf("no %s in the counters:\n%s", want, out)
	}
}
