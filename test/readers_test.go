package test

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"net/netip"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/natreveal/natreveal/lab"
	"github.com/natreveal/natreveal/method/destopt"
	"github.com/natreveal/natreveal/reveal"
	"github.com/natreveal/natreveal/reveal/listener"
)

const readMethods = "tcp-option,ip-option,dest-opt,ip-id"

// record is one JSON line of natreveal observe or decode.
type record struct {
	Src    string `json:"src"`
	Proto  string `json:"proto"`
	Method string `json:"method"`
	HostID string `json:"host_id"`
}

// appServer is a server application built on reveal/listener: it records
// the HOST_IDs of each connection by its source and answers "ok".
type appServer struct {
	lns  []*listener.Listener
	mu   sync.Mutex
	seen map[string][]reveal.Found // by remote address:port
	head map[string]string         // the payload, by remote address:port
	wg   sync.WaitGroup
}

func startAppServer(t *testing.T, ns string, addrs ...string) *appServer {
	t.Helper()
	a := &appServer{seen: map[string][]reveal.Found{}, head: map[string]string{}}
	d := &reveal.Decoder{Methods: []reveal.Method{reveal.TCPOption, reveal.IPOption, reveal.Method(destopt.Name), reveal.IPID}}
	for _, addr := range addrs {
		var ln *listener.Listener
		err := lab.Do(ns, func() error {
			var err error
			ln, err = listener.Listen("tcp", addr, d)
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
		a.lns = append(a.lns, ln)
		a.wg.Add(1)
		go func() {
			defer a.wg.Done()
			for {
				c, err := ln.AcceptReveal()
				if err != nil {
					return
				}
				c.SetDeadline(time.Now().Add(10 * time.Second))
				payload, _ := io.ReadAll(c)
				a.mu.Lock()
				a.seen[c.RemoteAddr().String()] = c.HostIDs()
				a.head[c.RemoteAddr().String()] = string(payload)
				a.mu.Unlock()
				c.Write([]byte("ok"))
				c.Close()
			}
		}()
	}
	t.Cleanup(func() {
		for _, ln := range a.lns {
			ln.Close()
		}
		a.wg.Wait()
	})
	return a
}

// Every way a server reads HOST_IDs sees the same values for the same
// traffic: natreveal observe (NFLOG) in the server namespace, a server
// application on reveal/listener (TCP_SAVED_SYN), and natreveal decode on
// a capture of the server's link. Two inside hosts each open an IPv4 and an
// IPv6 connection and send a UDP flow through natreveal with tcp-option,
// ip-option, ip-id and dest-opt on.
func TestServerReadersAgree(t *testing.T) {
	l := newLab(t)
	pcap := filepath.Join(t.TempDir(), "srv.pcap")
	capture, err := lab.StartCapture(l.Srv, "eth0", pcap)
	if err != nil {
		t.Fatal(err)
	}
	defer capture.Stop()
	obs := startObserve(t, l)
	app := startAppServer(t, l.Srv, lab.ServerAddr+":8081", "["+lab.ServerAddr6+"]:8081")
	u, err := lab.ListenUDP(l.Srv, udpAddr)
	if err != nil {
		t.Fatal(err)
	}
	defer u.Close()
	d := startDaemon(t, l, "--inside", lab.InsidePrefix+","+lab.InsidePrefix6, "--methods", readMethods)

	// want[source address:port] = method -> HOST_ID, from what each client sent.
	want := map[string]map[string]string{}
	hosts := []struct{ ns, id string }{{l.C1, "0x0002"}, {l.C2, "0x0003"}}
	for i, h := range hosts {
		for _, dst := range []string{lab.ServerAddr + ":8081", "[" + lab.ServerAddr6 + "]:8081"} {
			if err := lab.Connect(h.ns, dst, []byte(fmt.Sprint(i)), 10*time.Second); err != nil {
				t.Fatal(err)
			}
		}
		if err := lab.SendUDP(h.ns, udpAddr, []string{fmt.Sprintf("r%d-0", i), fmt.Sprintf("r%d-1", i)}, 20*time.Millisecond); err != nil {
			t.Fatal(err)
		}
	}
	// Wait until the readers that run with the traffic hold every flow:
	// the UDP server its datagrams, observe (NFLOG) its records.
	waitRecords(t, obs, app, u, hosts)
	d.stop(t)

	app.mu.Lock()
	for src, founds := range app.seen {
		ap := netip.MustParseAddrPort(src)
		var i int
		fmt.Sscan(app.head[src], &i)
		want[src] = map[string]string{"tcp-option": hosts[i].id}
		if ap.Addr().Is4() {
			want[src]["ip-option"], want[src]["ip-id"] = hosts[i].id, hosts[i].id
		} else {
			want[src]["dest-opt"] = hosts[i].id
		}
		// The listener's own view.
		got := map[string]string{}
		for _, f := range founds {
			got[string(f.Method)] = f.String()
		}
		for m, v := range want[src] {
			if got[m] != v {
				t.Errorf("listener: %s (host %d): %s = %q, want %q", src, i, m, got[m], v)
			}
		}
	}
	app.mu.Unlock()
	if len(want) != 4 {
		t.Fatalf("listener saw %d connections, want 4: %v", len(want), app.seen)
	}
	for _, dg := range u.Seen() {
		var i, k int
		fmt.Sscanf(dg.Head, "r%d-%d", &i, &k)
		want[dg.Src] = map[string]string{"ip-option": hosts[i].id, "ip-id": hosts[i].id}
	}
	if len(want) != 6 {
		t.Fatalf("the servers saw %d flows, want 6 (4 TCP, 2 UDP): %v", len(want), want)
	}
	t.Logf("expected per source: %v", want)
	check := func(name string, recs []record) {
		t.Helper()
		t.Logf("%s: %d records", name, len(recs))
		got := map[string]map[string]string{}
		for _, r := range recs {
			if got[r.Src] == nil {
				got[r.Src] = map[string]string{}
			}
			got[r.Src][r.Method] = r.HostID
		}
		for src, ms := range want {
			for m, v := range ms {
				if got[src][m] != v {
					t.Errorf("%s: %s %s = %q, want %q", name, src, m, got[src][m], v)
				}
			}
		}
		for src := range got {
			if want[src] == nil {
				t.Errorf("%s: unexpected source %s: %v", name, src, got[src])
			}
		}
	}
	check("observe", obs.stop(t))
	if err := capture.Stop(); err != nil {
		t.Fatal(err)
	}
	check("decode", runDecode(t, pcap))
}

type observer struct {
	cmd  *exec.Cmd
	out  strings.Builder
	mu   sync.Mutex
	done chan struct{}
}

func startObserve(t *testing.T, l *lab.Lab) *observer {
	t.Helper()
	o := &observer{done: make(chan struct{})}
	o.cmd = exec.Command("ip", "netns", "exec", l.Srv, serverBinary(t), "observe", "--methods", readMethods,
		"--ports", "8081", "--udp-ports", strings.TrimPrefix(udpAddr, lab.ServerAddr+":"))
	stdout, err := o.cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	stderr, err := o.cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := o.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	ready := make(chan struct{})
	go func() {
		sc := bufio.NewScanner(stderr)
		once := sync.Once{}
		for sc.Scan() {
			o.mu.Lock()
			o.out.WriteString("stderr: " + sc.Text() + "\n")
			o.mu.Unlock()
			if strings.Contains(sc.Text(), "observing:") {
				once.Do(func() { close(ready) })
			}
		}
	}()
	var lines []string
	go func() {
		defer close(o.done)
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			o.mu.Lock()
			lines = append(lines, sc.Text())
			o.out.WriteString(sc.Text() + "\n")
			o.mu.Unlock()
		}
		o.cmd.Wait()
	}()
	t.Cleanup(func() { o.cmd.Process.Kill(); <-o.done })
	select {
	case <-ready:
	case <-o.done:
		t.Fatalf("natreveal observe exited early:\n%s", o.log())
	case <-time.After(30 * time.Second):
		t.Fatalf("natreveal observe not ready:\n%s", o.log())
	}
	return o
}

// waitRecords waits (10 s) until the UDP server has both hosts' datagrams
// (2 each) and observe has reported, for each of the 6 flows the servers
// saw, every method with the HOST_ID of its host. The records are checked
// again, with the listener's and decode's, once the readers stop.
func waitRecords(t *testing.T, obs *observer, app *appServer, u *lab.UDPServer, hosts []struct{ ns, id string }) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		want := map[string]map[string]string{}
		app.mu.Lock()
		for src, head := range app.head {
			var i int
			fmt.Sscan(head, &i)
			if i < 0 || i >= len(hosts) {
				continue
			}
			want[src] = map[string]string{"tcp-option": hosts[i].id}
			if netip.MustParseAddrPort(src).Addr().Is4() {
				want[src]["ip-option"], want[src]["ip-id"] = hosts[i].id, hosts[i].id
			} else {
				want[src]["dest-opt"] = hosts[i].id
			}
		}
		app.mu.Unlock()
		dgs := u.Seen()
		for _, dg := range dgs {
			var i, k int
			fmt.Sscanf(dg.Head, "r%d-%d", &i, &k)
			if i < 0 || i >= len(hosts) {
				continue
			}
			want[dg.Src] = map[string]string{"ip-option": hosts[i].id, "ip-id": hosts[i].id}
		}
		got := map[string]map[string]string{}
		for _, line := range strings.Split(obs.log(), "\n") {
			var r record
			if !strings.HasPrefix(line, "{") || json.Unmarshal([]byte(line), &r) != nil {
				continue
			}
			if got[r.Src] == nil {
				got[r.Src] = map[string]string{}
			}
			got[r.Src][r.Method] = r.HostID
		}
		missing := ""
		if len(dgs) < 4 || len(want) < 6 {
			missing = fmt.Sprintf("%d of 4 datagrams, %d of 6 flows at the servers", len(dgs), len(want))
		}
		for src, ms := range want {
			for m, v := range ms {
				if missing == "" && got[src][m] != v {
					missing = fmt.Sprintf("observe: %s %s = %q, want %q", src, m, got[src][m], v)
				}
			}
		}
		if missing == "" {
			return
		}
		if time.Now().After(deadline) {
			t.Logf("after 10s: %s; the checks below say what is wrong", missing)
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func (o *observer) log() string {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.out.String()
}

// stop ends observe with SIGTERM and returns its records.
func (o *observer) stop(t *testing.T) []record {
	t.Helper()
	o.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-o.done:
	case <-time.After(10 * time.Second):
		t.Fatalf("observe did not stop:\n%s", o.log())
	}
	if code := o.cmd.ProcessState.ExitCode(); code != 0 {
		t.Fatalf("observe exited %d:\n%s", code, o.log())
	}
	return parseRecords(t, "observe", o.log())
}

func runDecode(t *testing.T, pcap string) []record {
	t.Helper()
	out, err := exec.Command(serverBinary(t), "decode", pcap, "--methods", readMethods).CombinedOutput()
	if err != nil {
		t.Fatalf("natreveal decode: %v\n%s", err, out)
	}
	return parseRecords(t, "decode", string(out))
}

func parseRecords(t *testing.T, name, out string) []record {
	t.Helper()
	var recs []record
	for _, line := range strings.Split(out, "\n") {
		if !strings.HasPrefix(line, "{") {
			continue
		}
		var r record
		if err := json.Unmarshal([]byte(line), &r); err != nil {
			t.Fatalf("%s: line %q: %v", name, line, err)
		}
		recs = append(recs, r)
	}
	if len(recs) == 0 {
		t.Fatalf("%s reported nothing:\n%s", name, out)
	}
	return recs
}
