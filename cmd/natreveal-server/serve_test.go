package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log"
	"net"
	"os"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/natreveal/natreveal/reveal"
	"github.com/natreveal/natreveal/reveal/listener"
)

// syncBuffer is a bytes.Buffer for several goroutines.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// The demo server over loopback: one JSON line per connection and a
// greeting. With root (CAP_NET_RAW for IP_OPTIONS) the client's SYN carries
// the ip-option HOST_ID; without, only the IP-ID is there.
func TestServe(t *testing.T) {
	ln, err := listener.Listen("tcp4", "127.0.0.1:0", &reveal.Decoder{Methods: []reveal.Method{reveal.IPOption, reveal.IPID}})
	if err != nil {
		t.Fatal(err)
	}
	var out, logs syncBuffer
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- serve(ctx, ln, &lineWriter{w: &out, f: reveal.FormatJSON}, log.New(&logs, "", 0)) }()

	root := os.Geteuid() == 0
	if !root && os.Getenv("CI") == "true" {
		t.Fatal("CI=true: this test needs root (IP_OPTIONS)")
	}
	d := net.Dialer{Timeout: 5 * time.Second}
	if root {
		d.Control = func(_, _ string, c syscall.RawConn) error {
			var serr error
			c.Control(func(fd uintptr) {
				serr = unix.SetsockoptString(int(fd), unix.IPPROTO_IP, unix.IP_OPTIONS, string([]byte{30, 4, 0x12, 0x34}))
			})
			return serr
		}
	}
	c, err := d.Dial("tcp4", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	c.SetDeadline(time.Now().Add(5 * time.Second))
	greeting, err := io.ReadAll(c)
	c.Close()
	if err != nil {
		t.Fatal(err)
	}
	cancel()
	if err := <-done; err != nil {
		t.Errorf("serve: %v", err)
	}

	var r reveal.Record
	if err := json.Unmarshal([]byte(out.String()), &r); err != nil || strings.Count(out.String(), "\n") != 1 {
		t.Fatalf("output %q: %v", out.String(), err)
	}
	if r.Src.String() != c.LocalAddr().String() || int(r.DstPort) != ln.Addr().(*net.TCPAddr).Port || r.Proto != "tcp" {
		t.Errorf("record %+v", r)
	}
	wantMethod, wantGreeting := reveal.IPID, "hello "+c.LocalAddr().String()+", your HOST_ID is 0x"
	if root {
		wantMethod, wantGreeting = reveal.IPOption, wantGreeting+"1234 (ip-option), 0x"
	}
	if r.Method != wantMethod || !strings.HasPrefix(string(greeting), wantGreeting) || !strings.HasSuffix(string(greeting), " (ip-id)\n") {
		t.Errorf("record %+v, greeting %q", r, greeting)
	}
}
