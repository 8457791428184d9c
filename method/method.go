// Package method holds the types that describe a HOST_ID method as one unit
// (RFC 6967 §5 lists the candidates; draft-boucadair-intarea-nat-reveal-analysis
// compares them): its name and configuration section, what it needs from the
// ruleset, its counters, its server-side decoder and its lab column. Each
// method declares one Method value in its own package under method/; the
// registry, method/all, lists them. Everything here is pure data and pure
// code: no syscalls, nothing a router binary would not run.
package method

import "fmt"

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
	// IDBits is the HOST_ID width the method carries, 16 or 32; 0: any
	// (payload and lookup methods).
	IDBits int
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
	if n.IDBits != 0 && (m.IDBits == 0 || n.IDBits < m.IDBits) {
		m.IDBits = n.IDBits
	}
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
}

// Lab is a method's column in the lab's Table 1.
type Lab struct {
	// Column is the analysis's Table 1 column title; "" for methods the
	// table does not have.
	Column string
	// Family is the address family of the lab's clients: 4 or 6.
	Family int
	// Transports the method carries a HOST_ID over: "udp", "tcp", "http", "tls".
	Transports []string
	// NATArgs are the flags of `natreveal run` on the NAT, --inside excluded.
	NATArgs []string
	// Reading is how the lab's server reads it.
	Reading Reading
}

// Method is one HOST_ID method.
type Method struct {
	Name    string // as --methods spells it: dest-opt
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
	Decoder    Decoder
	Lab        Lab
}

// KeyError is a bad value of one of a method's configuration keys.
type KeyError struct {
	Key string // dotted: dest_opt.type
	Msg string
}

func (e *KeyError) Error() string { return e.Key + ": " + e.Msg }

// Bad returns a *KeyError.
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
