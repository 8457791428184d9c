package table

// The blacklisting row (RFC 6269 §13.1; RFC 6967 §1: "the server should be
// able to sort out the packets by sending host"): for each method the server
// blocks host c1 by its HOST_ID and the lab counts c1's connections refused
// and its neighbour c2's completed, both behind the one public address.

import (
	"crypto/tls"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"sync"

	"github.com/google/nftables"
	proxyproto "github.com/pires/go-proxyproto"

	"github.com/natreveal/natreveal/guard"
	"github.com/natreveal/natreveal/lab"
	"github.com/natreveal/natreveal/method"
	"github.com/natreveal/natreveal/method/all"
)

// Where a block happened.
const (
	WhereKernel = "server kernel"
	WhereApp    = "application"
)

// Block is the blacklisting row's measurement of one method.
type Block struct {
	Where     string     `json:"where"` // WhereKernel or WhereApp
	How       string     `json:"how"`   // what blocked c1, as an admin would set it up
	Blocked   BlockCount `json:"blocked"`
	Neighbour BlockCount `json:"neighbour"`
}

// BlockCount is one host's probes while c1 was blocked.
type BlockCount struct {
	Host      string `json:"host"`
	HostID    string `json:"host_id"`
	Attempted int    `json:"attempted"`
	Completed int    `json:"completed"`
	Refused   int    `json:"refused"`         // Attempted - Completed
	Error     string `json:"error,omitempty"` // the first failure
}

// Holds reports whether the block did what it is for: every connection of
// the blocked host refused, every one of its neighbour completed.
func (b *Block) Holds() bool {
	return b != nil && b.Blocked.Attempted > 0 && b.Blocked.Refused == b.Blocked.Attempted &&
		b.Neighbour.Attempted > 0 && b.Neighbour.Completed == b.Neighbour.Attempted
}

// blocker blocks one host at the server and lifts the block again.
type blocker struct {
	where string
	// on blocks host h (its HOST_ID, behind the lab's NAT) and returns the
	// setup as words and the function that lifts it.
	on func(r *runner, m *Method, h lab.Host) (how string, off func() error, err error)
}

// blockerFor says how the server blocks one host for the method name, from its
// registry entry: a method whose HOST_ID a firewall can match (Decoder.Match)
// in the server's kernel with guard, the others where the server reads the
// HOST_ID. false: the lab has no way to block for m (hip).
func blockerFor(name string) (blocker, bool) {
	e, ok := all.Lookup(name)
	switch {
	case !ok:
		return blocker{}, false
	case e.Decoder.Match != nil:
		return blocker{WhereKernel, guardBlock}, true
	}
	switch e.Lab.Reading {
	case method.PortSetLookup:
		return blocker{WhereKernel, portSetBlock}, true
	case method.HTTPHeader, method.IdentQuery:
		return blocker{WhereApp, appBlock(byHostID)}, true
	case method.ProxyHeader:
		return blocker{WhereApp, appBlock(byProxySource)}, true
	}
	return blocker{}, false
}

// guardBlock: `natreveal-server guard` in the server's namespace (package
// guard, the same calls): a table that trusts HOST_IDs from the NAT's public
// address only (RFC 6967 §5) and rejects the SYNs of (address, HOST_ID).
func guardBlock(r *runner, m *Method, h lab.Host) (string, func() error, error) {
	pub := netip.MustParseAddr(lab.NATPublic)
	if m.Family == 6 {
		pub = netip.MustParseAddr(lab.NATPublic6)
	}
	cfg := guard.Config{Methods: []string{m.Name}, NAT: []netip.Prefix{netip.PrefixFrom(pub, pub.BitLen())}, Reject: true}
	pair := guard.Pair{Addr: pub, HostID: h.HostID}
	inSrv := func(fn func(c *nftables.Conn) error) error {
		return lab.Do(r.t.Srv, func() error {
			c, err := nftables.New()
			if err != nil {
				return fmt.Errorf("netlink: %w", err)
			}
			return fn(c)
		})
	}
	if err := inSrv(func(c *nftables.Conn) error {
		if err := guard.Install(c, cfg, false); err != nil {
			return err
		}
		if err := guard.Block(c, "", pair, 0); err != nil {
			guard.Remove(c, "")
			return err
		}
		return nil
	}); err != nil {
		return "", nil, fmt.Errorf("guard: %w", err)
	}
	how := fmt.Sprintf("natreveal-server guard install --methods %s --nat %s --action reject; guard block %s %s",
		m.Name, pub, pub, hexID(h.HostID))
	return how, func() error { return inSrv(func(c *nftables.Conn) error { return guard.Remove(c, "") }) }, nil
}

// portSetTable is the lab's table for the port-set block.
const portSetTable = "natreveal_lab_portset"

