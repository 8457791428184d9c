package observe

import (
	"encoding/binary"
	"fmt"
	"slices"
	"strings"

	"github.com/google/nftables"
	"github.com/google/nftables/expr"
	"golang.org/x/sys/unix"

	"github.com/natreveal/natreveal/reveal"
)

// Defaults of Config.
const (
	DefaultTable   = "natreveal_observe"
	DefaultGroup   = 33
	DefaultSnaplen = 256 // IPv4 (60) or IPv6 with extension headers, and TCP (60)
)

// Names of the objects inside the table.
const (
	chainName   = "in"
	tcpPortsSet = "tcp_ports"
	udpPortsSet = "udp_ports"
	tcpPortsID  = 0x6e6f0001 // "no" 1: NFTA_SET_ID within the batch
	udpPortsID  = 0x6e6f0002
)

// TCP flags (RFC 9293 §3.1).
const (
	tcpFlagSYN = 0x02
	tcpFlagACK = 0x10
)

// Ruleset is the observer's table as google/nftables objects.
type Ruleset struct {
	Table *nftables.Table
	Chain *nftables.Chain
	Sets  []portSet
	Rules []*nftables.Rule
	text  []string // nft text of each rule, for String
	cfg   Config
}

type portSet struct {
	Set      *nftables.Set
	Elements []nftables.SetElement
}

// Build returns the ruleset of cfg: table inet <Table> with one chain on the
// input hook at priority raw (-300) whose rules copy the packets that open
// a connection to NFLOG group <Group>, snaplen bytes of each; nft(8) lists
// it as
//
//	table inet natreveal_observe {
//		set tcp_ports { type inet_service; elements = { 80, 443 } }   (--ports)
//		set udp_ports { type inet_service; elements = { 443 } }       (--udp-ports)
//		chain in {
//			type filter hook input priority raw; policy accept;
//			tcp dport @tcp_ports tcp flags syn / syn,ack log group 33 snaplen 256
//			udp dport @udp_ports ct state new log group 33 snaplen 256
//			meta l4proto hip log group 33 snaplen 256
//		}
//	}
//
// The log statement only copies packets: it never delays or drops them.
// The TCP rule is there when a method applies to TCP (all but hip), the UDP
// rule when UDP ports are named and a method applies to UDP (those whose
// registry entry names no IP protocol: the IP-layer carriers), the HIP
// rule when hip is enabled. Without --ports the TCP rule matches every
// destination port. Build is pure.
func Build(cfg Config) *Ruleset {
	cfg = cfg.withDefaults()
	t := &nftables.Table{Family: nftables.TableFamilyINet, Name: cfg.Table}
	accept := nftables.ChainPolicyAccept
	ch := &nftables.Chain{
		Name:     chainName,
		Table:    t,
		Type:     nftables.ChainTypeFilter,
		Hooknum:  nftables.ChainHookInput,
		Priority: nftables.ChainPriorityRaw,
		Policy:   &accept,
	}
	rs := &Ruleset{Table: t, Chain: ch, cfg: cfg}
	rule := func(text string, parts ...[]expr.Any) {
		var all []expr.Any
		for _, p := range parts {
			all = append(all, p...)
		}
		rs.Rules = append(rs.Rules, &nftables.Rule{Table: t, Chain: ch, Exprs: all})
		rs.text = append(rs.text, text)
	}
	logText := fmt.Sprintf("log group %d snaplen %d", cfg.Group, cfg.Snaplen)
	log := []expr.Any{&expr.Log{
		Key:     1<<unix.NFTA_LOG_GROUP | 1<<unix.NFTA_LOG_SNAPLEN,
		Group:   cfg.Group,
		Snaplen: cfg.Snaplen,
	}}

	if cfg.wantTCP() {
		var ports []expr.Any
		text := ""
		if len(cfg.TCPPorts) > 0 {
			rs.Sets = append(rs.Sets, newPortSet(t, tcpPortsSet, tcpPortsID, cfg.TCPPorts))
			ports = dportIn(unix.IPPROTO_TCP, tcpPortsSet, tcpPortsID)
			text = "tcp dport @" + tcpPortsSet + " "
		}
		// [tcp dport @tcp_ports] tcp flags syn / syn,ack log ...
		rule(text+"tcp flags syn / syn,ack "+logText, ports, tcpSYN(len(ports) > 0), log)
	}
	if cfg.wantUDP() {
		rs.Sets = append(rs.Sets, newPortSet(t, udpPortsSet, udpPortsID, cfg.UDPPorts))
		// udp dport @udp_ports ct state new log ...
		rule("udp dport @"+udpPortsSet+" ct state new "+logText, dportIn(unix.IPPROTO_UDP, udpPortsSet, udpPortsID), ctStateNew(), log)
	}
	if cfg.Decoder.Enabled(reveal.HIP) {
		// meta l4proto 139 log ...
		rule("meta l4proto hip "+logText, l4proto(reveal.ProtoHIP), log)
	}
	return rs
}

