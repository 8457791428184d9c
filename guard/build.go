package guard

import (
	"encoding/binary"
	"fmt"
	"net/netip"
	"time"

	"github.com/google/nftables"
	"github.com/google/nftables/expr"
	"golang.org/x/sys/unix"

	"github.com/natreveal/natreveal/method"
	"github.com/natreveal/natreveal/method/all"
	"github.com/natreveal/natreveal/rules"
)

// DefaultTable is guard's table: family inet, so one chain sees IPv4 and
// IPv6. guard touches nothing else.
const DefaultTable = "natreveal_guard"

// Trusted NAT prefixes, one interval set per family.
const (
	natSet4 = "nat4"
	natSet6 = "nat6"
)

// meterTimeout is how long an idle pair's rate-limit state is kept.
const meterTimeout = time.Minute

// meterSize bounds each meter set: a flood of forged pairs fills it and then
// adds nothing more (the rule does not match; connections are not limited).
const meterSize = 65536

// Registers: the key's source address starts at the first 32-bit register;
// the HOST_ID follows in the register after the address (RFC 7974's 2 or 4
// bytes, padded). Scratch matches use the 128-bit register 1.
const (
	regScratch = unix.NFT_REG_1
	regKey     = unix.NFT_REG32_00
)

// TCP flags (RFC 9293 §3.1): a connection's first SYN has SYN alone of
// these four.
const (
	tcpFIN = 0x01
	tcpSYN = 0x02
	tcpRST = 0x04
	tcpACK = 0x10
)

// Config is what `guard install` sets up.
type Config struct {
	Table   string         // default DefaultTable
	Methods []string       // default every method
	NAT     []netip.Prefix // trusted NAT addresses (required): IDs from elsewhere are ignored
	Reject  bool           // reject (TCP reset, ICMP port unreachable) instead of drop
	Limit   *Rate          // per-pair limit on new connections; nil: none
	// Types are the RFC 4727 experimental option types the NAT writes, by
	// method (those whose carrier is an option); a method not here has its
	// registry entry's default (method.Decoder.Types[0]).
	Types map[string]byte
}

// optionType is the option type the NAT writes for the named method.
func (c *Config) optionType(name string) byte {
	if t := c.Types[name]; t != 0 {
		return t
	}
	m, _ := all.Lookup(name)
	return m.Decoder.Types[0]
}

func (c *Config) table() string {
	if c.Table == "" {
		return DefaultTable
	}
	return c.Table
}

// hasFamily reports whether the trusted NAT prefixes hold that family.
func (c *Config) hasFamily(v6 bool) bool {
	for _, p := range c.NAT {
		if p.Addr().Is6() == v6 {
			return true
		}
	}
	return false
}

// built is guard's table with everything in it, ready for one batch.
type built struct {
	table    *nftables.Table
	sets     []*nftables.Set
	elements map[string][]nftables.SetElement
	chain    *nftables.Chain
	rules    []*nftables.Rule
}

