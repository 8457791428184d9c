// Package labrun is `natreveal lab`: it builds its own network namespaces
// (two inside hosts, a NAT running natreveal, a transit router, a server),
// runs every method natreveal has over UDP, TCP, HTTP and TLS, on a clean
// path, through a router that drops packets carrying IP options and through
// a second NAT, and fills in Table 1 of the analysis (draft-boucadair-intarea-
// nat-reveal-analysis-04, published as RFC 6967) with
// the seed's claim and the measured value side by side.
//
// The topology (DESIGN.md lab addressing; names carry the process id):
//
//	c1 100.64.0.2 ─┐
//	               ├─ br0 100.64.0.1 [nat] 192.0.2.1 ── 192.0.2.2 [rtr] 198.51.100.254 ── 198.51.100.1, .2 [srv]
//	c2 100.64.0.3 ─┘
//
// and the same in IPv6: inside 2001:db8:1::/64, NAT–router 2001:db8:2::/64,
// router–server 2001:db8:3::/64 (server 2001:db8:3::1). The NAT masquerades
// (the kernel's own NAT, the user's table); the router forwards, and per
// path drops optioned packets or masquerades again.
package labrun

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// Lab addresses.
const (
	InsidePrefix  = "100.64.0.0/24"
	InsidePrefix6 = "2001:db8:1::/64"
	NATPublic     = "192.0.2.1"
	NATPublic6    = "2001:db8:2::1"
	RouterServer  = "198.51.100.254" // the router's address towards the server (the second NAT's public address)
	RouterServer6 = "2001:db8:3::fe"
	ServerAddr    = "198.51.100.1"
	ServerAddr2   = "198.51.100.2" // a second server address (HIP: one conntrack entry per address pair)
	ServerAddr6   = "2001:db8:3::1"
)

// Host is one inside host.
type Host struct {
	Name   string // "c1"
	NS     string // its namespace
	Addr   string
	Addr6  string
	HostID uint32 // what natreveal's default source (lower16) gives it
}

// Path is the transit router's behaviour.
type Path string

// The paths the lab measures.
const (
	PathClean   Path = "clean"      // the router forwards everything
	PathOptDrop Path = "opt-drop"   // the router drops IPv4 packets with options and IPv6 packets with a Destination Options header
	PathNAT2    Path = "second-nat" // the router masquerades too
)

// Paths lists the paths in the order the table shows them.
var Paths = []Path{PathClean, PathOptDrop, PathNAT2}

// pathRules is the router's nft ruleset per path, in a table of its own
// (replaced atomically: the first line makes sure the delete finds it).
var pathRules = map[Path]string{
	PathClean: "",
	// Routers that drop optioned packets (seed §3.1.2, [Options]): an IPv4
	// header longer than 5 words carries options; RFC 7872 reports the same
	// for IPv6 extension headers.
	PathOptDrop: `table inet labpath {
	chain forward {
		type filter hook forward priority filter; policy accept;
		ip hdrlength != 5 counter drop
		exthdr dst exists counter drop
	}
}
`,
	PathNAT2: `table inet labpath {
	chain postrouting {
		type nat hook postrouting priority srcnat; policy accept;
		oifname "srv" masquerade
	}
}
`,
}

// userNAT is the operator's own masquerade on the NAT, which natreveal
// leaves alone.
const userNAT = `table inet nat {
	chain postrouting {
		type nat hook postrouting priority srcnat; policy accept;
		oifname "pub" masquerade
	}
}
`

// nsPrefix starts every namespace name the lab makes: nsPrefix, the pid,
// "-" and a role.
const nsPrefix = "nrlab"

var nsPattern = regexp.MustCompile(`^` + nsPrefix + `([0-9]+)-(c1|c2|nat|rtr|srv)$`)

// Topology is one instance of the lab's namespaces.
type Topology struct {
	Hosts         []Host
	NAT, Rtr, Srv string
	all           []string
}

// NSNames returns the namespace names the lab of process pid uses.
func NSNames(pid int) []string {
	var ns []string
	for _, r := range []string{"c1", "c2", "nat", "rtr", "srv"} {
		ns = append(ns, fmt.Sprintf("%s%d-%s", nsPrefix, pid, r))
	}
	return ns
}

// Leftovers returns the lab namespaces that exist now, by pid.
func Leftovers() (map[int][]string, error) {
	ents, err := os.ReadDir("/run/netns")
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	out := map[int][]string{}
	for _, e := range ents {
		if m := nsPattern.FindStringSubmatch(e.Name()); m != nil {
			pid, _ := strconv.Atoi(m[1])
			out[pid] = append(out[pid], e.Name())
		}
	}
	return out, nil
}

