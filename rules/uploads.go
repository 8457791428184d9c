package rules

// The uploads set: request bodies of http-header flows whose client
// segments skip the queue (stream/upload.go). An element is a flow (the
// inside host's address and port, the server's) and a range of the
// client's TCP sequence numbers; the pureack chain, which runs only while
// the kernel's sequence adjustment holds the flow's offset (SeqAdjBit) and
// only for segments without FIN, SYN or RST, accepts a segment whose key
// and sequence number lie in it. Sequence numbers in postrouting are the
// client's own: conntrack's sequence adjustment applies in nf_confirm,
// after this table.
//
// A concatenation with a range is a pipapo set (flags interval, timeout:
// the daemon removes its elements, the timeout bounds what a lost removal
// leaves). nft 1.0.6 loads `typeof ip saddr . tcp sport . ip daddr . tcp
// dport . tcp sequence` but drops the last field from the typeof it
// stores, so it lists the set as `type ipv4_addr . inet_service . ipv4_addr
// . inet_service . integer`, a zero-length integer it cannot read back.
// Text prints the typeof (what nft -f takes); natreveal sends no typeof
// user data (nft's is wrong), and the system tests map the listed type
// back (uploadsListedType).

import (
	"encoding/binary"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/google/nftables"
	"github.com/google/nftables/expr"
	"golang.org/x/sys/unix"

	"github.com/natreveal/natreveal/markbits"
)

const (
	// UploadsSet is the set's name in natreveal's table.
	UploadsSet   = "uploads"
	uploadsSetID = 0x6e720030 // "nr" 48: batch-local set ID
	// MaxUploadsSize bounds Spec.UploadSize.
	MaxUploadsSize = 1 << 24
)

// Upload is one element of the uploads set (markbits.Upload).
type Upload = markbits.Upload

func (f family) uploadsKeyType() nftables.SetDatatype {
	addr := nftables.TypeIPAddr
	if f.v6 {
		addr = nftables.TypeIP6Addr
	}
	return nftables.MustConcatSetType(addr, nftables.TypeInetService, addr, nftables.TypeInetService, nftables.TypeInteger)
}

// uploadsSet is the set as google/nftables object, in table t.
func (f family) uploadsSet(t *nftables.Table, s Spec) *nftables.Set {
	return &nftables.Set{
		Table:         t,
		ID:            uploadsSetID,
		Name:          UploadsSet,
		Interval:      true,
		Concatenation: true,
		HasTimeout:    true,
		Timeout:       s.UploadTimeout,
		KeyType:       f.uploadsKeyType(),
		Size:          s.UploadSize,
	}
}

// uploadsFields is the key as nft writes it: ip saddr . tcp sport . ip
// daddr . tcp dport . tcp sequence.
func (f family) uploadsFields() string {
	ip := "ip"
	if f.v6 {
		ip = "ip6"
	}
	return ip + " saddr . tcp sport . " + ip + " daddr . tcp dport . tcp sequence"
}

// uploadsText is the set as Text prints it (typeof: nft -f reads it back).
func (f family) uploadsText(s Spec) string {
	return fmt.Sprintf("\n\tset %s {\n\t\ttypeof %s\n\t\tsize %d\n\t\tflags interval,timeout\n\t\ttimeout %s\n\t}\n",
		UploadsSet, f.uploadsFields(), s.UploadSize, nftDuration(s.UploadTimeout))
}

// uploadsListedType is the type line nft 1.0.6 lists for the set instead of
// its typeof.
func (f family) uploadsListedType() string {
	addr := "ipv4_addr"
	if f.v6 {
		addr = "ipv6_addr"
	}
	return "type " + addr + " . inet_service . " + addr + " . inet_service . integer"
}

// reg32 names the 32-bit register i (counted from NFT_REG32_00) as nft
// does: a 128-bit register's name where i starts one, else NFT_REG32_i.
func reg32(i uint32) uint32 {
	if i%4 == 0 {
		return unix.NFT_REG_1 + i/4
	}
	return unix.NFT_REG32_00 + i
}

// uploadsMatch looks the segment's flow and sequence number up in the
// set, with the `meta l4proto tcp` dependency nft adds. Each field takes
// whole 32-bit registers, one after the other.
func (f family) uploadsMatch() term {
	addrOff, addrLen := uint32(12), uint32(4) // IPv4 source, then destination (RFC 791 §3.1)
	if f.v6 {
		addrOff, addrLen = 8, 16 // RFC 8200 §3
	}
	ex := []expr.Any{
		&expr.Meta{Key: expr.MetaKeyL4PROTO, Register: 1},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: []byte{unix.IPPROTO_TCP}},
	}
	var r uint32
	load := func(base expr.PayloadBase, off, n uint32) {
		ex = append(ex, &expr.Payload{DestRegister: reg32(r), Base: base, Offset: off, Len: n})
		r += (n + 3) / 4
	}
	load(expr.PayloadBaseNetworkHeader, addrOff, addrLen)
	load(expr.PayloadBaseTransportHeader, 0, 2) // source port (RFC 9293 §3.1)
	load(expr.PayloadBaseNetworkHeader, addrOff+addrLen, addrLen)
	load(expr.PayloadBaseTransportHeader, 2, 2) // destination port
	load(expr.PayloadBaseTransportHeader, 4, 4) // sequence number
	ex = append(ex, &expr.Lookup{SourceRegister: 1, SetName: UploadsSet, SetID: uploadsSetID})
	return term{ex, f.uploadsFields() + " @" + UploadsSet}
}

