package rules

// The port-set method (RFC 7422, RFC 6967): deterministic SNAT port
// blocks in the kernel, in a table of natreveal's own (PortSetText shows
// it): a map from inside address to public address and port range, and a
// nat chain that translates TCP and UDP by it.
//
// The chain runs before the operator's masquerade (srcnat): the first nat
// chain that binds a connection wins, so a host of the map is translated to
// its block, and a host the map lacks (not deterministic, or not an inside
// host) matches no rule (the lookup fails) and meets the masquerade as before.
//
// google/nftables v0.3.0 has no way to say that a map's data are intervals
// (nft 1.0.6 marks it in the set's user data: NFTNL_UDATA_SET_DATA_INTERVAL,
// with the data's typeof), and without it nft lists the map wrongly. So, as
// ctaddr.go does for ct expressions, the set message is built with a comment
// of the right length as placeholder and its user data bytes are then
// overwritten, in the buffered message, with exactly what nft sends.

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"strings"

	"github.com/google/nftables"
	"github.com/google/nftables/expr"
	"github.com/natreveal/natreveal/portset"
	"golang.org/x/sys/unix"
)

// DefaultPortSetTable is the table name used when PortSetSpec.Table is empty.
const DefaultPortSetTable = "natreveal_portset"

const (
	blocksMap    = "blocks"
	portSetChain = "postrouting"
	blocksMapID  = 0x6e720010 // "nr" 16: batch-local set ID
	portSetPrio  = -5         // relative to srcnat
)

// PortSetSpec is the port-set table: the blocks of a portset.Policy's Plan.
type PortSetSpec struct {
	Table  string          // default DefaultPortSetTable
	Blocks []portset.Block // one per deterministic inside host (IPv4)
	// OutIface, when set, restricts the translation to packets leaving
	// through that interface (`oifname "NAME"`), as a masquerade usually is.
	OutIface string
}

func (s PortSetSpec) table() string {
	if s.Table == "" {
		return DefaultPortSetTable
	}
	return s.Table
}

// Validate reports the problems of s.
func (s PortSetSpec) Validate() error {
	var errs []error
	switch name := s.table(); {
	case len(name) > maxTableName || !tableNameRE.MatchString(name):
		errs = append(errs, fmt.Errorf("table name %q: use letters, digits, '_' and '-', starting with a letter or '_'", name))
	case name == probeTable:
		errs = append(errs, fmt.Errorf("table name %q is reserved for Probe", name))
	}
	if len(s.Blocks) == 0 {
		errs = append(errs, errors.New("port set: no blocks"))
	}
	seen := map[netip.Addr]bool{}
	for _, b := range s.Blocks {
		switch {
		case !b.Inside.Is4() || !b.Public.Is4():
			errs = append(errs, fmt.Errorf("port set: block %v -> %v: IPv4 addresses only", b.Inside, b.Public))
		case b.Ports.First == 0 || b.Ports.First >= b.Ports.Last:
			// A one-port block is listed by nft 1.0.6 as a bare port,
			// which it then cannot read back: blocks hold 2 ports or more.
			errs = append(errs, fmt.Errorf("port set: block of %v: ports %v: want a range of 2 or more ports from 1", b.Inside, b.Ports))
		case seen[b.Inside]:
			errs = append(errs, fmt.Errorf("port set: %v has two blocks", b.Inside))
		}
		seen[b.Inside] = true
	}
	if len(s.OutIface) >= unix.IFNAMSIZ || strings.ContainsAny(s.OutIface, "\"\\ \t\n/") {
		errs = append(errs, fmt.Errorf("port set: %q is not an interface name", s.OutIface))
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("rules: invalid port-set spec: %w", err)
	}
	return nil
}

// sortedBlocks returns the blocks by inside address.
func (s PortSetSpec) sortedBlocks() []portset.Block {
	bs := slices.Clone(s.Blocks)
	slices.SortFunc(bs, func(a, b portset.Block) int { return a.Inside.Compare(b.Inside) })
	return bs
}

// blocksDataType is `ipv4_addr . inet_service` as map data: each element
// holds the range's start and end, each address and port padded to 4 bytes.
func blocksDataType() nftables.SetDatatype {
	t := nftables.MustConcatSetType(nftables.TypeIPAddr, nftables.TypeInetService)
	t.Bytes = 16
	return t
}

