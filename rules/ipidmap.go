package rules

// The in-kernel fast path of the ip-id method (RFC 6967): a map from inside
// address to HOST_ID in natreveal's ip table, and a steer rule that writes
// the HOST_ID of a known host into the IPv4 Identification field of its
// atomic SYNs (DF set, MF clear, offset 0: RFC 6864 §4) before source NAT.
//
// The daemon fills the map: it learns a host from its first queued SYN. A
// host the map lacks fails the lookup, which ends that rule (NFT_BREAK) and
// leaves the packet to the queue rule. When ip-id is the only method that
// needs SYNs (IPIDMap.SkipKnown), the queue rule skips hosts in the map, so
// their SYNs never reach user space. Elements time out (IPIDMap.Timeout)
// so hosts that left are forgotten; a host still there is learned again
// from its next SYN.
//
// The payload write carries csum_type inet at offset 10 (as nft sends `ip id
// set`): the kernel updates the IPv4 header checksum incrementally (RFC 1624,
// nft_payload_set_eval). The Identification is not part of the TCP
// pseudo-header (RFC 9293 §3.1), so no L4 checksum changes.
//
// google/nftables v0.3.0 cannot send the map's typeof (user data), without
// which nft lists the data as a host-order integer; as for the port-set map,
// the set message is buffered with a placeholder comment of the right length
// whose bytes are then replaced with exactly what nft 1.0.6 sends.

import (
	"encoding/binary"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/google/nftables"
	"github.com/google/nftables/binaryutil"
	"github.com/google/nftables/expr"
	"golang.org/x/sys/unix"

	"github.com/natreveal/natreveal/markbits"
)

// IPIDMap configures the in-kernel ip-id fast path of a Spec (IPv4, pre-NAT).
type IPIDMap struct {
	// Size bounds the map (NFTA_SET_DESC_SIZE): at most this many hosts at
	// once; past that, new hosts' SYNs keep going to the daemon.
	Size uint32
	// Timeout is how long an element lives after it was added (0: until the
	// table goes). Millisecond granularity, as the kernel keeps it.
	Timeout time.Duration
	// SkipKnown makes the SYN queue rule skip hosts in the map: set it when
	// nothing but ip-id needs SYNs in user space.
	SkipKnown bool
}

const (
	// HostIDMap is the map's name in natreveal's ip table.
	HostIDMap   = "hostid"
	hostIDMapID = 0x6e720020 // "nr" 32: batch-local set ID
	// MaxIPIDMapSize bounds IPIDMap.Size.
	MaxIPIDMapSize = 1 << 24
)

func (m *IPIDMap) validate(s Spec) []error {
	var errs []error
	if m.Size == 0 || m.Size > MaxIPIDMapSize {
		errs = append(errs, fmt.Errorf("ip-id map size %d: want 1..%d", m.Size, MaxIPIDMapSize))
	}
	if m.Timeout < 0 || m.Timeout%time.Millisecond != 0 {
		errs = append(errs, fmt.Errorf("ip-id map timeout %v: want 0 or a whole number of milliseconds", m.Timeout))
	}
	if s.Placement != PreNAT {
		errs = append(errs, errors.New("the ip-id map needs pre-nat placement (it is keyed by ip saddr)"))
	}
	if !s.SYN {
		errs = append(errs, errors.New("the ip-id map needs SYN: the daemon learns hosts from queued SYNs"))
	}
	v4 := false
	for _, p := range s.Inside {
		v4 = v4 || p.Addr().Is4()
	}
	if !v4 {
		errs = append(errs, errors.New("the ip-id map needs IPv4 inside prefixes"))
	}
	return errs
}

// hostIDMapSet is the map as google/nftables object, in table t.
func hostIDMapSet(t *nftables.Table, m *IPIDMap) *nftables.Set {
	data := nftables.TypeInteger
	data.Bytes = 2 // ip id: 16 bits
	return &nftables.Set{
		Table:        t,
		ID:           hostIDMapID,
		Name:         HostIDMap,
		IsMap:        true,
		HasTimeout:   m.Timeout > 0,
		Timeout:      m.Timeout,
		KeyType:      nftables.TypeIPAddr,
		DataType:     data,
		KeyByteOrder: binaryutil.BigEndian,
		Size:         m.Size,
		Comment:      hostIDPlaceholder,
	}
}

// hostIDUserData is what nft 1.0.6 sends as NFTNL_SET_USERDATA for `typeof
// ip saddr : ip id` (libnftnl udata TLVs; captured with nft --debug=mnl): key
// and data byte order 2 (big endian), the key's typeof (payload ip saddr),
// the data's typeof (payload ip id), data interval 0.
var hostIDUserData = []byte{
	0x00, 0x04, 0x02, 0x00, 0x00, 0x00, // NFTNL_UDATA_SET_KEYBYTEORDER = 2
	0x01, 0x04, 0x02, 0x00, 0x00, 0x00, // NFTNL_UDATA_SET_DATABYTEORDER = 2
	0x03, 0x14, // NFTNL_UDATA_SET_KEY_TYPEOF: ip saddr
	0x00, 0x04, 0x07, 0x00, 0x00, 0x00, 0x01, 0x0c, 0x00, 0x04, 0x0c, 0x00, 0x00, 0x00, 0x01, 0x04, 0x0b, 0x00, 0x00, 0x00,
	0x04, 0x1a, // NFTNL_UDATA_SET_DATA_TYPEOF: ip id
	0x00, 0x04, 0x07, 0x00, 0x00, 0x00, 0x01, 0x12, 0x00, 0x04, 0x0c, 0x00, 0x00, 0x00, 0x01, 0x04, 0x06, 0x00, 0x00, 0x00,
	0x04, 0x04, 0x10, 0x00, 0x00, 0x00,
	0x06, 0x04, 0x00, 0x00, 0x00, 0x00, // NFTNL_UDATA_SET_DATA_INTERVAL = 0
}