// portSetBlock: the server turns the HOST_ID into the host's port block
// through the published policy (RFC 7422) and rejects that source address
// and port range in its kernel: an nft rule the lab installs (guard has no
// port-set variant).
func portSetBlock(r *runner, _ *Method, h lab.Host) (string, func() error, error) {
	p, err := published()
	if err != nil {
		return "", nil, err
	}
	b, ok := p.Forward(netip.MustParseAddr(h.Addr))
	if !ok {
		return "", nil, fmt.Errorf("port-set: %s has no block in the policy", h.Addr)
	}
	rules := fmt.Sprintf("ip saddr %s tcp sport %d-%d reject with tcp reset; ip saddr %s udp sport %d-%d drop",
		b.Public, b.Ports.First, b.Ports.Last, b.Public, b.Ports.First, b.Ports.Last)
	script := fmt.Sprintf("table inet %s {\n\tchain input {\n\t\ttype filter hook input priority filter - 10; policy accept;\n"+
		"\t\tip saddr %s tcp sport %d-%d reject with tcp reset\n\t\tip saddr %s udp sport %d-%d drop\n\t}\n}\n",
		portSetTable, b.Public, b.Ports.First, b.Ports.Last, b.Public, b.Ports.First, b.Ports.Last)
	if err := r.t.Nft(r.t.Srv, script); err != nil {
		return "", nil, err
	}
	how := fmt.Sprintf("the published plan maps %s to %s ports %s; nft (lab-installed, not guard): %s", hexID(h.HostID), b.Public, b.Ports, rules)
	return how, func() error { return r.t.Nft(r.t.Srv, "delete table inet "+portSetTable+"\n") }, nil
}

// appRule says whether the application refuses a connection whose HOST_ID
// it has read (rec), given the blocked host.
type appRule struct {
	how    string
	refuse func(h lab.Host, c net.Conn, rec Record) bool
}

// byHostID: the HOST_ID the application read (X-Forwarded-For, the ident
// reply), trusted only on connections from the NAT's address (RFC 6967 §5).
var byHostID = appRule{
	how: "the lab's server refuses a connection from %s whose HOST_ID it read is %s",
	refuse: func(h lab.Host, c net.Conn, rec Record) bool {
		return rec.Found && rec.ID == h.HostID && peer(c) == netip.MustParseAddr(lab.NATPublic)
	},
}

// byProxySource: the PROXY header's source address (what HAProxy's `src`
// is with accept-proxy), trusted only on connections from the NAT.
var byProxySource = appRule{
	how: "the lab's server refuses a PROXY header from %s whose source is c1's (HOST_ID %s)",
	refuse: func(h lab.Host, c net.Conn, _ Record) bool {
		src, ok := c.RemoteAddr().(*net.TCPAddr)
		return ok && peer(c) == netip.MustParseAddr(lab.NATPublic) && src.IP.Equal(net.ParseIP(h.Addr))
	},
}

func appBlock(rule appRule) func(r *runner, m *Method, h lab.Host) (string, func() error, error) {
	return func(r *runner, m *Method, h lab.Host) (string, func() error, error) {
		r.st.setRefuse(func(mm *Method, c net.Conn, rec Record) bool {
			return mm == m && rule.refuse(h, c, rec)
		})
		return fmt.Sprintf(rule.how, lab.NATPublic, hexID(h.HostID)), func() error { r.st.setRefuse(nil); return nil }, nil
	}
}

// peer is the address the TCP connection beneath c came from (beneath TLS
// and a PROXY header).
func peer(c net.Conn) netip.Addr {
	for c != nil {
		switch u := c.(type) {
		case *proxyproto.Conn:
			c = u.Raw()
			continue
		case *tls.Conn:
			c = u.NetConn()
			continue
		}
		if rc := revealConn(c); rc != nil {
			c = rc
		}
		if a, ok := c.RemoteAddr().(*net.TCPAddr); ok {
			ip, _ := netip.AddrFromSlice(a.IP)
			return ip.Unmap()
		}
		return netip.Addr{}
	}
	return netip.Addr{}
}

// block measures the blacklisting row for m on the current (clean) path:
// c1 blocked, N connections from each host, the block lifted again. nil: the
// lab has no way to block for m.
func (r *runner) block(m *Method) (*Block, error) {
	bl, ok := blockerFor(m.Name)
	if !ok || len(r.t.Hosts) < 2 {
		return nil, nil
	}
	tr := TCP
	if !slices.Contains(m.Transports, TCP) {
		if !slices.Contains(m.Transports, HTTP) {
			return nil, nil
		}
		tr = HTTP
	}
	c1, c2 := r.t.Hosts[0], r.t.Hosts[1]
	how, off, err := bl.on(r, m, c1)
	if err != nil {
		return nil, fmt.Errorf("block %s: %w", c1.Name, err)
	}
	b := &Block{Where: bl.where, How: how,
		Blocked:   BlockCount{Host: c1.Name, HostID: hexID(c1.HostID), Attempted: r.o.N},
		Neighbour: BlockCount{Host: c2.Name, HostID: hexID(c2.HostID), Attempted: r.o.N}}
	var mu sync.Mutex
	parallel(2*r.o.N, probeWidth, func(i int) {
		h, cnt := c1, &b.Blocked
		if i%2 == 1 {
			h, cnt = c2, &b.Neighbour
		}
		var err error
		if tr == HTTP {
			err = httpProbe(h.NS, m.Family, "", false, r.roots, probeTimeout)
		} else {
			err = tcpProbe(h.NS, m.Family, "", probeTimeout)
		}
		r.tr.probe()
		mu.Lock()
		defer mu.Unlock()
		if err == nil {
			cnt.Completed++
		} else if cnt.Error == "" {
			cnt.Error = err.Error()
		}
	})
	for _, c := range []*BlockCount{&b.Blocked, &b.Neighbour} {
		c.Refused = c.Attempted - c.Completed
	}
	if err := off(); err != nil {
		return nil, fmt.Errorf("unblock %s: %w", c1.Name, err)
	}
	return b, nil
}
