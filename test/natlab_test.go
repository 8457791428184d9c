package test

// The topology the HA pair (ha_test.go) and the several active NATs
// (scaleout_test.go) share: NAT boxes between an inside segment and an
// outside segment, each a bridge in a namespace of its own, clients on the
// inside one, the server on the outside one.
//
//	c1 ─┐                     ┌─ box lan ═ box ═ box pub ─┐
//	c2 ─┴─ [lan] br0 ─────────┤                           ├── [wan] br0 ── 192.0.2.2 [srv] 198.51.100.1
//	                          └─ box lan ═ box ═ box pub ─┘

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/natreveal/natreveal/lab"
)

// natLab is the shared topology; its namespaces are named <tag><pid>-<role>.
type natLab struct {
	dir           string
	lan, wan, srv string
	clients       []string // namespaces, in natClient order
	all           []string
	procs         []*exec.Cmd
	mu            sync.Mutex
}

// natBox is one NAT box: its inside leg "lan" and its public leg "pub".
type natBox struct {
	name, ns         string
	lanAddr, pubAddr string
	mappingLog       string
	natreveal        *lab.Process
}

// natClient is an inside host: its address (in 100.64.0.0/24) and gateway.
type natClient struct {
	addr, gateway string
}

func ipOrFatal(t *testing.T, args ...string) {
	t.Helper()
	if out, err := exec.Command("ip", args...).CombinedOutput(); err != nil {
		t.Fatalf("ip %s: %v: %s", strings.Join(args, " "), err, out)
	}
}

func nsExec(t *testing.T, ns string, args ...string) string {
	t.Helper()
	out, err := exec.Command("ip", append([]string{"netns", "exec", ns}, args...)...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s: %s: %v: %s", ns, strings.Join(args, " "), err, out)
	}
	return string(out)
}

// newNATLab builds the segments, the boxes' legs (forwarding on, the server's
// prefix routed via 192.0.2.2), the clients and the server; srvGateway is the
// server's default route ("" none: the boxes' public addresses are on its
// link). Each box's NAT rules are the caller's.
func newNATLab(t *testing.T, tag string, boxes []*natBox, clients []natClient, srvGateway string) *natLab {
	t.Helper()
	p := fmt.Sprintf("%s%d-", tag, os.Getpid())
	l := &natLab{dir: t.TempDir(), lan: p + "lan", wan: p + "wan", srv: p + "srv"}
	for i := range clients {
		l.clients = append(l.clients, fmt.Sprintf("%sc%d", p, i+1))
	}
	l.all = append(append([]string{}, l.clients...), l.lan, l.wan, l.srv)
	for _, b := range boxes {
		b.ns = p + b.name
		b.mappingLog = filepath.Join(l.dir, b.name+"-mapping.jsonl")
		l.all = append(l.all, b.ns)
	}
	t.Cleanup(l.close)
	for _, ns := range l.all {
		exec.Command("ip", "netns", "del", ns).Run()
		ipOrFatal(t, "netns", "add", ns)
		ipOrFatal(t, "-n", ns, "link", "set", "lo", "up")
	}
	for _, br := range []string{l.lan, l.wan} {
		ipOrFatal(t, "-n", br, "link", "add", "br0", "type", "bridge", "mcast_snooping", "0")
		ipOrFatal(t, "-n", br, "link", "set", "br0", "up")
	}
	for _, b := range boxes {
		l.port(t, b.ns, "lan", l.lan, b.name)
		l.port(t, b.ns, "pub", l.wan, b.name)
		ipOrFatal(t, "-n", b.ns, "addr", "add", b.lanAddr+"/24", "dev", "lan")
		ipOrFatal(t, "-n", b.ns, "addr", "add", b.pubAddr+"/24", "dev", "pub")
		ipOrFatal(t, "-n", b.ns, "link", "set", "lan", "up")
		ipOrFatal(t, "-n", b.ns, "link", "set", "pub", "up")
		ipOrFatal(t, "-n", b.ns, "route", "add", "198.51.100.0/24", "via", "192.0.2.2")
		nsExec(t, b.ns, "sysctl", "-qw", "net.ipv4.ip_forward=1")
	}
	for i, c := range clients {
		ns := l.clients[i]
		l.port(t, ns, "eth0", l.lan, fmt.Sprintf("c%d", i+1))
		ipOrFatal(t, "-n", ns, "addr", "add", c.addr+"/24", "dev", "eth0")
		ipOrFatal(t, "-n", ns, "link", "set", "eth0", "up")
		ipOrFatal(t, "-n", ns, "route", "add", "default", "via", c.gateway)
	}
	l.port(t, l.srv, "eth0", l.wan, "srv")
	ipOrFatal(t, "-n", l.srv, "addr", "add", "192.0.2.2/24", "dev", "eth0")
	ipOrFatal(t, "-n", l.srv, "addr", "add", haSrv+"/32", "dev", "lo")
	ipOrFatal(t, "-n", l.srv, "link", "set", "eth0", "up")
	if srvGateway != "" {
		ipOrFatal(t, "-n", l.srv, "route", "add", "default", "via", srvGateway)
	}
	return l
}

// port links ns's ifname to the bridge in namespace br (its port brport).
func (l *natLab) port(t *testing.T, ns, ifname, br, brport string) {
	t.Helper()
	ipOrFatal(t, "-n", ns, "link", "add", ifname, "type", "veth", "peer", "name", brport, "netns", br)
	ipOrFatal(t, "-n", br, "link", "set", brport, "master", "br0")
	ipOrFatal(t, "-n", br, "link", "set", brport, "up")
}

func (l *natLab) write(t *testing.T, name, data string) string {
	t.Helper()
	p := filepath.Join(l.dir, name)
	if err := os.WriteFile(p, []byte(data), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// spawn starts a long-running process in ns, its output in dir/<log>.
func (l *natLab) spawn(t *testing.T, ns, log string, argv ...string) *exec.Cmd {
	t.Helper()
	f, err := os.Create(filepath.Join(l.dir, log))
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("ip", append([]string{"netns", "exec", ns}, argv...)...)
	cmd.Stdout, cmd.Stderr = f, f
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { cmd.Wait(); f.Close() }()
	l.mu.Lock()
	l.procs = append(l.procs, cmd)
	l.mu.Unlock()
	return cmd
}

// startNatreveal runs `natreveal run` with config cfg on box b, its mapping
// log in b.mappingLog.
func (l *natLab) startNatreveal(t *testing.T, b *natBox, cfg string) {
	t.Helper()
	p, err := lab.StartInNS(t.Context(), b.ns, []string{binary, "run", "--config", cfg, "--mapping-log", b.mappingLog}, nil, 30*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	b.natreveal = p
}

// killIn SIGKILLs the processes in namespace ns, by id.
func killIn(ns string) {
	out, _ := exec.Command("ip", "netns", "pids", ns).Output()
	for _, f := range strings.Fields(string(out)) {
		if pid, err := strconv.Atoi(f); err == nil && pid != os.Getpid() {
			syscall.Kill(pid, syscall.SIGKILL)
		}
	}
}

func (l *natLab) close() {
	for _, ns := range l.all {
		killIn(ns)
	}
	l.mu.Lock()
	for _, c := range l.procs {
		if c.Process != nil {
			c.Process.Kill()
		}
	}
	l.mu.Unlock()
	for _, ns := range l.all {
		exec.Command("ip", "netns", "del", ns).Run()
	}
}