// hostIDPlaceholder is a comment whose user data (key byte order TLV, 6
// bytes, plus the comment TLV, 2 + 59 + 1 bytes) is as long as
// hostIDUserData.
const hostIDPlaceholder = "natreveal-hostid-map-placeholder-xxxxxxxxxxxxxxxxxxxxxxxxxx"

// addHostIDMap buffers the map of rs (user data patched) on c.
func addHostIDMap(c *nftables.Conn, set *nftables.Set) error {
	if err := c.AddSet(set, nil); err != nil {
		return err
	}
	if err := patchSetUserData(c, hostIDPlaceholder, hostIDUserData); err != nil {
		return fmt.Errorf("ip-id map workaround: %w", err)
	}
	return nil
}

// ipidKernelRule writes the HOST_ID of a known host into the
// Identification of its atomic SYNs.
func ipidKernelRule() []term {
	return []term{tcpSYN(), {[]expr.Any{
		// Flags and Fragment Offset (RFC 791 §3.1): DF set, MF clear, offset 0.
		// nft lists the mask and value in decimal.
		&expr.Payload{DestRegister: 1, Base: expr.PayloadBaseNetworkHeader, Offset: 6, Len: 2},
		&expr.Bitwise{SourceRegister: 1, DestRegister: 1, Len: 2, Mask: []byte{0x7f, 0xff}, Xor: []byte{0, 0}},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: []byte{0x40, 0x00}},
	}, "ip frag-off & 32767 == 16384"}, {[]expr.Any{
		&expr.Payload{DestRegister: 1, Base: expr.PayloadBaseNetworkHeader, Offset: 12, Len: 4}, // IPv4 source
		&expr.Lookup{SourceRegister: 1, DestRegister: 1, IsDestRegSet: true, SetName: HostIDMap, SetID: hostIDMapID},
		&expr.Payload{
			OperationType: expr.PayloadWrite, SourceRegister: 1,
			Base: expr.PayloadBaseNetworkHeader, Offset: 4, Len: 2, // Identification
			CsumType: expr.CsumTypeInet, CsumOffset: 10, // IPv4 header checksum
		},
	}, "ip id set ip saddr map @" + HostIDMap}}
}

// notKnown matches hosts the map lacks.
func notKnown() term {
	return term{[]expr.Any{
		&expr.Payload{DestRegister: 1, Base: expr.PayloadBaseNetworkHeader, Offset: 12, Len: 4},
		&expr.Lookup{SourceRegister: 1, SetName: HostIDMap, SetID: hostIDMapID, Invert: true},
	}, "ip saddr != @" + HostIDMap}
}

// ipidMapText is the map as nft lists it (an empty map: the elements the
// daemon adds are not part of the ruleset).
func ipidMapText(m *IPIDMap) string {
	var b strings.Builder
	fmt.Fprintf(&b, "\n\tmap %s {\n\t\ttypeof ip saddr : ip id\n\t\tsize %d\n", HostIDMap, m.Size)
	if m.Timeout > 0 {
		fmt.Fprintf(&b, "\t\ttimeout %s\n", nftDuration(m.Timeout))
	}
	b.WriteString("\t}\n")
	return b.String()
}

// nftDuration prints d as nft does (src/datatype.c time_print): days,
// hours, minutes, seconds, milliseconds, each only when nonzero.
func nftDuration(d time.Duration) string {
	ms := d.Milliseconds()
	var b strings.Builder
	for _, u := range []struct {
		n    int64
		name string
	}{{86400000, "d"}, {3600000, "h"}, {60000, "m"}, {1000, "s"}, {1, "ms"}} {
		if v := ms / u.n; v > 0 {
			fmt.Fprintf(&b, "%d%s", v, u.name)
			ms -= v * u.n
		}
	}
	if b.Len() == 0 {
		return "0s"
	}
	return b.String()
}

// HostIDElement is one learned host: its inside IPv4 address and HOST_ID
// (markbits.HostIDElement).
type HostIDElement = markbits.HostIDElement

// AddHostIDs adds els to the ip-id map of table (empty: DefaultTable) in
// one batch and flushes c. An element already there stays as it is. The
// batch fails as a whole when the map is full or the table is missing.
func AddHostIDs(c *nftables.Conn, table string, els []HostIDElement) error {
	if table == "" {
		table = DefaultTable
	}
	set := &nftables.Set{
		Table: &nftables.Table{Family: nftables.TableFamilyIPv4, Name: table},
		Name:  HostIDMap, IsMap: true, KeyType: nftables.TypeIPAddr,
	}
	vals := make([]nftables.SetElement, 0, len(els))
	for _, e := range els {
		if !e.Inside.Is4() {
			return fmt.Errorf("rules: ip-id map: %v is not an IPv4 address", e.Inside)
		}
		a := e.Inside.As4()
		vals = append(vals, nftables.SetElement{Key: a[:], Val: binary.BigEndian.AppendUint16(nil, e.ID)})
	}
	if err := c.SetAddElements(set, vals); err != nil {
		return fmt.Errorf("rules: ip-id map: %w", err)
	}
	if err := c.Flush(); err != nil {
		if errors.Is(err, unix.ENFILE) {
			return fmt.Errorf("rules: ip-id map full: %w", err)
		}
		return fmt.Errorf("rules: ip-id map: %w", err)
	}
	return nil
}