// build lays out the table for c: the trusted NAT sets, one block set and
// rule per variant of a family that has NAT prefixes, and with a limit one
// meter rule per variant.
func build(c *Config) *built {
	t := &nftables.Table{Family: nftables.TableFamilyINet, Name: c.table()}
	prio := nftables.ChainPriorityRef(*nftables.ChainPriorityFilter - 10)
	policy := nftables.ChainPolicyAccept
	b := &built{
		table:    t,
		elements: map[string][]nftables.SetElement{},
		chain: &nftables.Chain{Table: t, Name: "input", Type: nftables.ChainTypeFilter,
			Hooknum: nftables.ChainHookInput, Priority: prio, Policy: &policy},
	}
	id := uint32(1)
	addSet := func(s *nftables.Set, els []nftables.SetElement) *nftables.Set {
		s.Table, s.ID = t, id
		id++
		b.sets = append(b.sets, s)
		b.elements[s.Name] = els
		return s
	}
	nat := map[bool]*nftables.Set{}
	for _, v6 := range []bool{false, true} {
		if !c.hasFamily(v6) {
			continue
		}
		name, kt := natSet4, nftables.TypeIPAddr
		if v6 {
			name, kt = natSet6, nftables.TypeIP6Addr
		}
		nat[v6] = addSet(&nftables.Set{Name: name, KeyType: kt, Interval: true}, prefixElements(c.NAT, v6))
	}
	for _, v := range variants(c.Methods) {
		ns := nat[v.v6]
		if ns == nil {
			continue
		}
		kt := keyType(v)
		block := addSet(&nftables.Set{Name: v.blockSet(), KeyType: kt, Concatenation: true,
			HasTimeout: true, Counter: true}, nil)
		for _, udp := range []bool{false, true} {
			if udp && !v.udp {
				continue
			}
			m := matches(c, v, ns, udp)
			b.rules = append(b.rules, &nftables.Rule{Table: t, Chain: b.chain,
				Exprs: concat(m, []expr.Any{&expr.Lookup{SourceRegister: regKey, SetName: block.Name, SetID: block.ID}},
					action(c, udp))})
			if c.Limit == nil {
				continue
			}
			meter := v.meterSet()
			if udp {
				meter += "_udp"
			}
			ms := addSet(&nftables.Set{Name: meter, KeyType: kt, Concatenation: true, Dynamic: true,
				HasTimeout: true, Timeout: meterTimeout, Size: meterSize}, nil)
			b.rules = append(b.rules, &nftables.Rule{Table: t, Chain: b.chain,
				Exprs: concat(m, []expr.Any{&expr.Dynset{SrcRegKey: regKey, SetName: ms.Name, SetID: ms.ID,
					Operation: unix.NFT_DYNSET_OP_UPDATE, Exprs: []expr.Any{c.Limit.expr()}}}, action(c, udp))})
		}
	}
	return b
}

// keyType is a variant's set key: the source address concatenated with the
// HOST_ID as a big-endian integer of its width.
func keyType(v variant) nftables.SetDatatype {
	addr := nftables.TypeIPAddr
	if v.v6 {
		addr = nftables.TypeIP6Addr
	}
	id := nftables.TypeInteger
	id.Bytes = uint32(v.idLen)
	kt, err := nftables.ConcatSetType(addr, id)
	if err != nil {
		panic(err) // two types always fit
	}
	return kt
}

