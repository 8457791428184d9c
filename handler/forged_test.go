package handler

import (
	"bytes"
	"net/netip"
	"testing"

	"github.com/gopacket/gopacket/layers"

	"github.com/natreveal/natreveal/hostid"
	"github.com/natreveal/natreveal/method/tcpoption"
	"github.com/natreveal/natreveal/packet"
)

// Issue 17 item 1: an inside SYN that natreveal cannot mark never leaves
// carrying a HOST_ID option (RFC 7974 §3) of any kind: stripped, or dropped
// and counted refused.

var (
	optMSS    = layers.TCPOption{OptionType: layers.TCPOptionKindMSS, OptionLength: 4, OptionData: []byte{0x05, 0xa0}}
	optForged = layers.TCPOption{OptionType: tcpoption.HostIDKind, OptionLength: 6, OptionData: []byte{0x03, 0x48, 0xde, 0xad}}
	optExp30  = layers.TCPOption{OptionType: 30, OptionLength: 4, OptionData: []byte{1, 2}}
)

// forgedSYN builds a SYN from the inside client (client6 when v6) with the
// option list opts; edit patches the TCP header after serialization.
func forgedSYN(t *testing.T, v6 bool, opts []layers.TCPOption, edit func(tcp []byte)) ([]byte, int) {
	t.Helper()
	tcp := &layers.TCP{SrcPort: 40000, DstPort: 443, Seq: 1, SYN: true, Window: 64240, Options: opts}
	var buf []byte
	var n, l4 int
	if v6 {
		ip := &layers.IPv6{Version: 6, HopLimit: 64, NextHeader: layers.IPProtocolTCP, SrcIP: client6.AsSlice(), DstIP: server6.AsSlice()}
		tcp.SetNetworkLayerForChecksum(ip)
		buf, n = serialize6(t, ip, tcp)
		l4 = 40
	} else {
		ip := &layers.IPv4{Version: 4, TTL: 64, Protocol: layers.IPProtocolTCP, Flags: layers.IPv4DontFragment,
			SrcIP: client.AsSlice(), DstIP: server.AsSlice()}
		tcp.SetNetworkLayerForChecksum(ip)
		buf, n = serialize6(t, ip, tcp)
		l4 = 20
	}
	if edit != nil {
		edit(buf[l4:n])
	}
	return buf, n
}

// MSS, a forged HOST_ID 0xdead, then a malformed option: dropped, IPv4 and
// IPv6 (before, parsing stopped at MSS, the encoder failed with bad-header
// and the SYN left with 0xdead).
func TestForgedHostIDBehindMalformedDropped(t *testing.T) {
	for _, v6 := range []bool{false, true} {
		for _, cfg := range []testConfig{{TCPOption: true}, {TCPOption: true, IPID: true, IPIDScope: "syn"}, {IPID: true, IPIDScope: "syn"}} {
			h, st := newHandler6(cfg)
			buf, n := forgedSYN(t, v6, []layers.TCPOption{optMSS, optForged, optExp30}, func(b []byte) { b[31] = 1 })
			if v := h.Handle(buf, n, Meta{}); !v.Drop {
				t.Errorf("v6 %v %+v: verdict %+v, want drop", v6, cfg, v)
			}
			if st.Get(Refused) != 1 {
				t.Errorf("v6 %v %+v: refused %d, want 1: %v", v6, cfg, st.Get(Refused), st.Snapshot())
			}
		}
	}
}

// noHostID is a HOST_ID source that knows no host.
type noHostID struct{}

func (noHostID) HostID(netip.Addr, uint32) (uint32, bool) { return 0, false }
func (noHostID) Bits() int                                { return 16 }

var _ hostid.Source = noHostID{}

// A SYN from a host the HOST_ID source does not know, carrying a forged
// HOST_ID: IPv4 loses the option (the packet stays valid), IPv6 (no strip
// there) is dropped. Without a forged option it passes untouched.
func TestNoHostIDStripsForged(t *testing.T) {
	newH := func() (*Handler, *Stats) {
		h, st := newHandler6(testConfig{TCPOption: true})
		h.src = noHostID{}
		return h, st
	}
	h, st := newH()
	buf, n := forgedSYN(t, false, []layers.TCPOption{optMSS, optForged}, nil)
	v := h.Handle(buf, n, Meta{})
	if v.Drop || v.Len == 0 || v.Len >= n {
		t.Fatalf("v4: verdict %+v (len was %d), want the option stripped", v, n)
	}
	tcp := check(t, buf[:v.Len])
	if _, ok := hostIDOf(t, buf[:v.Len]); ok || mssOf(tcp) != 0x05a0 {
		t.Errorf("v4: HOST_ID still there (%v) or MSS lost (%d)", ok, mssOf(tcp))
	}
	if st.Get(NoHostID) != 1 {
		t.Errorf("v4: counters %v", st.Snapshot())
	}

	h, st = newH()
	buf, n = forgedSYN(t, true, []layers.TCPOption{optMSS, optForged}, nil)
	if v := h.Handle(buf, n, Meta{}); !v.Drop || st.Get(Refused) != 1 {
		t.Errorf("v6: verdict %+v, refused %d: want drop, 1", v, st.Get(Refused))
	}

	for _, v6 := range []bool{false, true} {
		h, _ = newH()
		buf, n = forgedSYN(t, v6, []layers.TCPOption{optMSS, optExp30}, nil)
		orig := bytes.Clone(buf[:n])
		if v := h.Handle(buf, n, Meta{}); v.Drop || v.Len != 0 || !bytes.Equal(buf[:n], orig) {
			t.Errorf("v6 %v, no forged option: verdict %+v, want it untouched", v6, v)
		}
	}
}

// A HOST_ID hidden past EOL (RFC 9293 §3.2) of a full option space: the
// encoder finds no room (no-option-space) and strips nothing it can see;
// the SYN is dropped rather than left with the hidden option.
func TestHostIDPastEOLOnFullSpaceDropped(t *testing.T) {
	exp := layers.TCPOption{OptionType: 254, OptionLength: 33, OptionData: make([]byte, 31)}
	eol := layers.TCPOption{OptionType: layers.TCPOptionKindEndList}
	for _, v6 := range []bool{false, true} {
		h, st := newHandler6(testConfig{TCPOption: true, OptionLen: 4})
		buf, n := forgedSYN(t, v6, []layers.TCPOption{exp, eol, optForged}, nil)
		if v := h.Handle(buf, n, Meta{}); !v.Drop {
			t.Errorf("v6 %v: verdict %+v, want drop", v6, v)
		}
		if st.Get(Refused) != 1 || st.Result("tcp-option", packet.NoOptionSpace) != 1 {
			t.Errorf("v6 %v: counters %v", v6, st.Snapshot())
		}
		// Without the hidden option the SYN passes, unmarked (counted).
		h, st = newHandler6(testConfig{TCPOption: true, OptionLen: 4})
		buf, n = forgedSYN(t, v6, []layers.TCPOption{exp, eol}, nil)
		if v := h.Handle(buf, n, Meta{}); v.Drop || v.Len != 0 || st.Result("tcp-option", packet.NoOptionSpace) != 1 {
			t.Errorf("v6 %v, nothing hidden: verdict %+v, counters %v: want it passed, no-option-space", v6, v, st.Snapshot())
		}
	}
}
