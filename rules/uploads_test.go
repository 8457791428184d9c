package rules

import (
	"bytes"
	"errors"
	"net/netip"
	"testing"
	"time"

	"github.com/google/nftables"
	"github.com/google/nftables/expr"
	"golang.org/x/sys/unix"
)

func TestUploadElements(t *testing.T) {
	u := Upload{
		Src: netip.MustParseAddrPort("100.64.0.7:40000"), Dst: netip.MustParseAddrPort("198.51.100.1:80"),
		First: 0x01020304, Last: 0xfffffff0,
	}
	els, err := uploadElements([]Upload{u})
	if err != nil {
		t.Fatal(err)
	}
	// ip saddr . tcp sport . ip daddr . tcp dport . tcp sequence, each
	// field in whole 32-bit registers.
	key := []byte{100, 64, 0, 7, 0x9c, 0x40, 0, 0, 198, 51, 100, 1, 0, 80, 0, 0, 1, 2, 3, 4}
	end := append(append([]byte(nil), key[:16]...), 0xff, 0xff, 0xff, 0xf0)
	if len(els) != 1 || !bytes.Equal(els[0].Key, key) || !bytes.Equal(els[0].KeyEnd, end) || els[0].IntervalEnd {
		t.Errorf("elements %+v, want key %x end %x", els, key, end)
	}
	if n := (family{}).uploadsKeyType().Bytes; n != uint32(len(key)) {
		t.Errorf("key type is %d bytes, elements %d", n, len(key))
	}
	six := Upload{Src: netip.MustParseAddrPort("[2001:db8::7]:40000"), Dst: netip.MustParseAddrPort("[2001:db8:1::1]:80"), Last: 9}
	if els, err := uploadElements([]Upload{six}); err != nil || len(els[0].Key) != int((family{v6: true}).uploadsKeyType().Bytes) {
		t.Errorf("IPv6 element %+v, %v", els, err)
	}
	for _, bad := range []Upload{
		{Src: u.Src, Dst: u.Dst, First: 2, Last: 1},
		{Src: u.Src, Dst: six.Dst},
		{Dst: u.Dst},
	} {
		if _, err := uploadElements([]Upload{bad}); err == nil {
			t.Errorf("%v accepted", bad)
		}
	}
}

// The lookup's registers: the concatenation takes whole 32-bit registers
// from NFT_REG32_00, named as nft names them.
func TestUploadsMatchRegisters(t *testing.T) {
	for _, c := range []struct {
		v6   bool
		want []uint32
	}{{false, []uint32{1, 9, 10, 11, 2}}, {true, []uint32{1, 2, 13, 17, 18}}} {
		var regs []uint32
		for _, e := range (family{v6: c.v6}).uploadsMatch().exprs {
			if p, ok := e.(*expr.Payload); ok {
				regs = append(regs, p.DestRegister)
			}
		}
		if len(regs) != len(c.want) {
			t.Fatalf("v6 %v: registers %v, want %v", c.v6, regs, c.want)
		}
		for i := range regs {
			if regs[i] != c.want[i] {
				t.Errorf("v6 %v: registers %v, want %v", c.v6, regs, c.want)
				break
			}
		}
	}
}

// On a real kernel: elements go in and out of the set Apply made, a range
// across 2^32 as two elements, an overlapping one is refused, and removing
// one that is not there says so.
func TestSystemUploads(t *testing.T) {
	m := probe(t)
	n := newNetNS(t)
	c := n.conn(t)
	s := Spec{Inside: prefixes("100.64.0.0/24"), QueueCount: 1, Placement: PreNAT, Mechanism: m, SYN: true, Select: true,
		SelectBit: 0x40000, SeqAdjHelper: "ftp", SeqAdjBit: 0x80000, UploadSize: 16, UploadTimeout: time.Minute}
	if err := Apply(c, s); err != nil {
		t.Fatal(err)
	}
	u := NewUploads("", func() (*nftables.Conn, error) { return n.conn(t), nil })
	src, dst := netip.MustParseAddrPort("100.64.0.7:40000"), netip.MustParseAddrPort("198.51.100.1:80")
	wrap := []Upload{{Src: src, Dst: dst, First: 0xffff0000, Last: 0xffffffff}, {Src: src, Dst: dst, First: 0, Last: 0x1000}}
	if err := u.AddUploads(wrap); err != nil {
		t.Fatal(err)
	}
	other := Upload{Src: netip.MustParseAddrPort("100.64.0.8:40000"), Dst: dst, First: 5, Last: 1 << 20}
	if err := u.AddUploads([]Upload{other}); err != nil {
		t.Fatalf("another flow's element: %v", err)
	}
	if err := u.AddUploads([]Upload{{Src: src, Dst: dst, First: 0x800, Last: 0x2000}}); err == nil {
		t.Error("an element overlapping one in the set was added")
	}
	if err := u.DelUploads(wrap); err != nil {
		t.Fatal(err)
	}
	if err := u.DelUploads(wrap[:1]); !errors.Is(err, unix.ENOENT) {
		t.Errorf("removing a removed element: %v, want ENOENT", err)
	}
	if err := u.DelUploads([]Upload{other}); err != nil {
		t.Fatal(err)
	}
	if err := Remove(c, ""); err != nil {
		t.Fatal(err)
	}
	if err := u.AddUploads([]Upload{other}); err == nil {
		t.Error("added an element without the table")
	}
}