// blocksUserData is what nft 1.0.6 sends as the map's NFTA_SET_USERDATA for
// `type ipv4_addr : interval ipv4_addr . inet_service` (libnftnl udata TLVs,
// host byte order): key byte order 2 (big endian), data byte order 0, the
// data's typeof, data interval 1. Captured with nft --debug=mnl.
var blocksUserData = []byte{
	0x00, 0x04, 0x02, 0x00, 0x00, 0x00, // NFTNL_UDATA_SET_KEYBYTEORDER = 2
	0x01, 0x04, 0x00, 0x00, 0x00, 0x00, // NFTNL_UDATA_SET_DATABYTEORDER = 0
	0x04, 0x08, 0x00, 0x04, 0x0d, 0x00, 0x00, 0x00, 0x01, 0x00, // NFTNL_UDATA_SET_DATA_TYPEOF
	0x06, 0x04, 0x01, 0x00, 0x00, 0x00, // NFTNL_UDATA_SET_DATA_INTERVAL = 1
}

// blocksPlaceholder is a comment whose user data (key byte order TLV, 6
// bytes, plus the comment TLV, 2 + 19 + 1 bytes) is exactly as long as
// blocksUserData.
const blocksPlaceholder = "natreveal-portset-x"

func buildPortSet(s PortSetSpec) *Ruleset { return describePortSet(s).ruleset() }

// describePortSet is the port-set table of a valid s.
func describePortSet(s PortSetSpec) *tableDesc {
	t := &nftables.Table{Family: nftables.TableFamilyIPv4, Name: s.table()}
	set := &nftables.Set{
		Table:    t,
		ID:       blocksMapID,
		Name:     blocksMap,
		Interval: true,
		IsMap:    true,
		KeyType:  nftables.TypeIPAddr,
		DataType: blocksDataType(),
		Comment:  blocksPlaceholder,
	}
	var els strings.Builder
	// Two elements per line (src/expression.c calculate_delim for an IPv4
	// key), continuation lines indented by three tabs and five spaces.
	for i, bl := range s.sortedBlocks() {
		switch {
		case i == 0:
		case i%2 == 0:
			els.WriteString(",\n\t\t\t     ")
		default:
			els.WriteString(", ")
		}
		fmt.Fprintf(&els, "%s : %s . %d-%d", bl.Inside, bl.Public, bl.Ports.First, bl.Ports.Last)
	}
	d := &tableDesc{
		table: t, set: set, elements: blockElements(s.sortedBlocks()),
		setText: fmt.Sprintf("\tmap %s {\n\t\ttype ipv4_addr : interval ipv4_addr . inet_service\n\t\tflags interval\n\t\telements = { %s }\n\t}\n",
			blocksMap, els.String()),
	}
	ch := chainDesc{name: portSetChain, base: true, nat: true, prio: portSetPrio}
	var oif term
	if s.OutIface != "" {
		name := make([]byte, unix.IFNAMSIZ)
		copy(name, s.OutIface)
		oif = term{[]expr.Any{
			&expr.Meta{Key: expr.MetaKeyOIFNAME, Register: 1},
			&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: name},
		}, fmt.Sprintf("oifname %q", s.OutIface)}
	}
	// The lookup loads the 16 data bytes into registers 1 (NFT_REG_1 =
	// NFT_REG32_00..03): address min, port min, address max, port max.
	snat := term{[]expr.Any{
		&expr.Payload{DestRegister: 1, Base: expr.PayloadBaseNetworkHeader, Offset: 12, Len: 4}, // IPv4 source
		&expr.Lookup{SourceRegister: 1, DestRegister: 1, IsDestRegSet: true, SetName: blocksMap, SetID: blocksMapID},
		&expr.NAT{
			Type: expr.NATTypeSourceNAT, Family: unix.NFPROTO_IPV4,
			RegAddrMin: 1, RegProtoMin: 9, RegAddrMax: 10, RegProtoMax: 11, // NFT_REG32_00..03
		},
	}, "snat ip to ip saddr map @" + blocksMap}
	for _, proto := range []byte{unix.IPPROTO_TCP, unix.IPPROTO_UDP} {
		ch.add(oif, ipProtocol(proto), snat)
	}
	d.chains = []chainDesc{ch}
	return d
}