// matches selects a variant's packets from a trusted NAT and loads the key
// (source address . HOST_ID) into regKey. udp: the first datagram of a UDP
// flow (conntrack state new) instead of a TCP SYN.
func matches(c *Config, v variant, nat *nftables.Set, udp bool) []expr.Any {
	nfproto, saddrOff, saddrLen := byte(unix.NFPROTO_IPV4), uint32(12), uint32(4) // RFC 791 §3.1
	if v.v6 {
		nfproto, saddrOff, saddrLen = unix.NFPROTO_IPV6, 8, 16 // RFC 8200 §3
	}
	idReg := uint32(regKey) + saddrLen/4
	e := []expr.Any{
		&expr.Meta{Key: expr.MetaKeyNFPROTO, Register: regScratch},
		&expr.Cmp{Op: expr.CmpOpEq, Register: regScratch, Data: []byte{nfproto}},
		&expr.Payload{DestRegister: regScratch, Base: expr.PayloadBaseNetworkHeader, Offset: saddrOff, Len: saddrLen},
		&expr.Lookup{SourceRegister: regScratch, SetName: nat.Name, SetID: nat.ID},
		&expr.Meta{Key: expr.MetaKeyL4PROTO, Register: regScratch},
	}
	if udp {
		e = append(e,
			&expr.Cmp{Op: expr.CmpOpEq, Register: regScratch, Data: []byte{unix.IPPROTO_UDP}},
			&expr.Ct{Key: expr.CtKeySTATE, Register: regScratch},
			&expr.Bitwise{SourceRegister: regScratch, DestRegister: regScratch, Len: 4,
				Mask: binary.NativeEndian.AppendUint32(nil, expr.CtStateBitNEW), Xor: make([]byte, 4)},
			&expr.Cmp{Op: expr.CmpOpNeq, Register: regScratch, Data: make([]byte, 4)})
	} else {
		e = append(e,
			&expr.Cmp{Op: expr.CmpOpEq, Register: regScratch, Data: []byte{unix.IPPROTO_TCP}},
			&expr.Payload{DestRegister: regScratch, Base: expr.PayloadBaseTransportHeader, Offset: 13, Len: 1},
			&expr.Bitwise{SourceRegister: regScratch, DestRegister: regScratch, Len: 1,
				Mask: []byte{tcpFIN | tcpSYN | tcpRST | tcpACK}, Xor: []byte{0}},
			&expr.Cmp{Op: expr.CmpOpEq, Register: regScratch, Data: []byte{tcpSYN}})
	}
	var id expr.Any
	mt := v.match()
	switch mt.Carrier {
	case method.TCPOptionExp:
		// RFC 7974 §3 / RFC 6994 §3: kind 253, length 4+idLen, ExID 0x0348,
		// then the HOST_ID.
		kind := uint8(mt.Kind)
		e = append(e,
			&expr.Exthdr{Op: expr.ExthdrOpTcpopt, Type: kind, Offset: 1, Len: 1, DestRegister: regScratch},
			&expr.Cmp{Op: expr.CmpOpEq, Register: regScratch, Data: []byte{byte(4 + v.idLen)}},
			&expr.Exthdr{Op: expr.ExthdrOpTcpopt, Type: kind, Offset: 2, Len: 2, DestRegister: regScratch},
			&expr.Cmp{Op: expr.CmpOpEq, Register: regScratch, Data: binary.BigEndian.AppendUint16(nil, mt.ExID)})
		id = &expr.Exthdr{Op: expr.ExthdrOpTcpopt, Type: kind, Offset: 4, Len: uint32(v.idLen), DestRegister: idReg}
	case method.IPv4ID:
		// RFC 6864 §4: only atomic datagrams (DF set, MF clear, offset 0)
		// may carry an ID that is not a fragment's.
		e = append(e,
			&expr.Payload{DestRegister: regScratch, Base: expr.PayloadBaseNetworkHeader, Offset: 6, Len: 2},
			&expr.Bitwise{SourceRegister: regScratch, DestRegister: regScratch, Len: 2,
				Mask: []byte{0x7f, 0xff}, Xor: []byte{0, 0}},
			&expr.Cmp{Op: expr.CmpOpEq, Register: regScratch, Data: []byte{0x40, 0x00}})
		id = &expr.Payload{DestRegister: idReg, Base: expr.PayloadBaseNetworkHeader, Offset: 4, Len: 2}
	case method.IPv4Opt:
		// RFC 791 §3.1: IHL > 5 means options follow the 20 fixed bytes;
		// natreveal's is the first when the host sent none (type, length
		// 2+idLen, HOST_ID).
		e = append(e,
			&expr.Payload{DestRegister: regScratch, Base: expr.PayloadBaseNetworkHeader, Offset: 0, Len: 1},
			&expr.Bitwise{SourceRegister: regScratch, DestRegister: regScratch, Len: 1, Mask: []byte{0x0f}, Xor: []byte{0}},
			&expr.Cmp{Op: expr.CmpOpNeq, Register: regScratch, Data: []byte{5}},
			&expr.Payload{DestRegister: regScratch, Base: expr.PayloadBaseNetworkHeader, Offset: 20, Len: 2},
			&expr.Cmp{Op: expr.CmpOpEq, Register: regScratch, Data: []byte{c.optionType(v.method), byte(2 + v.idLen)}})
		id = &expr.Payload{DestRegister: idReg, Base: expr.PayloadBaseNetworkHeader, Offset: 22, Len: uint32(v.idLen)}
	case method.IPv6DstOpt:
		// RFC 8200 §4.6: Next Header, Hdr Ext Len, then options; natreveal's
		// (type, Opt Data Len, HOST_ID) is the first when it made the header.
		e = append(e,
			&expr.Exthdr{Op: expr.ExthdrOpIpv6, Type: unix.IPPROTO_DSTOPTS, Offset: 2, Len: 2, DestRegister: regScratch},
			&expr.Cmp{Op: expr.CmpOpEq, Register: regScratch, Data: []byte{c.optionType(v.method), byte(v.idLen)}})
		id = &expr.Exthdr{Op: expr.ExthdrOpIpv6, Type: unix.IPPROTO_DSTOPTS, Offset: 4, Len: uint32(v.idLen), DestRegister: idReg}
	}
	return append(e,
		&expr.Payload{DestRegister: regKey, Base: expr.PayloadBaseNetworkHeader, Offset: saddrOff, Len: saddrLen},
		id)
}