// CleanLeftovers deletes the namespaces of earlier lab runs whose process
// is gone (killed before it could clean up). Namespaces of a live process
// are left alone. It returns the names deleted.
func CleanLeftovers() ([]string, error) {
	left, err := Leftovers()
	if err != nil {
		return nil, err
	}
	var gone []string
	for pid, names := range left {
		if pid != os.Getpid() && alive(pid) {
			continue
		}
		for _, n := range names {
			killIn(n) // e.g. the natreveal run of the killed lab
			if err := exec.Command("ip", "netns", "del", n).Run(); err == nil {
				gone = append(gone, n)
			}
		}
	}
	return gone, nil
}

// killIn kills the processes left in a lab namespace (`ip netns pids`):
// without them the namespace would live on after its name is deleted.
func killIn(ns string) {
	out, err := exec.Command("ip", "netns", "pids", ns).Output()
	if err != nil {
		return
	}
	for _, f := range strings.Fields(string(out)) {
		if pid, err := strconv.Atoi(f); err == nil && pid != os.Getpid() {
			unix.Kill(pid, unix.SIGKILL)
		}
	}
}

// alive: the process exists and is not a zombie (a killed lab whose
// parent has not reaped it yet is dead).
func alive(pid int) bool {
	if err := unix.Kill(pid, 0); err != nil && !errors.Is(err, unix.EPERM) {
		return false
	}
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return !errors.Is(err, os.ErrNotExist)
	}
	// pid (comm) state ...: comm may hold spaces and parentheses.
	if i := strings.LastIndexByte(string(stat), ')'); i >= 0 && i+2 < len(stat) {
		return stat[i+2] != 'Z'
	}
	return true
}

// NewTopology creates the namespaces, links, addresses, routes and the
// NAT's masquerade. On error everything made so far is deleted.
func NewTopology() (*Topology, error) {
	names := NSNames(os.Getpid())
	t := &Topology{NAT: names[2], Rtr: names[3], Srv: names[4]}
	t.Hosts = []Host{
		{Name: "c1", NS: names[0], Addr: "100.64.0.2", Addr6: "2001:db8:1::2", HostID: 2},
		{Name: "c2", NS: names[1], Addr: "100.64.0.3", Addr6: "2001:db8:1::3", HostID: 3},
	}
	t.all = names
	for _, ns := range t.all {
		exec.Command("ip", "netns", "del", ns).Run() // our own pid's leftover: cannot be alive
	}
	var steps [][]string
	for _, ns := range t.all {
		steps = append(steps, []string{"netns", "add", ns})
	}
	nat, rtr, srv := t.NAT, t.Rtr, t.Srv
	steps = append(steps, [][]string{
		{"-n", nat, "link", "set", "lo", "up"},
		{"-n", nat, "link", "add", "br0", "type", "bridge"},
		{"-n", nat, "addr", "add", "100.64.0.1/24", "dev", "br0"},
		{"-n", nat, "addr", "add", "2001:db8:1::1/64", "dev", "br0", "nodad"},
		{"-n", nat, "link", "set", "br0", "up"},
		{"-n", nat, "link", "add", "pub", "type", "veth", "peer", "name", "nat", "netns", rtr},
		{"-n", nat, "addr", "add", NATPublic + "/24", "dev", "pub"},
		{"-n", nat, "addr", "add", NATPublic6 + "/64", "dev", "pub", "nodad"},
		{"-n", nat, "link", "set", "pub", "up"},
		{"-n", nat, "route", "add", "default", "via", "192.0.2.2"},
		{"-n", nat, "-6", "route", "add", "default", "via", "2001:db8:2::2"},

		{"-n", rtr, "link", "set", "lo", "up"},
		{"-n", rtr, "addr", "add", "192.0.2.2/24", "dev", "nat"},
		{"-n", rtr, "addr", "add", "2001:db8:2::2/64", "dev", "nat", "nodad"},
		{"-n", rtr, "link", "set", "nat", "up"},
		{"-n", rtr, "link", "add", "srv", "type", "veth", "peer", "name", "eth0", "netns", srv},
		{"-n", rtr, "addr", "add", RouterServer + "/24", "dev", "srv"},
		{"-n", rtr, "addr", "add", RouterServer6 + "/64", "dev", "srv", "nodad"},
		{"-n", rtr, "link", "set", "srv", "up"},

		{"-n", srv, "link", "set", "lo", "up"},
		{"-n", srv, "addr", "add", ServerAddr + "/24", "dev", "eth0"},
		{"-n", srv, "addr", "add", ServerAddr2 + "/24", "dev", "eth0"},
		{"-n", srv, "addr", "add", ServerAddr6 + "/64", "dev", "eth0", "nodad"},
		{"-n", srv, "link", "set", "eth0", "up"},
		{"-n", srv, "route", "add", "default", "via", RouterServer},
		{"-n", srv, "-6", "route", "add", "default", "via", RouterServer6},
	}...)
	for i, h := range t.Hosts {
		port := fmt.Sprintf("c%d", i+1)
		steps = append(steps,
			[]string{"-n", nat, "link", "add", port, "type", "veth", "peer", "name", "eth0", "netns", h.NS},
			[]string{"-n", nat, "link", "set", port, "master", "br0"},
			[]string{"-n", nat, "link", "set", port, "up"},
			[]string{"-n", h.NS, "link", "set", "lo", "up"},
			[]string{"-n", h.NS, "addr", "add", h.Addr + "/24", "dev", "eth0"},
			[]string{"-n", h.NS, "addr", "add", h.Addr6 + "/64", "dev", "eth0", "nodad"},
			[]string{"-n", h.NS, "link", "set", "eth0", "up"},
			[]string{"-n", h.NS, "route", "add", "default", "via", "100.64.0.1"},
			[]string{"-n", h.NS, "-6", "route", "add", "default", "via", "2001:db8:1::1"},
		)
	}
	for _, s := range steps {
		if out, err := exec.Command("ip", s...).CombinedOutput(); err != nil {
			t.Close()
			return nil, fmt.Errorf("lab: ip %s: %v: %s", strings.Join(s, " "), err, out)
		}
	}
	for _, ns := range []string{nat, rtr} {
		if _, err := t.Exec(ns, "sysctl", "-qw", "net.ipv4.ip_forward=1", "net.ipv6.conf.all.forwarding=1"); err != nil {
			t.Close()
			return nil, err
		}
	}
	if err := t.Nft(nat, userNAT); err != nil {
		t.Close()
		return nil, err
	}
	return t, nil
}

