package listener

// Privileged tests (root: IP_OPTIONS with an experimental option type needs
// CAP_NET_RAW). They talk over loopback in the current network namespace.
// They skip without root, unless CI=true, where they fail.

import (
	"context"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"os"
	"reflect"
	"strconv"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/natreveal/natreveal/method/destopt"
	"github.com/natreveal/natreveal/reveal"
)

func requireRoot(t *testing.T) {
	t.Helper()
	if os.Geteuid() == 0 {
		return
	}
	if os.Getenv("CI") == "true" {
		t.Fatal("privileged test cannot run (not root) and CI=true")
	}
	t.Skip("privileged test skipped: not root")
}

// ipOptionHostID is the IPv4 option natreveal's ip-option method writes:
// type 30 (RFC 4727 §2.5), length 4, HOST_ID 0x1234. Four bytes, so no
// padding is needed (IP_OPTIONS wants a multiple of 4).
var ipOptionHostID = []byte{30, 4, 0x12, 0x34}

// destOptHostID is a Destination Options header as IPV6_DSTOPTS takes it
// (RFC 3542 §6.3; the kernel fills in Next Header): Hdr Ext Len 0, option
// 0x1E (RFC 4727) with HOST_ID 0x1234, PadN of 2 bytes (RFC 8200 §4.2).
var destOptHostID = []byte{0, 0, 0x1e, 2, 0x12, 0x34, 1, 0}

// dial connects to addr from a socket that sends opts as IPv4 options
// (setsockopt IP_OPTIONS) or, for tcp6, as the Destination Options header
// (IPV6_DSTOPTS); nil: none.
func dial(t *testing.T, network, addr string, opts []byte) (net.Conn, error) {
	t.Helper()
	d := net.Dialer{Timeout: 5 * time.Second, Control: func(_, _ string, c syscall.RawConn) error {
		if opts == nil {
			return nil
		}
		level, name := unix.IPPROTO_IP, unix.IP_OPTIONS
		if network == "tcp6" {
			level, name = unix.IPPROTO_IPV6, unix.IPV6_DSTOPTS
		}
		var serr error
		if err := c.Control(func(fd uintptr) {
			serr = unix.SetsockoptString(int(fd), level, name, string(opts))
		}); err != nil {
			return err
		}
		return serr
	}}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	return d.DialContext(ctx, network, addr)
}

// acceptOne accepts a connection within a deadline.
func acceptOne(t *testing.T, ln *Listener) *Conn {
	t.Helper()
	ln.SetDeadline(time.Now().Add(5 * time.Second))
	c, err := ln.Accept()
	if err != nil {
		t.Fatalf("accept: %v", err)
	}
	rc, ok := c.(*Conn)
	if !ok {
		t.Fatalf("Accept returned %T, want *Conn", c)
	}
	t.Cleanup(func() { rc.Close() })
	return rc
}