// String renders the ruleset as nft(8) lists it.
func (rs *Ruleset) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "table inet %s {\n", rs.Table.Name)
	for _, s := range rs.Sets {
		var els []string
		for _, e := range s.Elements {
			els = append(els, fmt.Sprint(binary.BigEndian.Uint16(e.Key)))
		}
		fmt.Fprintf(&b, "\tset %s {\n\t\ttype inet_service\n\t\telements = { %s }\n\t}\n\n", s.Set.Name, strings.Join(els, ", "))
	}
	fmt.Fprintf(&b, "\tchain %s {\n\t\ttype filter hook input priority raw; policy accept;\n", chainName)
	for _, t := range rs.text {
		fmt.Fprintf(&b, "\t\t%s\n", t)
	}
	b.WriteString("\t}\n}\n")
	return b.String()
}

func newPortSet(t *nftables.Table, name string, id uint32, ports []uint16) portSet {
	s := &nftables.Set{Table: t, ID: id, Name: name, KeyType: nftables.TypeInetService}
	var els []nftables.SetElement
	for _, p := range sortedPorts(ports) {
		els = append(els, nftables.SetElement{Key: binary.BigEndian.AppendUint16(nil, p)})
	}
	return portSet{Set: s, Elements: els}
}

func sortedPorts(ports []uint16) []uint16 {
	ps := slices.Clone(ports)
	slices.Sort(ps)
	return slices.Compact(ps)
}

// l4proto is `meta l4proto P`: the transport protocol after any IPv6
// extension headers.
func l4proto(p byte) []expr.Any {
	return []expr.Any{
		&expr.Meta{Key: expr.MetaKeyL4PROTO, Register: 1},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: []byte{p}},
	}
}

// dportIn is `tcp dport @set` or `udp dport @set`, with the `meta l4proto`
// dependency nft(8) adds.
func dportIn(proto byte, set string, id uint32) []expr.Any {
	return append(l4proto(proto),
		&expr.Payload{DestRegister: 1, Base: expr.PayloadBaseTransportHeader, Offset: 2, Len: 2}, // destination port
		&expr.Lookup{SourceRegister: 1, SetName: set, SetID: id},
	)
}

// tcpSYN is `tcp flags syn / syn,ack`: SYN set, ACK clear (an active
// open); haveProto leaves out the `meta l4proto tcp` a port match already
// has.
func tcpSYN(haveProto bool) []expr.Any {
	var e []expr.Any
	if !haveProto {
		e = l4proto(unix.IPPROTO_TCP)
	}
	return append(e,
		&expr.Payload{DestRegister: 1, Base: expr.PayloadBaseTransportHeader, Offset: 13, Len: 1}, // TCP flags
		&expr.Bitwise{SourceRegister: 1, DestRegister: 1, Len: 1, Mask: []byte{tcpFlagSYN | tcpFlagACK}, Xor: []byte{0}},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: []byte{tcpFlagSYN}},
	)
}

// ctStateNew is `ct state new`.
func ctStateNew() []expr.Any {
	return []expr.Any{
		&expr.Ct{Register: 1, Key: expr.CtKeySTATE},
		&expr.Bitwise{SourceRegister: 1, DestRegister: 1, Len: 4,
			Mask: binary.NativeEndian.AppendUint32(nil, expr.CtStateBitNEW), Xor: make([]byte, 4)},
		&expr.Cmp{Op: expr.CmpOpNeq, Register: 1, Data: make([]byte, 4)},
	}
}

// install adds the ruleset in one batch that also replaces a leftover
// table of the same name atomically (add, delete, add), and flushes c.
func install(c *nftables.Conn, rs *Ruleset) error {
	c.AddTable(rs.Table)
	c.DelTable(rs.Table)
	c.AddTable(rs.Table)
	for _, s := range rs.Sets {
		if err := c.AddSet(s.Set, s.Elements); err != nil {
			return fmt.Errorf("observe: set %s: %w", s.Set.Name, err)
		}
	}
	c.AddChain(rs.Chain)
	for _, r := range rs.Rules {
		c.AddRule(r)
	}
	if err := c.Flush(); err != nil {
		return fmt.Errorf("observe: install table inet %s: %w", rs.Table.Name, err)
	}
	return nil
}

// remove deletes the table; a missing one is not an error (the batch adds
// it, a no-op when it exists, then deletes it).
func remove(c *nftables.Conn, table string) error {
	t := &nftables.Table{Family: nftables.TableFamilyINet, Name: table}
	c.AddTable(t)
	c.DelTable(t)
	if err := c.Flush(); err != nil {
		return fmt.Errorf("observe: remove table inet %s: %w", table, err)
	}
	return nil
}