// blockElements are the map's elements as nft 1.0.6 sends them: a closing
// element at 0.0.0.0 (unless the first host is 0.0.0.0), then for each host
// its address with the block as data and the next address as interval end.
func blockElements(bs []portset.Block) []nftables.SetElement {
	var els []nftables.SetElement
	for i, b := range bs {
		if i == 0 && !b.Inside.IsUnspecified() {
			els = append(els, nftables.SetElement{Key: make([]byte, 4), IntervalEnd: true})
		}
		pub := b.Public.As4()
		val := make([]byte, 0, 16)
		val = append(val, pub[:]...)
		val = binary.BigEndian.AppendUint16(val, b.Ports.First)
		val = append(val, 0, 0)
		val = append(val, pub[:]...)
		val = binary.BigEndian.AppendUint16(val, b.Ports.Last)
		val = append(val, 0, 0)
		in := b.Inside.As4()
		els = append(els, nftables.SetElement{Key: in[:], Val: val})
		if next := b.Inside.Next(); next.IsValid() {
			n := next.As4()
			els = append(els, nftables.SetElement{Key: n[:], IntervalEnd: true})
		}
	}
	return els
}

// addBlocksMap buffers the map (with its user data patched) and its
// elements on c.
func addBlocksMap(c *nftables.Conn, rs *Ruleset) error {
	if err := c.AddSet(rs.Set, nil); err != nil {
		return err
	}
	if err := patchSetUserData(c, blocksPlaceholder, blocksUserData); err != nil {
		return fmt.Errorf("port-set workaround: %w", err)
	}
	return c.SetAddElements(rs.Set, rs.Elements)
}

// ApplyPortSet installs the port-set table of s on c in one batch, replacing
// an older copy atomically (add, delete, add again), and flushes c.
func ApplyPortSet(c *nftables.Conn, s PortSetSpec) error {
	fail := func(err error) error { return fmt.Errorf("rules: apply table %s: %w", s.table(), err) }
	if err := s.Validate(); err != nil {
		return fail(err)
	}
	rs := buildPortSet(s)
	t := &nftables.Table{Family: nftables.TableFamilyIPv4, Name: s.table()}
	c.AddTable(t)
	c.DelTable(t)
	c.AddTable(rs.Table)
	if err := addBlocksMap(c, rs); err != nil {
		return fail(err)
	}
	for _, ch := range rs.Chains {
		c.AddChain(ch)
	}
	for _, r := range rs.Rules {
		c.AddRule(r)
	}
	if err := c.Flush(); err != nil {
		return fail(err)
	}
	return nil
}

// RemovePortSet deletes the port-set table (a missing one is no error), in
// one batch, and flushes c. An empty name means DefaultPortSetTable.
func RemovePortSet(c *nftables.Conn, table string) error {
	if table == "" {
		table = DefaultPortSetTable
	}
	t := &nftables.Table{Family: nftables.TableFamilyIPv4, Name: table}
	c.AddTable(t)
	c.DelTable(t)
	if err := c.Flush(); err != nil {
		return fmt.Errorf("rules: remove table %s: %w", table, err)
	}
	return nil
}

// PortSetText renders s exactly as `nft list table ip <name>` (nft 1.0.6)
// prints it once ApplyPortSet has installed it. An invalid s renders as a
// comment naming the problem.
func PortSetText(s PortSetSpec) string {
	if err := s.Validate(); err != nil {
		return "# natreveal: invalid port-set spec: " + strings.ReplaceAll(err.Error(), "\n", "; ") + "\n"
	}
	return describePortSet(s).text()
}

// patchSetUserData replaces, in the set message last buffered on c, the user
// data AddSet wrote for a set whose comment is placeholder (key byte order
// TLV, then the comment TLV) by userData, which must be as long: how this
// package sends what google/nftables v0.3.0 cannot express (typeof, interval
// map data), byte for byte as nft sends it.
func patchSetUserData(c *nftables.Conn, placeholder string, userData []byte) error {
	data, err := lastMessageData(c)
	if err != nil {
		return err
	}
	var ph []byte
	ph = append(ph, 0x00, 0x04, 0x02, 0x00, 0x00, 0x00) // key byte order, as AddSet writes it
	ph = append(ph, 0x07, byte(len(placeholder)+1))
	ph = append(ph, placeholder...)
	ph = append(ph, 0)
	if len(ph) != len(userData) {
		return fmt.Errorf("placeholder is %d bytes, want %d", len(ph), len(userData))
	}
	if n := bytes.Count(data, ph); n != 1 {
		return fmt.Errorf("user data placeholder found %d times in the set message", n)
	}
	copy(data[bytes.Index(data, ph):], userData)
	return nil
}