// SetPath makes the transit router behave as p.
func (t *Topology) SetPath(p Path) error {
	script := "table inet labpath {}\ndelete table inet labpath\n" + pathRules[p]
	return t.Nft(t.Rtr, script)
}

// Close deletes every namespace of the lab.
func (t *Topology) Close() error {
	var first error
	for _, ns := range t.all {
		if _, err := os.Stat("/run/netns/" + ns); err != nil {
			continue
		}
		killIn(ns)
		if out, err := exec.Command("ip", "netns", "del", ns).CombinedOutput(); err != nil && first == nil {
			first = fmt.Errorf("lab: delete %s: %v: %s", ns, err, out)
		}
	}
	return first
}

// Exec runs a command in namespace ns (bounded to 30 s).
func (t *Topology) Exec(ns string, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, "ip", append([]string{"netns", "exec", ns}, args...)...).CombinedOutput()
	if err != nil {
		return string(out), fmt.Errorf("lab: %s: %s: %v: %s", ns, strings.Join(args, " "), err, out)
	}
	return string(out), nil
}

// Nft loads an nft script into namespace ns.
func (t *Topology) Nft(ns, script string) error {
	cmd := exec.Command("ip", "netns", "exec", ns, "nft", "-f", "-")
	cmd.Stdin = strings.NewReader(script)
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("lab: nft in %s: %v: %s", ns, err, out)
	}
	return nil
}

// Do runs fn on an OS thread switched into namespace ns; sockets fn
// creates stay in ns and can be used from any goroutine afterwards.
func Do(ns string, fn func() error) error {
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		if err := setns(ns); err != nil {
			errc <- err
			return // the thread stays locked and is discarded
		}
		errc <- fn()
		// Not unlocked: the thread ends with this goroutine, so no other
		// goroutine ever runs in ns by accident.
	}()
	return <-errc
}

func setns(ns string) error {
	fd, err := unix.Open("/run/netns/"+ns, unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("lab: open netns %s: %w", ns, err)
	}
	defer unix.Close(fd)
	if err := unix.Setns(fd, syscall.CLONE_NEWNET); err != nil {
		return fmt.Errorf("lab: enter netns %s: %w", ns, err)
	}
	return nil
}