// action ends a rule: count nothing more (the set element counts), then
// drop, or reject with a TCP reset or an ICMP port unreachable.
func action(c *Config, udp bool) []expr.Any {
	if !c.Reject {
		return []expr.Any{&expr.Verdict{Kind: expr.VerdictDrop}}
	}
	if udp {
		return []expr.Any{&expr.Reject{Type: unix.NFT_REJECT_ICMPX_UNREACH, Code: unix.NFT_REJECT_ICMPX_PORT_UNREACH}}
	}
	return []expr.Any{&expr.Reject{Type: unix.NFT_REJECT_TCP_RST}}
}

func concat(parts ...[]expr.Any) []expr.Any {
	var out []expr.Any
	for _, p := range parts {
		out = append(out, p...)
	}
	return out
}

// Rate is a per-pair limit on new connections: Per unit of time, with a
// burst (nft `limit rate over N/unit burst B packets`).
type Rate struct {
	N     uint64
	Unit  expr.LimitTime
	Burst uint32
}

func (r *Rate) expr() *expr.Limit {
	return &expr.Limit{Type: expr.LimitTypePkts, Rate: r.N, Unit: r.Unit, Burst: r.Burst, Over: true}
}

func (r *Rate) String() string {
	u := map[expr.LimitTime]string{expr.LimitTimeSecond: "second", expr.LimitTimeMinute: "minute",
		expr.LimitTimeHour: "hour", expr.LimitTimeDay: "day"}[r.Unit]
	return fmt.Sprintf("%d/%s burst %d", r.N, u, r.Burst)
}

// key is a set key: the source address, then the HOST_ID big endian in
// v.idLen bytes, padded to the register.
func key(v variant, addr netip.Addr, id uint32) []byte {
	k := addr.AsSlice()
	var b [4]byte
	if v.idLen == 2 {
		binary.BigEndian.PutUint16(b[:], uint16(id))
	} else {
		binary.BigEndian.PutUint32(b[:], id)
	}
	return append(k, b[:]...)
}

// parseKey reverses key.
func parseKey(v variant, k []byte) (netip.Addr, uint32, bool) {
	if len(k) != v.keyLen() {
		return netip.Addr{}, 0, false
	}
	n := len(k) - 4
	addr, _ := netip.AddrFromSlice(k[:n])
	if v.idLen == 2 {
		return addr, uint32(binary.BigEndian.Uint16(k[n:])), true
	}
	return addr, binary.BigEndian.Uint32(k[n:]), true
}

// prefixElements are the interval elements of the prefixes of one family.
func prefixElements(ps []netip.Prefix, v6 bool) []nftables.SetElement {
	var fam []netip.Prefix
	for _, p := range ps {
		if p.Addr().Is6() == v6 {
			fam = append(fam, p.Masked())
		}
	}
	return rules.IntervalElements(fam)
}