// uploadKey is an element's key: each field padded to 4 bytes, as the
// registers hold them.
func uploadKey(u Upload, seq uint32) []byte {
	var k []byte
	field := func(b []byte) {
		k = append(k, b...)
		for len(k)%4 != 0 {
			k = append(k, 0)
		}
	}
	field(u.Src.Addr().AsSlice())
	field(binary.BigEndian.AppendUint16(nil, u.Src.Port()))
	field(u.Dst.Addr().AsSlice())
	field(binary.BigEndian.AppendUint16(nil, u.Dst.Port()))
	return binary.BigEndian.AppendUint32(k, seq)
}

// uploadElements are the set elements of us (a pipapo range: key and key
// end, both inclusive).
func uploadElements(us []Upload) ([]nftables.SetElement, error) {
	els := make([]nftables.SetElement, 0, len(us))
	for _, u := range us {
		if !u.Src.IsValid() || !u.Dst.IsValid() || u.Src.Addr().Is4() != u.Dst.Addr().Is4() || u.Src.Addr().Is4In6() || u.First > u.Last {
			return nil, fmt.Errorf("invalid upload element %v -> %v [%d, %d]", u.Src, u.Dst, u.First, u.Last)
		}
		els = append(els, nftables.SetElement{Key: uploadKey(u, u.First), KeyEnd: uploadKey(u, u.Last)})
	}
	return els, nil
}

// Uploads adds and removes elements of the uploads set of a table
// (stream.UploadSet). Safe for concurrent use: each call is one batch.
type Uploads struct {
	mu    sync.Mutex
	table string
	conn  func() (*nftables.Conn, error)
	c     *nftables.Conn
}

// NewUploads returns the uploads set of table (empty: DefaultTable) on
// connections conn opens (nil: nftables.New).
func NewUploads(table string, conn func() (*nftables.Conn, error)) *Uploads {
	if table == "" {
		table = DefaultTable
	}
	if conn == nil {
		conn = func() (*nftables.Conn, error) { return nftables.New() }
	}
	return &Uploads{table: table, conn: conn}
}

// AddUploads adds us in one batch. An element overlapping one already
// there fails the batch (EEXIST).
func (u *Uploads) AddUploads(us []Upload) error {
	return u.batch("add", us, (*nftables.Conn).SetAddElements)
}

// DelUploads removes us (each exactly as added) in one batch; ENOENT when
// one is not there (timed out, the table replaced).
func (u *Uploads) DelUploads(us []Upload) error {
	return u.batch("remove", us, (*nftables.Conn).SetDeleteElements)
}

func (u *Uploads) batch(what string, us []Upload, op func(*nftables.Conn, *nftables.Set, []nftables.SetElement) error) error {
	if len(us) == 0 {
		return nil
	}
	fail := func(err error) error {
		return fmt.Errorf("rules: %s %d upload elements in table %s: %w", what, len(us), u.table, err)
	}
	els, err := uploadElements(us)
	if err != nil {
		return fail(err)
	}
	fam := nftables.TableFamilyIPv4
	if !us[0].Src.Addr().Is4() {
		fam = nftables.TableFamilyIPv6
	}
	for _, x := range us[1:] {
		if x.Src.Addr().Is4() != us[0].Src.Addr().Is4() {
			return fail(errors.New("elements of both families"))
		}
	}
	set := &nftables.Set{
		Table: &nftables.Table{Family: fam, Name: u.table}, Name: UploadsSet,
		Interval: true, Concatenation: true, HasTimeout: true, KeyType: family{v6: fam == nftables.TableFamilyIPv6}.uploadsKeyType(),
	}
	u.mu.Lock()
	defer u.mu.Unlock()
	if u.c == nil {
		if u.c, err = u.conn(); err != nil {
			return fail(err)
		}
	}
	if err := op(u.c, set, els); err != nil {
		return fail(err)
	}
	if err := u.c.Flush(); err != nil {
		return fail(err)
	}
	return nil
}

func (s Spec) validateUploads() []error {
	if s.UploadSize == 0 {
		return nil
	}
	var errs []error
	if s.SeqAdjBit == 0 {
		errs = append(errs, errors.New("the uploads set needs the seqadj bit"))
	}
	if s.UploadSize > MaxUploadsSize {
		errs = append(errs, fmt.Errorf("uploads set size %d: want 1..%d", s.UploadSize, MaxUploadsSize))
	}
	if s.UploadTimeout <= 0 || s.UploadTimeout%time.Millisecond != 0 {
		errs = append(errs, fmt.Errorf("uploads set timeout %v: want a positive whole number of milliseconds", s.UploadTimeout))
	}
	return errs
}
