// Package method holds the types that describe a HOST_ID method as one unit
// (RFC 6967 §5 lists the candidates; draft-boucadair-intarea-nat-reveal-analysis
// compares them): its name and configuration section, what it needs from the
// ruleset, its counters, its server-side decoder and its lab column. Each
// method declares one Method value in its own package under method/; the
// registry, method/all, lists them. Everything here is pure data and pure
// code: no syscalls, nothing a router binary would not run.
package method

import (
	"fmt"
	"net"
	"net/netip"
	"slices"
	"strconv"
	"strings"
)

// Family is the address families a method marks.
type Family uint8

const (
	IPv4 Family = 1 << iota
	IPv6
	Both = IPv4 | IPv6
)

// Has reports whether f includes g.
func (f Family) Has(g Family) bool { return f&g != 0 }

// Needs is what a method needs from the ruleset and the packet path when it
// is enabled; the ruleset is the OR of the enabled methods' Needs.
type Needs struct {
	SYN    bool // IPv4 SYNs from inside are queued
	SYN6   bool // IPv6 SYNs from inside are queued
	Track  bool // IPv4 client segments after the SYN are queued (tracked flows)
	Track6 bool // the same for IPv6
	UDP    int  // first datagrams of each IPv4 UDP flow queued (0: none)
	UDP6   int  // first datagrams of each IPv6 UDP flow queued (0: none)
	Select bool // selected flows (payload methods: stream/)
	MSS    bool // SYN-ACKs of tracked flows get their MSS lowered (room for an option)
	AllTCP bool // every IPv4 TCP segment from inside is queued
	// TrackPackets bounds tracked flows: their first TrackPackets client
	// packets are queued at most (0: no bound of this method's).
	TrackPackets uint64
	// IDBits is the HOST_ID width the method carries, 16 or 32; 0: any
	// (payload and lookup methods).
	IDBits int
	// IDFixed: the carrier fixes IDBits (ip-id's 16-bit field); otherwise
	// the method's length key chooses it.
	IDFixed bool
	// CGNOnly: the method is refused with private-LAN inside prefixes
	// unless its section's cgn key says this NAT is a CGN (RFC 7974 §8).
	CGNOnly bool
}

// Or merges n into m: the ruleset both methods need.
func (m Needs) Or(n Needs) Needs {
	m.SYN = m.SYN || n.SYN
	m.SYN6 = m.SYN6 || n.SYN6
	m.Track = m.Track || n.Track
	m.Track6 = m.Track6 || n.Track6
	m.UDP = max(m.UDP, n.UDP)
	m.UDP6 = max(m.UDP6, n.UDP6)
	m.Select = m.Select || n.Select
	m.MSS = m.MSS || n.MSS
	m.AllTCP = m.AllTCP || n.AllTCP
	m.TrackPackets = max(m.TrackPackets, n.TrackPackets)
	if n.IDBits != 0 && (m.IDBits == 0 || n.IDBits < m.IDBits) {
		m.IDBits = n.IDBits
	}
	m.IDFixed = m.IDFixed || n.IDFixed
	m.CGNOnly = m.CGNOnly || n.CGNOnly
	return m
}

// Reading is how the lab's server (and a real one) reads a method's HOST_ID.
// The lab implements each; method packages name one and never import the lab.
type Reading int

const (
	NoReading     Reading = iota
	SavedSYN              // TCP_SAVE_SYN / TCP_SAVED_SYN: the SYN's headers
	RecvOpts              // IP_RECVOPTS: a UDP datagram's IPv4 options
	RecvDstOpts           // IPV6_RECVDSTOPTS: a UDP datagram's destination options
	RawSocket             // a raw socket beside the application's (the IP-ID of UDP)
	HTTPHeader            // the request's X-Forwarded-For / Forwarded field
	ProxyHeader           // a PROXY protocol header before the stream
	PortSetLookup         // the NAT's published port-set policy, source address and port
	IdentQuery            // an RFC 1413 query to the connection's source, port 113
	HIPStack              // a HIP stack: the sender HIT of HIP packets
)

