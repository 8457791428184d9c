package observe

// Privileged tests: each runs the observer in a network namespace of its
// own (ip netns add natreveal-obs-<pid>-<n>, always deleted) and talks over
// that namespace's loopback. They skip without root, unless CI=true, where
// they fail.

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"reflect"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/natreveal/natreveal/lab"
	"github.com/natreveal/natreveal/method/destopt"
	"github.com/natreveal/natreveal/reveal"
)

func requirePrivileged(t *testing.T) {
	t.Helper()
	need := func(why string) {
		if os.Getenv("CI") == "true" {
			t.Fatalf("privileged test cannot run (%s) and CI=true", why)
		}
		t.Skipf("privileged test skipped: %s", why)
	}
	if os.Geteuid() != 0 {
		need("not root")
	}
	for _, bin := range []string{"ip", "nft"} {
		if _, err := exec.LookPath(bin); err != nil {
			need(bin + " not found")
		}
	}
}

var netnsSeq atomic.Int32

type netns struct {
	name string
	fd   *os.File
}

// newNetNS creates a namespace with lo up; it is deleted when t ends.
func newNetNS(t *testing.T) *netns {
	t.Helper()
	requirePrivileged(t)
	name := fmt.Sprintf("natreveal-obs-%d-%d", os.Getpid(), netnsSeq.Add(1))
	exec.Command("ip", "netns", "del", name).Run() // a leftover of a killed run
	if out, err := exec.Command("ip", "netns", "add", name).CombinedOutput(); err != nil {
		t.Fatalf("ip netns add %s: %v: %s", name, err, out)
	}
	t.Cleanup(func() {
		if out, err := exec.Command("ip", "netns", "del", name).CombinedOutput(); err != nil {
			t.Errorf("ip netns del %s: %v: %s", name, err, out)
		}
	})
	if out, err := exec.Command("ip", "-n", name, "link", "set", "lo", "up").CombinedOutput(); err != nil {
		t.Fatalf("lo up: %v: %s", err, out)
	}
	fd, err := os.Open("/run/netns/" + name)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { fd.Close() })
	return &netns{name: name, fd: fd}
}

func (n *netns) nft(t *testing.T, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var stdout, stderr bytes.Buffer
	cmd := exec.CommandContext(ctx, "ip", append([]string{"netns", "exec", n.name, "nft"}, args...)...)
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("nft %s: %v: %s", strings.Join(args, " "), err, stderr.String())
	}
	return stdout.String()
}

// observer runs Run in n until stop is called.
type observer struct {
	mu      sync.Mutex
	records []reveal.Record
	rs      *Ruleset
	cancel  context.CancelFunc
	done    chan struct{}
	st      Stats
	err     error
}

func startObserver(t *testing.T, n *netns, cfg Config) *observer {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	o := &observer{cancel: cancel, done: make(chan struct{})}
	ready := make(chan struct{})
	cfg.NetNS = int(n.fd.Fd())
	cfg.Logf = t.Logf
	cfg.Ready = func(rs *Ruleset) { o.rs = rs; close(ready) }
	go func() {
		defer close(o.done)
		o.st, o.err = Run(ctx, cfg, func(r reveal.Record) {
			o.mu.Lock()
			o.records = append(o.records, r)
			o.mu.Unlock()
		})
	}()
	t.Cleanup(func() { o.stop(t) })
	select {
	case <-ready:
	case <-o.done:
		t.Fatalf("observer ended before it was ready: %v", o.err)
	case <-time.After(30 * time.Second):
		t.Fatal("observer not ready after 30s")
	}
	return o
}

func (o *observer) stop(t *testing.T) {
	t.Helper()
	o.cancel()
	select {
	case <-o.done:
	case <-time.After(30 * time.Second):
		t.Fatal("observer did not stop within 30s")
	}
}

