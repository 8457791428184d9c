// Package lab builds the namespace topology of DESIGN.md for end-to-end tests
// and demos: two inside hosts on a bridge, a NAT that masquerades with the
// kernel's own nftables NAT, and a server. Namespace names carry the process
// id; Close deletes everything.
//
//	c1 100.64.0.2 ─┐
//	               ├─ br0 100.64.0.1 [nat] 192.0.2.1 ── 192.0.2.2 [srv] 198.51.100.1
//	c2 100.64.0.3 ─┘
//
// and the same in IPv6 (DESIGN.md: 2001:db8::/32), masqueraded by NAT66:
//
//	c1 2001:db8:1::2 ─┐
//	                  ├─ br0 2001:db8:1::1 [nat] 2001:db8:2::1 ── 2001:db8:2::2 [srv] 2001:db8:3::1
//	c2 2001:db8:1::3 ─┘
package lab

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// Lab addresses (DESIGN.md: inside 100.64.0.0/24, NAT public 192.0.2.0/24,
// servers 198.51.100.0/24).
const (
	InsidePrefix = "100.64.0.0/24"
	Client1      = "100.64.0.2"
	Client2      = "100.64.0.3"
	NATPublic    = "192.0.2.1"
	ServerAddr   = "198.51.100.1"
	ServerPublic = "192.0.2.2" // the server's address on the NAT's public link

	InsidePrefix6 = "2001:db8:1::/64"
	Client1v6     = "2001:db8:1::2"
	Client2v6     = "2001:db8:1::3"
	NATPublic6    = "2001:db8:2::1"
	ServerAddr6   = "2001:db8:3::1"
	ServerPublic6 = "2001:db8:2::2"
)

// UserNAT is the operator's own masquerade, which natreveal must leave alone.
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

// Lab is one instance of the topology.
type Lab struct {
	C1, C2, NAT, Srv string // namespace names
	all              []string
}

// New creates the namespaces, links, addresses, routes and the user's NAT.
func New() (*Lab, error) {
	id := fmt.Sprintf("nr%d", os.Getpid())
	l := &Lab{C1: id + "c1", C2: id + "c2", NAT: id + "nat", Srv: id + "srv"}
	l.all = []string{l.C1, l.C2, l.NAT, l.Srv}
	for _, ns := range l.all {
		exec.Command("ip", "netns", "del", ns).Run() // a leftover of a killed run
	}
	steps := [][]string{
		{"netns", "add", l.C1}, {"netns", "add", l.C2}, {"netns", "add", l.NAT}, {"netns", "add", l.Srv},
		{"-n", l.NAT, "link", "add", "br0", "type", "bridge"},
		{"-n", l.NAT, "addr", "add", "100.64.0.1/24", "dev", "br0"},
		{"-n", l.NAT, "link", "set", "br0", "up"},
		{"-n", l.NAT, "link", "set", "lo", "up"},
		{"-n", l.NAT, "link", "add", "pub", "type", "veth", "peer", "name", "eth0", "netns", l.Srv},
		{"-n", l.NAT, "addr", "add", NATPublic + "/24", "dev", "pub"},
		{"-n", l.NAT, "link", "set", "pub", "up"},
		{"-n", l.NAT, "route", "add", "198.51.100.0/24", "via", "192.0.2.2"},
		{"-n", l.Srv, "addr", "add", "192.0.2.2/24", "dev", "eth0"},
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
	for i, c := range []struct{ ns, addr, addr6 string }{{l.C1, Client1, Client1v6}, {l.C2, Client2, Client2v6}} {
		port := fmt.Sprintf("c%d", i+1)
		steps = append(steps,
			[]string{"-n", l.NAT, "link", "add", port, "type", "veth", "peer", "name", "eth0", "netns", c.ns},
			[]string{"-n", l.NAT, "link", "set", port, "master", "br0"},
			[]string{"-n", l.NAT, "link", "set", port, "up"},
			[]string{"-n", c.ns, "addr", "add", c.addr + "/24", "dev", "eth0"},
			[]string{"-n", c.ns, "link", "set", "eth0", "up"},
			[]string{"-n", c.ns, "link", "set", "lo", "up"},
			[]string{"-n", c.ns, "route", "add", "default", "via", "100.64.0.1"},
			[]string{"-n", c.ns, "addr", "add", c.addr6 + "/64", "dev", "eth0", "nodad"},
			[]string{"-n", c.ns, "-6", "route", "add", "default", "via", "2001:db8:1::1"},
		)
	}
	for _, s := range steps {
		if out, err := exec.Command("ip", s...).CombinedOutput(); err != nil {
			l.Close()
			return nil, fmt.Errorf("lab: ip %s: %v: %s", strings.Join(s, " "), err, out)
		}
	}
	if _, err := l.Exec(l.NAT, "sysctl", "-qw", "net.ipv4.ip_forward=1", "net.ipv6.conf.all.forwarding=1"); err != nil {
		l.Close()
		return nil, err
	}
	if err := l.Nft(l.NAT, UserNAT); err != nil {
		l.Close()
		return nil, err
	}
	return l, nil
}

// Close deletes every namespace of the lab.
func (l *Lab) Close() error {
	var first error
	for _, ns := range l.all {
		if out, err := exec.Command("ip", "netns", "del", ns).CombinedOutput(); err != nil && first == nil {
			first = fmt.Errorf("lab: delete %s: %v: %s", ns, err, out)
		}
	}
	return first
}

// Exec runs a command inside namespace ns and returns its combined output.
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

// Do runs fn on an OS thread switched into namespace ns. Sockets fn creates
// stay in ns after Do returns, so they can be used from any goroutine.
func Do(ns string, fn func() error) error {
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		// The thread is left locked (and so discarded) if switching back fails.
		orig, err := unix.Open("/proc/thread-self/ns/net", unix.O_RDONLY|unix.O_CLOEXEC, 0)
		if err != nil {
			errc <- fmt.Errorf("lab: open own netns: %w", err)
			return
		}
		defer unix.Close(orig)
		target, err := unix.Open("/run/netns/"+ns, unix.O_RDONLY|unix.O_CLOEXEC, 0)
		if err != nil {
			errc <- fmt.Errorf("lab: open netns %s: %w", ns, err)
			return
		}
		defer unix.Close(target)
		if err := unix.Setns(target, unix.CLONE_NEWNET); err != nil {
			errc <- fmt.Errorf("lab: enter netns %s: %w", ns, err)
			return
		}
		ferr := fn()
		if err := unix.Setns(orig, unix.CLONE_NEWNET); err != nil {
			errc <- fmt.Errorf("lab: leave netns %s: %w", ns, err)
			return
		}
		runtime.UnlockOSThread()
		errc <- ferr
	}()
	return <-errc
}