var readingNames = [...]string{"none", "saved SYN", "IP_RECVOPTS", "IPV6_RECVDSTOPTS", "raw socket",
	"HTTP header", "PROXY header", "port-set lookup", "ident query", "HIP"}

func (r Reading) String() string {
	if r >= 0 && int(r) < len(readingNames) {
		return readingNames[r]
	}
	return fmt.Sprintf("Reading(%d)", int(r))
}

// Decoder is a method's server-side decoder.
type Decoder struct {
	// Packet reads the HOST_ID from a whole packet (IPv4 or IPv6 header
	// first), with the method's default option type: pure, allocation-free.
	// nil when the HOST_ID is not in the packet; Why then says where it is.
	Packet func(pkt []byte) (id uint32, idLen int, ok bool)
	// Why says how a server reads the method when Packet is nil.
	Why string
	// Default: a server reads the method when told nothing. A method whose
	// carrier any host fills (ip-id) is read only when the server knows the
	// NAT in front of its clients writes it.
	Default bool
	// Reveal: reveal.Decoder handles the method in packets (RFC 6967 §5
	// packet methods and HIP).
	Reveal bool

	// What reveal.Decoder, a server's flags and the lab's readers need
	// besides Packet; zero where a method has no use for it.

	// Typed is Packet with an option type the server is told, one of
	// Types (the methods whose carrier is an RFC 4727 option).
	Typed func(pkt []byte, typ byte) (id uint32, idLen int, ok bool)
	// Opts is Typed on the option bytes alone, as the IP_RECVOPTS (IPv4
	// options) and IPV6_RECVDSTOPTS (one Destination Options header,
	// RFC 3542 §4) ancillary data deliver them.
	Opts func(opts []byte, typ byte) (id uint32, idLen int, ok bool)
	// Types are the option types a server may be told, RFC 4727's
	// experimental ones; Types[0] is the default.
	Types []byte
	// TypeHelp is the help of the server's --<name>-type flag; TypeHex
	// shows its default in hex.
	TypeHelp string
	TypeHex  bool
	// Proto is the IP protocol of the packets that carry the method (IPv4
	// Protocol, the IPv6 Next Header after the extension headers); 0: any.
	Proto uint8
	// Ext is the IPv6 extension header that carries it (RFC 8200 §4);
	// packets without one are skipped. 0: none.
	Ext uint8
	// HIT reads the sender's Host Identity Tag (RFC 7401 §5.1) of a method
	// whose hosts identify themselves (hip) instead of a HOST_ID.
	HIT func(pkt []byte) (hit [16]byte, ok bool)
	// Match is where a server's firewall (guard) finds the HOST_ID in a
	// packet's headers; nil when no header carries it.
	Match *Match
}

// Match is a method's "server-side match": the header field that carries
// its HOST_ID, as a firewall rule matches it.
type Match struct {
	Carrier Carrier
	// Kind and ExID identify a TCPOptionExp option (RFC 6994 §3).
	Kind byte
	ExID uint16
	// Widths are the HOST_ID lengths in bytes a NAT writes.
	Widths []int
	// UDP: the NAT also marks the first datagrams of UDP flows.
	UDP bool
	// Set names the method in firewall set names: "tcpopt".
	Set string
}

// Carrier is the kind of header field a HOST_ID rides in; option carriers
// are of the method's Decoder.Types.
type Carrier int

const (
	TCPOptionExp Carrier = iota + 1 // an RFC 6994 shared experimental TCP option (RFC 7974)
	IPv4ID                          // the IPv4 Identification of atomic datagrams (RFC 6864 §4)
	IPv4Opt                         // the first IPv4 option (RFC 791 §3.1)
	IPv6DstOpt                      // the first option of a Destination Options header (RFC 8200 §4.6)
)