// waitRecords waits until the observer has reported n records.
func (o *observer) waitRecords(t *testing.T, n int) []reveal.Record {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for {
		o.mu.Lock()
		got := append([]reveal.Record(nil), o.records...)
		o.mu.Unlock()
		if len(got) >= n || time.Now().After(deadline) {
			return got
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// ipOptionHostID is the ip-option method's option: type 30, length 4,
// HOST_ID 0x1234 (no padding needed: IP_OPTIONS wants a multiple of 4).
var ipOptionHostID = string([]byte{30, 4, 0x12, 0x34})

// destOptHostID is the dest-opt method's header as IPV6_DSTOPTS takes it:
// option 0x1E with HOST_ID 0xbeef, PadN of 2 bytes (RFC 8200 §4.2).
var destOptHostID = string([]byte{0, 0, 0x1e, 2, 0xbe, 0xef, 1, 0})

func setIPOptions(c syscall.RawConn) error {
	var serr error
	if err := c.Control(func(fd uintptr) {
		serr = unix.SetsockoptString(int(fd), unix.IPPROTO_IP, unix.IP_OPTIONS, ipOptionHostID)
	}); err != nil {
		return err
	}
	return serr
}

func setDestOpts(c syscall.RawConn) error {
	var serr error
	if err := c.Control(func(fd uintptr) {
		serr = unix.SetsockoptString(int(fd), unix.IPPROTO_IPV6, unix.IPV6_DSTOPTS, destOptHostID)
	}); err != nil {
		return err
	}
	return serr
}

// tcpConnect listens on addr in n and connects to it, with IP_OPTIONS
// (tcp4) or IPV6_DSTOPTS (tcp6) set when opts; it returns the client's
// address.
func tcpConnect(t *testing.T, n *netns, network, addr string, opts bool) endpoint {
	t.Helper()
	var ln net.Listener
	var c net.Conn
	err := lab.Do(n.name, func() error {
		var err error
		if ln, err = net.Listen(network, addr); err != nil {
			return err
		}
		d := net.Dialer{Timeout: 5 * time.Second}
		switch {
		case opts && network == "tcp6":
			d.Control = func(_, _ string, c syscall.RawConn) error { return setDestOpts(c) }
		case opts:
			d.Control = func(_, _ string, c syscall.RawConn) error { return setIPOptions(c) }
		}
		c, err = d.Dial(network, ln.Addr().String())
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	defer c.Close()
	return endpoint{c.LocalAddr().String(), ln.Addr().(*net.TCPAddr).Port}
}

type endpoint struct {
	src  string
	port int
}

// udpSend sends count datagrams to 127.0.0.1:port in n, with IP_OPTIONS.
func udpSend(t *testing.T, n *netns, port, count int) string {
	t.Helper()
	var c net.Conn
	var srv net.PacketConn
	err := lab.Do(n.name, func() error {
		var err error
		if srv, err = net.ListenPacket("udp4", fmt.Sprintf("127.0.0.1:%d", port)); err != nil {
			return err
		}
		d := net.Dialer{Control: func(_, _ string, c syscall.RawConn) error { return setIPOptions(c) }}
		c, err = d.Dial("udp4", srv.LocalAddr().String())
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	defer c.Close()
	for range count {
		if _, err := c.Write([]byte("q")); err != nil {
			t.Fatal(err)
		}
	}
	return c.LocalAddr().String()
}

// hipSend sends a HIP I1 (RFC 7401 §5.3.1) from a raw socket to ::1 in n.
func hipSend(t *testing.T, n *netns, hit [16]byte) {
	t.Helper()
	i1 := []byte{59, 4, 0x01, 0x21, 0, 0, 0, 0}
	i1 = append(append(i1, hit[:]...), make([]byte, 16)...)
	err := lab.Do(n.name, func() error {
		fd, err := unix.Socket(unix.AF_INET6, unix.SOCK_RAW|unix.SOCK_CLOEXEC, reveal.ProtoHIP)
		if err != nil {
			return err
		}
		defer unix.Close(fd)
		return unix.Sendto(fd, i1, 0, &unix.SockaddrInet6{Addr: [16]byte{15: 1}})
	})
	if err != nil {
		t.Fatalf("send HIP: %v", err)
	}
}

func TestObserveSystem(t *testing.T) {
	n := newNetNS(t)
	cfg := Config{
		Decoder:    reveal.Decoder{Methods: []reveal.Method{reveal.TCPOption, reveal.IPOption, reveal.Method(destopt.Name), reveal.HIP}},
		Group:      7,
		TCPPorts:   []uint16{8080, 8443, 8080},
		UDPPorts:   []uint16{5353},
		ReportNone: true,
	}
	o := startObserver(t, n, cfg)

	// The installed table is the one Build describes.
	// (nft names protocol 139 after /etc/protocols, when it has it.)
	listed := strings.ReplaceAll(n.nft(t, "list", "table", "inet", DefaultTable), "l4proto 139 ", "l4proto hip ")
	if want := o.rs.String(); listed != want {
		t.Errorf("nft lists:\n%s\nBuild renders:\n%s", listed, want)
	}

	c1 := tcpConnect(t, n, "tcp4", "127.0.0.1:8080", true)
	c2 := tcpConnect(t, n, "tcp6", "[::1]:8443", false)
	c3 := tcpConnect(t, n, "tcp6", "[::1]:8080", true)
	tcpConnect(t, n, "tcp4", "127.0.0.1:9999", true) // a port not watched
	u := udpSend(t, n, 5353, 3)                      // reported once
	hit := [16]byte{0x20, 0x01, 0x00, 0x2a, 15: 0x42}
	hipSend(t, n, hit)

	o.waitRecords(t, 5)
	time.Sleep(200 * time.Millisecond) // anything more would be a mistake
	got := o.waitRecords(t, 5)
	o.stop(t)
	if o.err != nil {
		t.Errorf("Run: %v", o.err)
	}
	var lines []string
	for _, r := range got {
		if time.Since(r.Time) > time.Minute || time.Until(r.Time) > time.Minute {
			t.Errorf("record time %v", r.Time)
		}
		lines = append(lines, fmt.Sprintf("%s %s %d %s %s", r.Proto, r.Src, r.DstPort, r.Method, r.HostID))
	}
	want := []string{
		fmt.Sprintf("tcp %s 8080 ip-option 0x1234", c1.src),
		fmt.Sprintf("tcp %s 8443  ", c2.src), // ReportNone: no HOST_ID
		fmt.Sprintf("tcp %s 8080 dest-opt 0xbeef", c3.src),
		fmt.Sprintf("udp %s 5353 ip-option 0x1234", u),
		"hip [::1]:0 0 hip 2001:2a::42",
	}
	if !reflect.DeepEqual(lines, want) {
		t.Errorf("records:\n%s\nwant:\n%s", strings.Join(lines, "\n"), strings.Join(want, "\n"))
	}
	if o.st.Records != 5 || o.st.Repeats != 2 {
		t.Errorf("stats %+v, want 5 records and 2 repeats", o.st)
	}

	// The table is gone, and nothing else was left behind.
	if out := n.nft(t, "list", "tables"); strings.Contains(out, DefaultTable) {
		t.Errorf("table left behind:\n%s", out)
	}
}

// A table of the same name left by a killed observer is replaced, and the
// observer fails cleanly, removing its table, when the group is taken.
func TestObserveReplacesAndCleansUp(t *testing.T) {
	n := newNetNS(t)
	leftover := "table inet " + DefaultTable + " {\n\tchain old {\n\t\ttype filter hook input priority 0; policy accept;\n\t}\n}\n"
	cmd := exec.Command("ip", "netns", "exec", n.name, "nft", "-f", "-")
	cmd.Stdin = strings.NewReader(leftover)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("nft: %v: %s", err, out)
	}
	cfg := Config{Decoder: reveal.Decoder{Methods: []reveal.Method{reveal.IPOption}}, Group: 9}
	o := startObserver(t, n, cfg)
	if listed := n.nft(t, "list", "table", "inet", DefaultTable); strings.Contains(listed, "chain old") {
		t.Errorf("leftover chain kept:\n%s", listed)
	}

	// A second observer on the same group cannot bind it.
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	cfg2 := cfg
	cfg2.NetNS, cfg2.Table = int(n.fd.Fd()), "natreveal_observe2"
	if _, err := Run(ctx, cfg2, func(reveal.Record) {}); err == nil {
		t.Error("second observer on the same group: no error")
	} else {
		t.Logf("second observer: %v", err)
	}
	if out := n.nft(t, "list", "tables"); strings.Contains(out, "natreveal_observe2") {
		t.Errorf("failed observer left its table:\n%s", out)
	}
	o.stop(t)
	if out := n.nft(t, "list", "tables"); strings.Contains(out, DefaultTable) {
		t.Errorf("table left behind:\n%s", out)
	}
}
