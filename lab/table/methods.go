package table

import (
	"bufio"
	"errors"
	"fmt"
	"math"
	"net"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/natreveal/natreveal/config"
	"github.com/natreveal/natreveal/ident"
	"github.com/natreveal/natreveal/lab"
	"github.com/natreveal/natreveal/method"
	"github.com/natreveal/natreveal/method/all"
	"github.com/natreveal/natreveal/reveal"
)

// Transport is a way the lab's clients reach the server.
type Transport string

// The transports of the analysis's Table 1 ("carried over ...").
const (
	UDP  Transport = "udp"
	TCP  Transport = "tcp"
	HTTP Transport = "http"
	TLS  Transport = "tls" // HTTPS: the analysis's "Encrypted Traffic"
)

// Transports lists them in the table's order.
var Transports = []Transport{UDP, TCP, HTTP, TLS}

// Method describes one HOST_ID method to the lab: how to enable it on the
// NAT, how the server reads it, which transports apply, and what the analysis
// claims about it. Each method's package declares its column (method.Lab);
// the lab adds the readers of its reading mechanism (see fromRegistry).
type Method struct {
	Name   string // natreveal's name (--methods)
	Column string // the analysis's Table 1 column; "" for methods the table does not have
	Family int    // 4 or 6: the address family the lab's clients use for it

	// NATArgs are the flags of `natreveal run` on the NAT, --inside
	// excluded; nil means nothing runs on the NAT for this method.
	NATArgs []string
	// NATPrep prepares the NAT namespace before the daemon starts (nft
	// maps, a PROXY-speaking relay...); nil: nothing.
	NATPrep func(t *lab.Lab) error

	// Transports the method carries a HOST_ID over; the lab marks the rest
	// "n/a" and does not test them.
	Transports []Transport
	// Wrap wraps the server's TCP listeners (for in-band methods such as a
	// PROXY protocol header); nil: none.
	Wrap func(net.Listener) net.Listener
	// ReadConn is how the server reads the HOST_ID of one TCP connection
	// (plain TCP, HTTP and TLS). r is the HTTP request, nil on plain TCP.
	// c is the accepted connection, wrapped by TLS or Wrap where they
	// apply; revealConn finds the *listener.Conn beneath.
	// env is the server's side: sockets the reader opens (an ident query)
	// must be made with env.Dial to live in the server's namespace.
	ReadConn func(env ServerEnv, c net.Conn, r *http.Request) (id uint32, ok bool, err error)
	// ReadUDP is how the server reads it from one datagram.
	ReadUDP func(d *Datagram) (id uint32, ok bool)
	// Custom replaces the connection probes (hip): it sends n packets per
	// path and reports what arrived; nil for methods on TCP/UDP.
	Custom func(r *runner, n int) (sent, arrived, revealed int, err error)

	// ServerReads is the "OS TCP/IP modification" cell: how the lab's
	// server had to read the HOST_ID.
	ServerReads string
	// KernelChange: reading it needs a change to the server's TCP/IP stack
	// (beyond what a stock Linux kernel offers applications).
	KernelChange bool
	// Configured is the "deployable today" cell: what had to be configured
	// where.
	Configured string
	// NeedsEndHosts: deployment needs changes on the clients (hip).
	NeedsEndHosts bool

	Claim Claims // the analysis's Table 1 column
}

// Claims is a column of the analysis's Table 1, as printed there ("" for a
// blank cell); each method's package declares its own (method.Lab.Claims).
type Claims = method.Claims

// Methods are the methods the lab runs, in the table's column order: the
// analysis's columns first (method.Lab.Position), then the methods Table 1
// lacks, in registry order (method/all). Each is the method's lab column as
// its package declares it, with the lab's readers for its reading mechanism.
var Methods = fromRegistry(all.List)

