package test

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/natreveal/natreveal/lab"
	"github.com/natreveal/natreveal/portset"
)

// addHostAddrs gives namespace ns's eth0 the addresses 100.64.0.first ..
// 100.64.0.last (one `ip -batch`).
func addHostAddrs(t *testing.T, ns string, first, last int) {
	t.Helper()
	var b strings.Builder
	for n := first; n <= last; n++ {
		fmt.Fprintf(&b, "addr add 100.64.0.%d/24 dev eth0\n", n)
	}
	cmd := exec.Command("ip", "-n", ns, "-batch", "-")
	cmd.Stdin = strings.NewReader(b.String())
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("ip -n %s -batch: %v: %s", ns, err, out)
	}
}

// dialFrom connects from namespace ns with source address src to the lab
// server, sends src as label, half-closes and waits for "ok".
func dialFrom(ns string, src netip.Addr) error {
	var c net.Conn
	err := lab.Do(ns, func() error {
		d := net.Dialer{Timeout: 15 * time.Second, LocalAddr: &net.TCPAddr{IP: src.AsSlice()}}
		var err error
		c, err = d.Dial("tcp4", srvAddr)
		return err
	})
	if err != nil {
		return fmt.Errorf("dial from %v: %w", src, err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(15 * time.Second))
	if _, err := fmt.Fprintf(c, "%-16s", src); err != nil {
		return err
	}
	c.(*net.TCPConn).CloseWrite()
	ack, err := io.ReadAll(c)
	if err != nil || string(ack) != "ok" {
		return fmt.Errorf("from %v: server answered %q, %v", src, ack, err)
	}
	return nil
}

// Port-set (RFC 7422) end to end: the NAT runs `natreveal run --methods
// port-set` with a policy for the lab's /24 on 192.0.2.1, 256 ports per host
// over 1024-65535: hosts 100.64.0.1-.252 deterministic, .253 and .254 not.
// Every host address the clients can use connects; the source the server
// saw (the kernel's actual SNAT choice) must look up to that host, the two
// hosts past the blocks still get through (the user's masquerade), and the
// mapping log names each host with its public port and HOST_ID.
func TestPortSetEveryHost(t *testing.T) {
	start := time.Now()
	l := newLab(t)
	dir := t.TempDir()
	pol := portset.Policy{
		Inside: []netip.Prefix{netip.MustParsePrefix(lab.InsidePrefix)},
		Public: []netip.Addr{netip.MustParseAddr(lab.NATPublic)}, BlockSize: 256,
	}
	pol, err := pol.Normalize()
	if err != nil {
		t.Fatal(err)
	}
	polFile := filepath.Join(dir, "policy.json")
	b, _ := json.Marshal(pol)
	if err := os.WriteFile(polFile, b, 0o644); err != nil {
		t.Fatal(err)
	}
	logFile := filepath.Join(dir, "mapping.jsonl")

	// C1 has .2, C2 .3; C1 takes every other host address but .1 (the NAT).
	addHostAddrs(t, l.C1, 4, 254)
	s := listen(t, l)
	d := startDaemon(t, l, "--inside", lab.InsidePrefix, "--methods", "port-set",
		"--port-set-policy-file", polFile, "--mapping-log", logFile)

	listed, err := l.Exec(l.NAT, "nft", "list", "table", "ip", "natreveal_portset")
	if err != nil {
		t.Fatalf("%v\n%s", err, d.Output())
	}
	if !strings.Contains(listed, "100.64.0.252 : 192.0.2.1 . 65280-65535") || strings.Contains(listed, "100.64.0.253 :") {
		t.Errorf("installed table:\n%s", listed)
	}

	type host struct {
		ns   string
		addr netip.Addr
	}
	var hosts []host
	for n := 2; n <= 254; n++ {
		ns := l.C1
		if n == 3 {
			ns = l.C2
		}
		hosts = append(hosts, host{ns, netip.AddrFrom4([4]byte{100, 64, 0, byte(n)})})
	}
	// Small concurrent batches.
	var mu sync.Mutex
	var errs []error
	for i := 0; i < len(hosts); i += 32 {
		var wg sync.WaitGroup
		for _, h := range hosts[i:min(i+32, len(hosts))] {
			wg.Add(1)
			go func() {
				defer wg.Done()
				if err := dialFrom(h.ns, h.addr); err != nil {
					mu.Lock()
					errs = append(errs, err)
					mu.Unlock()
				}
			}()
		}
		wg.Wait()
	}
	if len(errs) > 0 {
		t.Fatalf("%d connections failed, first: %v\n%s", len(errs), errs[0], d.Output())
	}

	seen := map[netip.Addr]netip.AddrPort{}
	deadline := time.Now().Add(15 * time.Second)
	for len(seen) < len(hosts) && time.Now().Before(deadline) {
		for _, x := range s.Seen() {
			a, err1 := netip.ParseAddr(strings.TrimSpace(x.Head))
			src, err2 := netip.ParseAddrPort(x.Src)
			if err1 == nil && err2 == nil {
				seen[a] = src
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	deterministic := 0
	for _, h := range hosts {
		src, ok := seen[h.addr]
		if !ok {
			t.Errorf("%v: the server saw no connection", h.addr)
			continue
		}
		if src.Addr().String() != lab.NATPublic {
			t.Errorf("%v: seen from %v, want %s", h.addr, src, lab.NATPublic)
		}
		got, found := pol.Lookup(src)
		_, det := pol.Forward(h.addr)
		switch {
		case det && (!found || got != h.addr):
			t.Errorf("%v: public %v looks up to %v (%v)", h.addr, src, got, found)
		case det:
			deterministic++
		case found && got == h.addr:
			t.Errorf("%v is not deterministic but %v looks up to it", h.addr, src)
		}
	}
	if deterministic != 251 {
		t.Errorf("%d hosts checked deterministic, want 251 (.2-.252)", deterministic)
	}

	// The mapping log: a "new" line per connection, inside host, public
	// port and HOST_ID (lower16), no destination.
	want := map[string]netip.AddrPort{}
	for a, src := range seen {
		want[a.String()] = src
	}
	var missing []string
	deadline = time.Now().Add(15 * time.Second)
	for {
		found := map[string]bool{}
		f, err := os.Open(logFile)
		if err == nil {
			sc := bufio.NewScanner(f)
			for sc.Scan() {
				var r struct {
					Event, Proto, Inside, Public, Dst string
					PublicPort                        uint16 `json:"public_port"`
					HostID                            string `json:"host_id"`
				}
				if err := json.Unmarshal(sc.Bytes(), &r); err != nil {
					t.Fatalf("mapping log line %q: %v", sc.Text(), err)
				}
				src, ok := want[r.Inside]
				if !ok || r.Event != "new" || r.Proto != "tcp" {
					continue
				}
				a := netip.MustParseAddr(r.Inside).As4()
				if r.Public == src.Addr().String() && r.PublicPort == src.Port() &&
					r.HostID == fmt.Sprintf("0x%02x%02x", a[2], a[3]) && r.Dst == "" {
					found[r.Inside] = true
				}
			}
			f.Close()
		}
		missing = missing[:0]
		for a := range want {
			if !found[a] {
				missing = append(missing, a)
			}
		}
		if len(missing) == 0 || time.Now().After(deadline) {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if len(missing) > 0 {
		data, _ := os.ReadFile(logFile)
		t.Errorf("mapping log lacks %d hosts (e.g. %s); log starts:\n%.2000s", len(missing), missing[0], data)
	}

	out := d.stopLog(t)
	if tables, _ := l.Exec(l.NAT, "nft", "list", "tables"); strings.Contains(tables, "natreveal_portset") || !strings.Contains(tables, "table ip nat") {
		t.Errorf("tables after stop:\n%s\n%s", tables, out)
	}
	t.Logf("%d hosts, %d deterministic, in %v", len(hosts), deterministic, time.Since(start).Round(time.Millisecond))
}

// A reload that changes port-set is refused, naming the key: run installed
// the port-set table once, and `portset plan` would publish a policy the
// kernel does not apply. The table stays as it was.
func TestPortSetReloadNeedsRestart(t *testing.T) {
	l := newLab(t)
	file := filepath.Join(t.TempDir(), "natreveal.yaml")
	write := func(size int) {
		body := fmt.Sprintf("inside: [%s]\nmethods: [tcp-option, port-set]\nport_set:\n  public: [%s]\n  block_size: %d\n", lab.InsidePrefix, lab.NATPublic, size)
		if err := os.WriteFile(file, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write(256)
	d := startDaemon(t, l, "--config", file)
	before, err := l.Exec(l.NAT, "nft", "list", "table", "ip", "natreveal_portset")
	if err != nil {
		t.Fatalf("%v\n%s", err, d.Output())
	}
	write(512)
	d.Signal(syscall.SIGHUP)
	d.waitLog(t, "reload failed, keeping the running configuration", 1)
	if !strings.Contains(d.Output(), "port_set: changes only on a restart") {
		t.Errorf("the refused reload does not name port_set:\n%s", d.Output())
	}
	if after, _ := l.Exec(l.NAT, "nft", "list", "table", "ip", "natreveal_portset"); after != before {
		t.Errorf("the port-set table changed:\n%s\nwas:\n%s", after, before)
	}
	d.stop(t)
}
