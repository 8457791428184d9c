// Package lab builds network-namespace labs for natreveal: two inside hosts
// on a bridge behind a NAT that masquerades with the kernel's own nftables
// NAT, and a server. It is the one lab of the `natreveal-lab` command (Table
// 1, the bench, the demo) and of the end-to-end tests. Namespace names carry
// the process id; Close deletes everything.
//
// New builds the direct topology, the NAT's public link going straight to
// the server:
//
//	c1 100.64.0.2 ─┐
//	               ├─ br0 100.64.0.1 [nat] 192.0.2.1 ── 192.0.2.2 [srv] 198.51.100.1
//	c2 100.64.0.3 ─┘
//
// and the same in IPv6 (2001:db8::/32, RFC 3849), masqueraded by NAT66:
//
//	c1 2001:db8:1::2 ─┐
//	                  ├─ br0 2001:db8:1::1 [nat] 2001:db8:2::1 ── 2001:db8:2::2 [srv] 2001:db8:3::1
//	c2 2001:db8:1::3 ─┘
//
// NewRouted puts a transit router between NAT and server, whose behaviour
// SetPath picks (clean, dropping optioned packets, or a second NAT):
//
//	c1 100.64.0.2 ─┐
//	               ├─ br0 100.64.0.1 [nat] 192.0.2.1 ── 192.0.2.2 [rtr] 198.51.100.254 ── 198.51.100.1, .2 [srv]
//	c2 100.64.0.3 ─┘
//
// and the same in IPv6: inside 2001:db8:1::/64, NAT–router 2001:db8:2::/64,
// router–server 2001:db8:3::/64 (server 2001:db8:3::1).
package lab

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// Lab addresses: inside 100.64.0.0/24 (RFC 6598), NAT public 192.0.2.0/24,
// servers 198.51.100.0/24 (RFC 5737), IPv6 2001:db8::/32 (RFC 3849).
const (
	InsidePrefix  = "100.64.0.0/24"
	Client1       = "100.64.0.2"
	Client2       = "100.64.0.3"
	NATPublic     = "192.0.2.1"
	ServerAddr    = "198.51.100.1"
	ServerAddr2   = "198.51.100.2"   // NewRouted: a second server address (HIP: one conntrack entry per address pair)
	ServerPublic  = "192.0.2.2"      // New: the server's address on the NAT's public link
	RouterServer  = "198.51.100.254" // NewRouted: the router's address towards the server (the second NAT's public address)
	InsidePrefix6 = "2001:db8:1::/64"
	Client1v6     = "2001:db8:1::2"
	Client2v6     = "2001:db8:1::3"
	NATPublic6    = "2001:db8:2::1"
	ServerAddr6   = "2001:db8:3::1"
	ServerPublic6 = "2001:db8:2::2" // New: the server's address on the NAT's public link
	RouterServer6 = "2001:db8:3::fe"
)

// UserNAT is the operator's own masquerade in the direct topology, which
// natreveal must leave alone.
const UserNAT = `table ip nat {
	chain postrouting {
		type nat hook postrouting priority srcnat; policy accept;
		oifname "pub" masquerade
	}
}
table ip6 nat {
	chain postrouting {
		type nat hook postrouting priority srcnat; policy accept;
		oifname "pub" masquerade
	}
}
`

// userNATInet is the operator's masquerade in the routed topology, one
// inet table for both families.
const userNATInet = `table inet nat {
	chain postrouting {
		type nat hook postrouting priority srcnat; policy accept;
		oifname "pub" masquerade
	}
}
`

// Host is one inside host.
type Host struct {
	Name   string // "c1"
	NS     string // its namespace
	Addr   string
	Addr6  string
	HostID uint32 // what natreveal's default source (lower16) gives it
}

// Lab is one instance of a topology.
type Lab struct {
	C1, C2, NAT, Srv string // namespace names
	Rtr              string // the transit router's namespace; "" in the direct topology
	Hosts            []Host // the inside hosts, c1 and c2
	all              []string
}

// Namespaces lists every namespace of the lab.
func (l *Lab) Namespaces() []string { return append([]string(nil), l.all...) }

