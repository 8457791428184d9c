package conntrack

import (
	"encoding/binary"
	"net/netip"
	"testing"

	"github.com/mdlayher/netlink"
	"golang.org/x/sys/unix"
)

// destroyMsg builds a ctnetlink destroy event as the kernel sends it
// (ctnetlink_conntrack_event): nlmsghdr, nfgenmsg, CTA_TUPLE_ORIG,
// CTA_TUPLE_REPLY (both nested, NLA_F_NESTED set), then other attributes.
func destroyMsg(t *testing.T, proto uint8, o, r [2]netip.AddrPort) []byte {
	t.Helper()
	ae := netlink.NewAttributeEncoder()
	for i, tp := range [][2]netip.AddrPort{o, r} {
		ae.Nested(uint16(i+1), func(ae *netlink.AttributeEncoder) error {
			ae.Nested(ctaTupleIP, func(ae *netlink.AttributeEncoder) error {
				typ := uint16(ctaIPv4Src)
				if tp[0].Addr().Is6() {
					typ = ctaIPv6Src
				}
				ae.Bytes(typ, tp[0].Addr().AsSlice())
				ae.Bytes(typ+1, tp[1].Addr().AsSlice())
				return nil
			})
			ae.Nested(ctaTupleProto, func(ae *netlink.AttributeEncoder) error {
				ae.Uint8(ctaProtoNum, proto)
				ae.Bytes(ctaProtoSrc, binary.BigEndian.AppendUint16(nil, tp[0].Port()))
				ae.Bytes(ctaProtoDst, binary.BigEndian.AppendUint16(nil, tp[1].Port()))
				return nil
			})
			return nil
		})
	}
	ae.Uint32(3, 0x10000) // CTA_STATUS
	attrs, err := ae.Encode()
	if err != nil {
		t.Fatal(err)
	}
	msg := make([]byte, unix.NLMSG_HDRLEN, unix.NLMSG_HDRLEN+4+len(attrs))
	msg = append(msg, unix.AF_INET, unix.NFNETLINK_V0, 0, 0)
	msg = append(msg, attrs...)
	binary.NativeEndian.PutUint32(msg[0:4], uint32(len(msg)))
	binary.NativeEndian.PutUint16(msg[4:6], unix.NFNL_SUBSYS_CTNETLINK<<8|ipctnlMsgCtDelete)
	return msg
}

func TestParseDestroyEvents(t *testing.T) {
	ap := netip.MustParseAddrPort
	want := []Destroyed{
		{Proto: 6, OrigSrc: ap("100.64.0.2:40000"), OrigDst: ap("198.51.100.1:80"), NATSrc: ap("192.0.2.1:40001")},
		{Proto: 17, OrigSrc: ap("[2001:db8:1::2]:5353"), OrigDst: ap("[2001:db8:9::1]:53"), NATSrc: ap("[2001:db8:ff::1]:5353")},
	}
	var b []byte
	for _, d := range want {
		b = append(b, destroyMsg(t, d.Proto, [2]netip.AddrPort{d.OrigSrc, d.OrigDst}, [2]netip.AddrPort{d.OrigDst, d.NATSrc})...)
	}
	// A message of another type in between is skipped.
	other := destroyMsg(t, 6, [2]netip.AddrPort{want[0].OrigSrc, want[0].OrigDst}, [2]netip.AddrPort{want[0].OrigDst, want[0].NATSrc})
	binary.NativeEndian.PutUint16(other[4:6], unix.NFNL_SUBSYS_CTNETLINK<<8|ipctnlMsgCtNew)
	b = append(b[:len(b):len(b)], other...)
	var got []Destroyed
	parseDestroyEvents(b, func(d Destroyed) { got = append(got, d) })
	if len(got) != len(want) {
		t.Fatalf("got %d events %v, want %v", len(got), got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("event %d: %+v, want %+v", i, got[i], want[i])
		}
	}
	// Truncated input never panics.
	for i := range b {
		parseDestroyEvents(b[:i], func(Destroyed) {})
	}
	if n := testing.AllocsPerRun(100, func() { parseDestroyEvents(b, func(Destroyed) {}) }); n != 0 {
		t.Errorf("%v allocations per batch, want 0", n)
	}
}