// Lab is a method's column in the lab's Table 1: how the lab configures
// and reads the method, and the cells it shows beside the measurements.
// The lab lists the columns in the analysis's order (Position), then the
// methods Table 1 lacks, in registry order.
type Lab struct {
	// Column is the analysis's Table 1 column title; "" for methods the
	// table does not have.
	Column string
	// Position is the column's place in the analysis's Table 1, from 1; 0
	// for methods the table does not have.
	Position int
	// Family is the address family of the lab's clients: 4 or 6.
	Family int
	// Transports the method carries a HOST_ID over: "udp", "tcp", "http",
	// "tls". The lab tests these and marks the others "n/a".
	Transports []string
	// NATArgs are the flags of `natreveal run` on the NAT, --inside
	// excluded; the lab adds the flags its reading needs (its addresses).
	NATArgs []string
	// Reading is how the lab's server reads it.
	Reading Reading

	// ServerReads is the "OS TCP/IP modification" cell: how a server
	// reads the HOST_ID, "no: ..." (stock socket options or the
	// application) or "yes: ..." (a changed stack).
	ServerReads string
	// KernelChange: reading it needs a change to the server's TCP/IP
	// stack (beyond what a stock Linux kernel offers applications).
	KernelChange bool
	// Configured is the "deployable today" cell: what has to be configured
	// where. LabArgs in it stands for the NAT's flags in the lab.
	Configured string
	// NeedsEndHosts: deployment needs changes on the clients (hip).
	NeedsEndHosts bool
	// Claims is the analysis's Table 1 column; zero for methods the table
	// does not have.
	Claims Claims
}

// LabArgs, in Lab.Configured, stands for the flags the lab runs the NAT
// with: Lab.NATArgs and what the lab's reading adds.
const LabArgs = "{lab-args}"

// Claims is a column of the analysis's Table 1
// (draft-boucadair-intarea-nat-reveal-analysis), as printed there ("" for a
// blank cell): "carried over" UDP, TCP, HTTP and encrypted traffic, then
// success ratio, possible performance impact, OS TCP/IP modification,
// deployable today and the table's notes.
type Claims struct {
	UDP, TCP, HTTP, Encrypted string
	Success, Perf, OSModif    string
	Deployable, Notes         string
}

// For returns the claim on a transport of Lab.Transports ("tls": the
// analysis's "Encrypted Traffic").
func (c Claims) For(transport string) string {
	switch transport {
	case "udp":
		return c.UDP
	case "tcp":
		return c.TCP
	case "http":
		return c.HTTP
	}
	return c.Encrypted
}

// Method is one HOST_ID method.
type Method struct {
	Name    string // as --methods spells it: ip-option
	Section string // its configuration section: dest_opt; "" for none
	// Router: the NAT side configures the method (config's methods key);
	// false for methods only end hosts implement (hip).
	Router bool
	Family Family // families it marks
	// Counters are the names of its per-packet counters, which the
	// handler's stats and metrics label with the method's name; nil for
	// methods without a packet step of their own.
	Counters []string
	// NoCounters says why a method has no counters of its own.
	NoCounters string
	// Events are the method's event counters besides its step's results:
	// what a part of it outside the packet step did (ip-id's in-kernel
	// path); none for most.
	Events  Events
	Decoder Decoder
	Lab     Lab
}

// Events are a method's event counters. The handler's stats hold one
// counter per name, in this order, by the method's registry position, and
// name them "<Prefix>/<name>" (ip-id-kernel/learned); metrics exposes them
// as the counter family Metric, labelled event=<name>.
type Events struct {
	Prefix string
	Names  []string
	Metric string // natreveal_ip_id_kernel_events_total
	Help   string // the family's help
}

// KeyError is a bad value of one of a method's configuration keys.
type KeyError struct {
	Key string // dotted: dest_opt.type
	Msg string
}

func (e *KeyError) Error() string { return e.Key + ": " + e.Msg }

// Bad returns a *KeyError. Not inlined: the methods' checks call it often,
// and the copies cost the router build (TestRouterBinarySize).
//
//go:noinline
func Bad(key, format string, a ...any) error {
	return &KeyError{Key: key, Msg: fmt.Sprintf(format, a...)}
}

// IntIn checks that n lies in lo..hi.
func IntIn(key string, n, lo, hi int) (int, error) {
	if n < lo || n > hi {
		return 0, Bad(key, "%d is out of range %d..%d", n, lo, hi)
	}
	return n, nil
}