func listen(t *testing.T, network, addr string, d *reveal.Decoder) *Listener {
	t.Helper()
	ln, err := Listen(network, addr, d)
	if err != nil {
		if network == "tcp6" && os.Getenv("CI") != "true" {
			t.Skipf("no IPv6 loopback: %v", err)
		}
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	return ln
}

func TestListenIPv4(t *testing.T) {
	requireRoot(t)
	ln := listen(t, "tcp4", "127.0.0.1:0", &reveal.Decoder{Methods: []reveal.Method{reveal.TCPOption, reveal.IPOption, reveal.IPID}})
	cl, err := dial(t, "tcp4", ln.Addr().String(), ipOptionHostID)
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	c := acceptOne(t, ln)

	syn := c.SavedSYN()
	if len(syn) < 24+20 || syn[0] != 0x46 {
		t.Fatalf("saved SYN % x: want an IPv4 header of 24 bytes (IHL 6) and a TCP header", syn)
	}
	if got := syn[20:24]; string(got) != string(ipOptionHostID) {
		t.Errorf("saved SYN options % x, want % x", got, ipOptionHostID)
	}
	if syn[24+13]&0x3f != 0x02 {
		t.Errorf("saved TCP header flags 0x%02x, want SYN", syn[24+13])
	}
	ipid := binary.BigEndian.Uint16(syn[4:6])
	want := []reveal.Found{
		{Method: reveal.IPOption, HostID: 0x1234, Len: 2},
		{Method: reveal.IPID, HostID: uint32(ipid), Len: 2},
	}
	if syn[6]&0x40 == 0 { // Linux sets DF on TCP when PMTU discovery is on
		want = want[:1]
	}
	if got := c.HostIDs(); !reflect.DeepEqual(got, want) {
		t.Errorf("HostIDs %+v, want %+v", got, want)
	}
	if c.SYNError() != nil {
		t.Errorf("SYNError: %v", c.SYNError())
	}

	// The connection works as a TCP connection.
	c.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := c.Write([]byte("hi\n")); err != nil {
		t.Fatal(err)
	}
	c.CloseWrite()
	cl.SetDeadline(time.Now().Add(5 * time.Second))
	if b, err := io.ReadAll(cl); err != nil || string(b) != "hi\n" {
		t.Errorf("client read %q, %v", b, err)
	}

	// A connection without options: nothing but the IP-ID.
	cl2, err := dial(t, "tcp4", ln.Addr().String(), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer cl2.Close()
	c2 := acceptOne(t, ln)
	for _, f := range c2.HostIDs() {
		if f.Method != reveal.IPID {
			t.Errorf("plain SYN: %+v", f)
		}
	}
}

func TestListenIPv6(t *testing.T) {
	requireRoot(t)
	ln := listen(t, "tcp6", "[::1]:0", nil)
	cl, err := dial(t, "tcp6", ln.Addr().String(), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	c := acceptOne(t, ln)
	syn := c.SavedSYN()
	if len(syn) < 40+20 || syn[0]>>4 != 6 || syn[6] != unix.IPPROTO_TCP {
		t.Fatalf("saved SYN % x: want an IPv6 header and a TCP header", syn)
	}
	fl, ok := reveal.ParseFlow(syn)
	if !ok || !fl.Opening() || fl.Src.String() != "::1" || int(fl.DstPort) != ln.Addr().(*net.TCPAddr).Port {
		t.Errorf("saved SYN flow %+v", fl)
	}
	if got := c.HostIDs(); got != nil {
		t.Errorf("HostIDs %+v, want none", got)
	}

	// The dest-opt method's header (the default decoder has dest-opt).
	cl2, err := dial(t, "tcp6", ln.Addr().String(), destOptHostID)
	if err != nil {
		t.Fatal(err)
	}
	defer cl2.Close()
	c2 := acceptOne(t, ln)
	syn = c2.SavedSYN()
	if len(syn) < 48 || syn[6] != unix.IPPROTO_DSTOPTS {
		t.Fatalf("saved SYN % x: want a Destination Options header", syn)
	}
	want := []reveal.Found{{Method: reveal.Method(destopt.Name), HostID: 0x1234, Len: 2}}
	if got := c2.HostIDs(); !reflect.DeepEqual(got, want) {
		t.Errorf("HostIDs %+v, want %+v", got, want)
	}
}

// A dual-stack listener hands IPv4 clients an IPv4 SYN.
func TestListenDualStack(t *testing.T) {
	requireRoot(t)
	ln, err := Listen("tcp", "[::]:0", &reveal.Decoder{Methods: []reveal.Method{reveal.IPOption}})
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal(err)
		}
		t.Skipf("no dual-stack listener: %v", err)
	}
	defer ln.Close()
	port := ln.Addr().(*net.TCPAddr).Port
	cl, err := dial(t, "tcp4", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)), ipOptionHostID)
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	c := acceptOne(t, ln)
	want := []reveal.Found{{Method: reveal.IPOption, HostID: 0x1234, Len: 2}}
	if got := c.HostIDs(); !reflect.DeepEqual(got, want) || c.SavedSYN()[0]>>4 != 4 {
		t.Errorf("HostIDs %+v (SYN version %d), want %+v", got, c.SavedSYN()[0]>>4, want)
	}
}

func TestListenErrors(t *testing.T) {
	if _, err := Listen("udp", ":0", nil); err == nil {
		t.Error("udp accepted")
	}
	if _, err := Listen("tcp4", "256.0.0.1:0", nil); err == nil {
		t.Error("bad address accepted")
	}
	ln, err := Listen("tcp4", "127.0.0.1:0", nil)
	if err != nil {
		t.Fatal(err)
	}
	ln.Close()
	if _, err := ln.Accept(); !errors.Is(err, net.ErrClosed) {
		t.Errorf("Accept after Close: %v", err)
	}
}
