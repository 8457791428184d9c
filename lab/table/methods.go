package table

import (
	"bufio"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/natreveal/natreveal/ident"
	"github.com/natreveal/natreveal/lab"
	"github.com/natreveal/natreveal/method/destopt"
	"github.com/natreveal/natreveal/method/ipoption"
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
// claims about it. Adding a method to the lab is adding one Method to
// Methods.
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

	Seed Claims // the analysis's Table 1 column
}

// Claims is a column of the analysis's Table 1, as printed there ("" for a
// blank cell).
type Claims struct {
	UDP, TCP, HTTP, Encrypted string
	Success, Perf, OSModif    string
	Deployable, Notes         string
}

// claim returns the analysis's cell for a transport.
func (c Claims) claim(t Transport) string {
	switch t {
	case UDP:
		return c.UDP
	case TCP:
		return c.TCP
	case HTTP:
		return c.HTTP
	}
	return c.Encrypted
}

// notInTable is the claim set of methods that Table 1 does not have.
var notInTable = Claims{}

// Methods are the methods the lab runs, in the table's column order (the
// analysis's order first).
var Methods = []Method{
	{
		Name: "ip-option", Column: "IP Option", Family: 4,
		NATArgs:    []string{"--methods", "ip-option"},
		Transports: []Transport{UDP, TCP, HTTP, TLS},
		ReadConn:   savedSYN(reveal.IPOption),
		ReadUDP: func(d *Datagram) (uint32, bool) {
			id, _, ok := ipoption.HostIDFromIPOptions(d.IPOptions, reveal.DefaultIPOptionType)
			return id, ok
		},
		ServerReads:  "no: socket options of stock Linux, TCP_SAVED_SYN (TCP), IP_RECVOPTS (UDP)",
		KernelChange: false,
		Configured:   "NAT: natreveal run --methods ip-option; server app: TCP_SAVE_SYN / IP_RECVOPTS; every router on the path must pass IP options",
		Seed:         Claims{UDP: "Yes", TCP: "Yes", HTTP: "Yes", Encrypted: "Yes", Success: "30%", Perf: "High", OSModif: "Yes", Deployable: "Yes"},
	},
	{
		Name: "tcp-option", Column: "TCP Option", Family: 4,
		NATArgs:     []string{"--methods", "tcp-option"},
		Transports:  []Transport{TCP, HTTP, TLS},
		ReadConn:    savedSYN(reveal.TCPOption),
		ServerReads: "no: TCP_SAVED_SYN, a socket option of stock Linux (4.2+)",
		Configured:  "NAT: natreveal run --methods tcp-option; server app: TCP_SAVE_SYN on the listener",
		Seed:        Claims{UDP: "No", TCP: "Yes", HTTP: "Yes", Encrypted: "Yes", Success: "99%", Perf: "Med to High", OSModif: "Yes", Deployable: "Yes"},
	},
	{
		Name: "ip-id", Column: "IP-ID", Family: 4,
		NATArgs:     []string{"--methods", "ip-id"},
		Transports:  []Transport{UDP, TCP, HTTP, TLS},
		ReadConn:    savedSYN(reveal.IPID),
		ReadUDP:     func(d *Datagram) (uint32, bool) { return uint32(d.IPID), d.Raw && d.Atomic },
		ServerReads: "no: TCP_SAVED_SYN (TCP); a raw IP socket, i.e. packet capture (UDP: no socket option shows the ID)",
		Configured:  "NAT: natreveal run --methods ip-id; server app: TCP_SAVE_SYN, raw socket for UDP; the server must know the NAT writes it (seed note 1)",
		Seed:        Claims{UDP: "Yes", TCP: "Yes", HTTP: "Yes", Encrypted: "Yes", Success: "100%", Perf: "Low to Med", OSModif: "Yes", Deployable: "Yes", Notes: "(1)"},
	},
	{
		Name: "http-header", Column: "HTTP Header (XFF)", Family: 4,
		NATArgs:     httpHeaderArgs,
		Transports:  []Transport{HTTP, TLS},
		ReadConn:    xffRead,
		ServerReads: "no: the X-Forwarded-For header of each request, read by the application",
		Configured:  "NAT: natreveal run --methods http-header --http-header-ports ...; server app: trust X-Forwarded-For from the NAT's address",
		Seed:        Claims{UDP: "No", TCP: "No", HTTP: "Yes", Encrypted: "No", Success: "100%", Perf: "Med to High", OSModif: "No", Deployable: "Yes", Notes: "(2)"},
	},
	{
		Name: "proxy-protocol", Column: "Proxy Protocol", Family: 4,
		NATArgs:     proxyArgs,
		Transports:  []Transport{TCP, HTTP, TLS},
		Wrap:        proxyWrap,
		ReadConn:    proxyRead,
		ServerReads: "no: a PROXY v2 header before the stream (TLV UNIQUE_ID), read by the application (go-proxyproto)",
		Configured:  "NAT: natreveal run --methods proxy-protocol --proxy-protocol-destinations ...; server app: must expect the PROXY header on that port (fails without it)",
		Seed:        Claims{UDP: "No", TCP: "Yes", HTTP: "Yes", Encrypted: "Yes", Success: "Low", Perf: "High", OSModif: "No", Deployable: "No"},
	},
	{
		Name: "port-set", Column: "Port Set", Family: 4,
		NATArgs:     portSetArgs,
		NATPrep:     portSetPrep,
		Transports:  []Transport{UDP, TCP, HTTP, TLS},
		ReadConn:    portSetConn,
		ReadUDP:     portSetUDP,
		ServerReads: "no: the source address:port the server sees, looked up in the published policy (package portset, Lookup)",
		Configured:  "NAT: natreveal run --methods port-set --port-set-public " + lab.NATPublic + " --port-set-block-size " + strconv.Itoa(PortSetBlock) + " (kernel SNAT blocks, nothing queued); the NAT's policy published to servers (natreveal portset plan); server app: a lookup of each source address:port",
		Seed:        Claims{UDP: "Yes", TCP: "Yes", HTTP: "Yes", Encrypted: "Yes", Success: "100%", Perf: "No", OSModif: "No", Deployable: "Yes", Notes: "(1) (3)"},
	},
	{
		Name: "hip", Column: "HIP", Family: 4,
		Custom:        hipProbe,
		ServerReads:   "yes: a HIP stack (the lab reads the sender HIT from raw HIP packets)",
		KernelChange:  true,
		Configured:    "NAT: nothing (natreveal never queues HIP); clients and server: a HIP stack and HIP infrastructure",
		NeedsEndHosts: true,
		Seed:          Claims{Success: "Low", Perf: "N/A", Deployable: "No", Notes: "(4) (5)"},
	},
	{
		Name: "dest-opt", Family: 6,
		NATArgs:    []string{"--methods", "dest-opt"},
		Transports: []Transport{UDP, TCP, HTTP, TLS},
		ReadConn:   savedSYN(reveal.DestOpt),
		ReadUDP: func(d *Datagram) (uint32, bool) {
			id, _, ok := destopt.HostIDFromDestOpts(d.DestOpts, reveal.DefaultDestOptType)
			return id, ok
		},
		ServerReads: "no: TCP_SAVED_SYN (TCP), IPV6_RECVDSTOPTS (UDP), both stock Linux",
		Configured:  "NAT: natreveal run --methods dest-opt (IPv6, NAT66); server app: TCP_SAVE_SYN / IPV6_RECVDSTOPTS; routers must pass extension headers",
		Seed:        notInTable,
	},
	{
		Name: "ident", Family: 4,
		NATArgs:     []string{"--methods", "ident", "--ident-listen", lab.NATPublic + ":113"},
		Transports:  []Transport{TCP, HTTP, TLS},
		ReadConn:    identQuery,
		ServerReads: "no: an RFC 1413 query from the application to the connection's source, port 113",
		Configured:  "NAT: natreveal run --methods ident, port 113 open to servers; server app: an ident client",
		Seed:        notInTable,
	},
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