// New creates the direct topology: namespaces, links, addresses, routes
// and the user's NAT.
func New() (*Lab, error) {
	id := fmt.Sprintf("nr%d", os.Getpid())
	l := newLab(id+"c1", id+"c2", id+"nat", "", id+"srv")
	steps := [][]string{
		{"-n", l.NAT, "link", "add", "br0", "type", "bridge"},
		{"-n", l.NAT, "addr", "add", "100.64.0.1/24", "dev", "br0"},
		{"-n", l.NAT, "link", "set", "br0", "up"},
		{"-n", l.NAT, "link", "set", "lo", "up"},
		{"-n", l.NAT, "link", "add", "pub", "type", "veth", "peer", "name", "eth0", "netns", l.Srv},
		{"-n", l.NAT, "addr", "add", NATPublic + "/24", "dev", "pub"},
		{"-n", l.NAT, "link", "set", "pub", "up"},
		{"-n", l.NAT, "route", "add", "198.51.100.0/24", "via", ServerPublic},
		{"-n", l.Srv, "addr", "add", ServerPublic + "/24", "dev", "eth0"},
		{"-n", l.Srv, "addr", "add", ServerAddr + "/24", "dev", "lo"},
		{"-n", l.Srv, "link", "set", "eth0", "up"},
		{"-n", l.Srv, "link", "set", "lo", "up"},
		{"-n", l.Srv, "route", "add", "default", "via", NATPublic},
		// IPv6; nodad: addresses usable at once (RFC 4862 §5.4 would
		// delay them by a second).
		{"-n", l.NAT, "addr", "add", "2001:db8:1::1/64", "dev", "br0", "nodad"},
		{"-n", l.NAT, "addr", "add", NATPublic6 + "/64", "dev", "pub", "nodad"},
		{"-n", l.NAT, "route", "add", "2001:db8:3::/64", "via", ServerPublic6},
		{"-n", l.Srv, "addr", "add", ServerPublic6 + "/64", "dev", "eth0", "nodad"},
		{"-n", l.Srv, "addr", "add", ServerAddr6 + "/128", "dev", "lo", "nodad"},
		{"-n", l.Srv, "-6", "route", "add", "default", "via", NATPublic6},
	}
	if err := l.build(steps, UserNAT, l.NAT); err != nil {
		return nil, err
	}
	return l, nil
}

// NewRouted creates the topology with a transit router between NAT and
// server, on the clean path.
func NewRouted() (*Lab, error) {
	names := NSNames(os.Getpid())
	l := newLab(names[0], names[1], names[2], names[3], names[4])
	nat, rtr, srv := l.NAT, l.Rtr, l.Srv
	steps := [][]string{
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
	}
	if err := l.build(steps, userNATInet, nat, rtr); err != nil {
		return nil, err
	}
	return l, nil
}

// newLab names the namespaces (rtr "": none) and the inside hosts.
func newLab(c1, c2, nat, rtr, srv string) *Lab {
	l := &Lab{C1: c1, C2: c2, NAT: nat, Rtr: rtr, Srv: srv}
	l.Hosts = []Host{
		{Name: "c1", NS: c1, Addr: Client1, Addr6: Client1v6, HostID: 2},
		{Name: "c2", NS: c2, Addr: Client2, Addr6: Client2v6, HostID: 3},
	}
	for _, ns := range []string{c1, c2, nat, rtr, srv} {
		if ns != "" {
			l.all = append(l.all, ns)
		}
	}
	return l
}