// OptionShape checks the keys an in-header option method shares (IPv4
// option, IPv6 Destination Option): section.length, HOST_ID bytes, 2 or 4
// (an RFC 4727 experimental option's data), and section.udp_packets, the
// first datagrams of each UDP flow that carry it, 0 to 1000.
func OptionShape(section string, length, udpPackets int) (int, int, error) {
	l, err := IntIn(section+".length", length, 2, 4)
	if err != nil {
		return 0, 0, err
	}
	if l == 3 {
		return 0, 0, Bad(section+".length", "must be 2 or 4, got 3")
	}
	u, err := IntIn(section+".udp_packets", udpPackets, 0, 1000)
	if err != nil {
		return 0, 0, err
	}
	return l, u, nil
}

// ListenAddr checks s, a listener's "host:port": host empty (every
// address), an IP address (IPv6 in brackets, a zone allowed) or a host
// name; port a decimal number 0..65535. A service name ("http") is
// refused: it depends on the box's /etc/services, which OpenWrt lacks.
// example is a good value for the message.
func ListenAddr(key, s, example string) error {
	host, port, err := net.SplitHostPort(s)
	n, perr := strconv.Atoi(port)
	if err != nil || perr != nil || n < 0 || n > 65535 || strconv.Itoa(n) != port ||
		strings.Trim(host, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.-:%") != "" {
		return Bad(key, "%q is not host:port, the host an address or name, the port a number 0..65535 (e.g. %s)", s, example)
	}
	return nil
}

// OneOf checks that s is one of allowed.
func OneOf(key, s string, allowed ...string) (string, error) {
	if slices.Contains(allowed, s) {
		return s, nil
	}
	return "", Bad(key, "%q is not one of %s", s, strings.Join(allowed, ", "))
}

// Env is what a method's configuration block is checked against besides
// its own keys: the enabled methods, the inside prefixes and the placement.
type Env struct {
	Methods []string
	Inside  []netip.Prefix
	PreNAT  bool
}

// Has reports whether the method named name is enabled.
func (e Env) Has(name string) bool { return slices.Contains(e.Methods, name) }

// HasIPv4 reports whether the inside prefixes hold IPv4 ones.
func (e Env) HasIPv4() bool {
	for _, p := range e.Inside {
		if p.Addr().Is4() {
			return true
		}
	}
	return false
}

// Destination selects flows by server prefix and port (0: any port); the
// payload methods select by it.
type Destination struct {
	Prefix netip.Prefix
	Port   uint16
	OnAck  bool // proxy-protocol: "+ack" suffix, the header rides on the handshake ACK
}

// Destinations reads "PREFIX:PORT" entries (an address is a /32, port 0 or
// omitted ":0" is any port); ack allows a "+ack" suffix.
func Destinations(key string, items []string, ack bool) ([]Destination, error) {
	var out []Destination
	for _, it := range items {
		var d Destination
		s := it
		if ack && strings.HasSuffix(s, "+ack") {
			d.OnAck, s = true, strings.TrimSuffix(s, "+ack")
		}
		i := strings.LastIndexByte(s, ':')
		if i < 0 {
			return nil, Bad(key, "%q is not PREFIX:PORT (e.g. 198.51.100.0/24:443)", it)
		}
		port, err := strconv.Atoi(s[i+1:])
		if err != nil || port < 0 || port > 65535 {
			return nil, Bad(key, "%q: bad port", it)
		}
		d.Port = uint16(port)
		if ps := s[:i]; ps != "" {
			pf, err := netip.ParsePrefix(ps)
			if err != nil {
				a, aerr := netip.ParseAddr(ps)
				if aerr != nil || !a.Is4() {
					return nil, Bad(key, "%q: %q is not an IPv4 prefix (payload insertion is IPv4 only)", it, ps)
				}
				pf = netip.PrefixFrom(a, 32)
			}
			if !pf.Addr().Is4() || pf.Masked() != pf {
				return nil, Bad(key, "%q: want an IPv4 prefix without host bits", it)
			}
			d.Prefix = pf
		}
		out = append(out, d)
	}
	return out, nil
}