// fromRegistry builds the lab's methods from the registry's: each one's
// column, family, transports, NAT arguments, cells and claims as its package
// declares them, and the lab's readers for its reading mechanism
// (method.Reading): the lab implements each mechanism, a method package only
// names one. What a mechanism needs of the lab (its addresses, a NAT prep,
// servers) is keyed by the mechanism, never by the method's name.
func fromRegistry(reg []method.Method) []Method {
	reg = slices.Clone(reg)
	slices.SortStableFunc(reg, func(a, b method.Method) int { return position(a) - position(b) })
	ms := make([]Method, len(reg))
	for i, m := range reg {
		lm := &ms[i]
		lm.Name, lm.Column, lm.Family, lm.NATArgs = m.Name, m.Lab.Column, m.Lab.Family, m.Lab.NATArgs
		for _, t := range m.Lab.Transports {
			lm.Transports = append(lm.Transports, Transport(t))
		}
		lm.ServerReads, lm.KernelChange, lm.NeedsEndHosts = m.Lab.ServerReads, m.Lab.KernelChange, m.Lab.NeedsEndHosts
		lm.Claim = m.Lab.Claims
		dec := m.Decoder
		switch m.Lab.Reading {
		case method.SavedSYN:
			lm.ReadConn = savedSYN(reveal.Method(m.Name))
		case method.RecvOpts: // TCP_SAVED_SYN; IP_RECVOPTS on UDP
			lm.ReadConn = savedSYN(reveal.Method(m.Name))
			lm.ReadUDP = func(d *Datagram) (uint32, bool) {
				id, _, ok := dec.Opts(d.IPOptions, dec.Types[0])
				return id, ok
			}
		case method.RecvDstOpts: // TCP_SAVED_SYN; IPV6_RECVDSTOPTS on UDP
			lm.ReadConn = savedSYN(reveal.Method(m.Name))
			lm.ReadUDP = func(d *Datagram) (uint32, bool) {
				id, _, ok := dec.Opts(d.DstOpts, dec.Types[0])
				return id, ok
			}
		case method.RawSocket: // TCP_SAVED_SYN; a raw socket's IP-ID on UDP
			lm.ReadConn = savedSYN(reveal.Method(m.Name))
			lm.ReadUDP = func(d *Datagram) (uint32, bool) { return uint32(d.IPID), d.Raw && d.Atomic }
		case method.HTTPHeader:
			lm.NATArgs, lm.ReadConn = payloadArgs(m), xffRead
		case method.ProxyHeader:
			lm.NATArgs, lm.Wrap, lm.ReadConn = payloadArgs(m), proxyWrap, proxyRead
		case method.PortSetLookup:
			lm.NATArgs, lm.NATPrep, lm.ReadConn, lm.ReadUDP = portSetArgs(m), portSetPrep, portSetConn, portSetUDP
		case method.IdentQuery:
			lm.NATArgs = append(slices.Clip(m.Lab.NATArgs), flag(m, "listen"), lab.NATPublic+":113")
			lm.ReadConn = identQuery
		case method.HIPStack:
			lm.Custom = hipProbe
		}
		lm.Configured = strings.ReplaceAll(m.Lab.Configured, method.LabArgs, strings.Join(lm.NATArgs, " "))
	}
	return ms
}

// position orders the lab's columns: Table 1's by their place there, then
// the methods it lacks.
func position(m method.Method) int {
	if m.Lab.Position == 0 {
		return math.MaxInt32
	}
	return m.Lab.Position
}

// flag is the `natreveal run` flag of key in m's configuration section
// (config derives each key's flag from its name).
func flag(m method.Method, key string) string {
	name := m.Section + "." + key
	for _, k := range config.KeyList() {
		if k.Name == name {
			return "--" + k.Flag
		}
	}
	panic("lab/table: " + m.Name + " has no configuration key " + name)
}

// savedSYN reads method m from the connection's saved SYN (the listener
// decodes it at accept).
func savedSYN(m reveal.Method) func(ServerEnv, net.Conn, *http.Request) (uint32, bool, error) {
	return func(_ ServerEnv, nc net.Conn, _ *http.Request) (uint32, bool, error) {
		c := revealConn(nc)
		if c == nil {
			return 0, false, errors.New("not a reveal/listener connection")
		}
		if err := c.SYNError(); err != nil {
			return 0, false, err
		}
		for _, f := range c.HostIDs() {
			if f.Method == m {
				return f.HostID, true, nil
			}
		}
		return 0, false, nil
	}
}

// identQuery asks the connection's source, port 113, who owns it (RFC 1413,
// RFC 6967 §4.9), from the address the connection came to.
func identQuery(env ServerEnv, c net.Conn, _ *http.Request) (uint32, bool, error) {
	remote := c.RemoteAddr().(*net.TCPAddr)
	local := c.LocalAddr().(*net.TCPAddr)
	q, err := env.Dial(local.IP, net.JoinHostPort(remote.IP.String(), strconv.Itoa(ident.Port)), 2*time.Second)
	if err != nil {
		return 0, false, err
	}
	defer q.Close()
	q.SetDeadline(time.Now().Add(2 * time.Second))
	if _, err := q.Write(ident.AppendQuery(nil, uint16(remote.Port), uint16(local.Port))); err != nil {
		return 0, false, err
	}
	line, err := bufio.NewReader(q).ReadString('\n')
	if err != nil {
		return 0, false, err
	}
	rep, err := ident.ParseReply([]byte(line))
	if err != nil {
		return 0, false, err
	}
	if rep.Error != "" {
		return 0, false, fmt.Errorf("ident: %s", rep.Error)
	}
	id, err := strconv.ParseUint(strings.TrimSpace(rep.UserID), 0, 32)
	if err != nil {
		return 0, false, fmt.Errorf("ident: user-id %q: %v", rep.UserID, err)
	}
	return uint32(id), true, nil
}

// ServerEnv is what a server-side reader may need besides the connection.
type ServerEnv struct {
	NS string // the server's namespace
}

// Dial opens a TCP connection from the server's namespace, from address
// local (nil: any).
func (e ServerEnv) Dial(local net.IP, addr string, timeout time.Duration) (net.Conn, error) {
	var c net.Conn
	err := lab.Do(e.NS, func() error {
		d := net.Dialer{Timeout: timeout}
		if local != nil {
			d.LocalAddr = &net.TCPAddr{IP: local}
		}
		var err error
		c, err = d.Dial("tcp", addr)
		return err
	})
	return c, err
}