// build adds the namespaces, runs the topology's ip steps, links the inside
// hosts to the NAT's bridge, turns forwarding on in the forwarders and loads
// the user's NAT. On error everything made so far is deleted.
func (l *Lab) build(steps [][]string, userNAT string, forwarders ...string) error {
	for _, ns := range l.all {
		exec.Command("ip", "netns", "del", ns).Run() // our own pid's leftover: cannot be alive
	}
	var all [][]string
	for _, ns := range l.all {
		all = append(all, []string{"netns", "add", ns})
	}
	all = append(all, steps...)
	for i, h := range l.Hosts {
		port := fmt.Sprintf("c%d", i+1)
		all = append(all,
			[]string{"-n", l.NAT, "link", "add", port, "type", "veth", "peer", "name", "eth0", "netns", h.NS},
			[]string{"-n", l.NAT, "link", "set", port, "master", "br0"},
			[]string{"-n", l.NAT, "link", "set", port, "up"},
			[]string{"-n", h.NS, "link", "set", "lo", "up"},
			[]string{"-n", h.NS, "addr", "add", h.Addr + "/24", "dev", "eth0"},
			[]string{"-n", h.NS, "addr", "add", h.Addr6 + "/64", "dev", "eth0", "nodad"},
			[]string{"-n", h.NS, "link", "set", "eth0", "up"},
			[]string{"-n", h.NS, "route", "add", "default", "via", "100.64.0.1"},
			[]string{"-n", h.NS, "-6", "route", "add", "default", "via", "2001:db8:1::1"},
		)
	}
	for _, s := range all {
		if out, err := exec.Command("ip", s...).CombinedOutput(); err != nil {
			l.Close()
			return fmt.Errorf("lab: ip %s: %v: %s", strings.Join(s, " "), err, out)
		}
	}
	for _, ns := range forwarders {
		if _, err := l.Exec(ns, "sysctl", "-qw", "net.ipv4.ip_forward=1", "net.ipv6.conf.all.forwarding=1"); err != nil {
			l.Close()
			return err
		}
	}
	if err := l.Nft(l.NAT, userNAT); err != nil {
		l.Close()
		return err
	}
	return nil
}

// Path is the transit router's behaviour (NewRouted).
type Path string

// The paths the routed lab offers.
const (
	PathClean   Path = "clean"      // the router forwards everything
	PathOptDrop Path = "opt-drop"   // the router drops IPv4 packets with options and IPv6 packets with a Destination Options header
	PathNAT2    Path = "second-nat" // the router masquerades too
)

// Paths lists the paths in the order Table 1 shows them.
var Paths = []Path{PathClean, PathOptDrop, PathNAT2}

// pathRules is the router's nft ruleset per path, in a table of its own
// (replaced atomically: the first line makes sure the delete finds it).
var pathRules = map[Path]string{
	PathClean: "",
	// Routers that drop optioned packets (RFC 6967 §5.3, RFC 7126): an
	// IPv4 header longer than 5 words carries options; RFC 7872 reports
	// the same for IPv6 extension headers.
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

// SetPath makes the transit router behave as p.
func (l *Lab) SetPath(p Path) error {
	if l.Rtr == "" {
		return errors.New("lab: no transit router in this topology")
	}
	script := "table inet labpath {}\ndelete table inet labpath\n" + pathRules[p]
	return l.Nft(l.Rtr, script)
}

// Close deletes every namespace of the lab, killing what still runs there.
func (l *Lab) Close() error {
	var first error
	for _, ns := range l.all {
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

// Exec runs a command inside namespace ns (bounded to a minute) and returns
// its combined output.
func (l *Lab) Exec(ns string, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	out, err := exec.CommandContext(ctx, "ip", append([]string{"netns", "exec", ns}, args...)...).CombinedOutput()
	if err != nil {
		return string(out), fmt.Errorf("lab: %s: %s: %v: %s", ns, strings.Join(args, " "), err, out)
	}
	return string(out), nil
}

// Nft loads an nft script into namespace ns.
func (l *Lab) Nft(ns, script string) error {
	cmd := exec.Command("ip", "netns", "exec", ns, "nft", "-f", "-")
	cmd.Stdin = strings.NewReader(script)
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("lab: nft in %s: %v: %s", ns, err, out)
	}
	return nil
}

// Ruleset is `nft list ruleset` in namespace ns.
func (l *Lab) Ruleset(ns string) (string, error) { return l.Exec(ns, "nft", "list", "ruleset") }

// nsPrefix starts every namespace name of the routed lab: nsPrefix, the
// pid, "-" and a role.
const nsPrefix = "nrlab"

var nsPattern = regexp.MustCompile(`^` + nsPrefix + `([0-9]+)-(c1|c2|nat|rtr|srv)$`)

// NSNames returns the namespace names the routed lab of process pid uses:
// c1, c2, nat, rtr, srv.
func NSNames(pid int) []string {
	var ns []string
	for _, r := range []string{"c1", "c2", "nat", "rtr", "srv"} {
		ns = append(ns, fmt.Sprintf("%s%d-%s", nsPrefix, pid, r))
	}
	return ns
}

// Leftovers returns the routed lab namespaces that exist now, by pid.
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

// CleanLeftovers deletes the namespaces of earlier routed-lab runs whose
// process is gone (killed before it could clean up). Namespaces of a live
// process are left alone. It returns the names deleted.
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
