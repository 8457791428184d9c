package guard

import (
	"net/netip"
	"testing"

	"github.com/google/nftables"

	"github.com/natreveal/natreveal/method/destopt"
)

func TestKeyRoundTrip(t *testing.T) {
	for _, v := range variants(Methods) {
		addr := netip.MustParseAddr("192.0.2.1")
		if v.v6 {
			addr = netip.MustParseAddr("2001:db8:2::1")
		}
		id := uint32(0x1234)
		if v.idLen == 4 {
			id = 0x12345678
		}
		k := key(v, addr, id)
		if len(k) != v.keyLen() {
			t.Errorf("%s: key length %d, want %d", v.name(), len(k), v.keyLen())
		}
		// The HOST_ID is big endian right after the address, as on the wire
		// (RFC 7974 §3), padded to the 4-byte register.
		n := addr.BitLen() / 8
		if v.idLen == 2 && (k[n] != 0x12 || k[n+1] != 0x34 || k[n+2] != 0 || k[n+3] != 0) {
			t.Errorf("%s: key %x", v.name(), k)
		}
		a, got, ok := parseKey(v, k)
		if !ok || a != addr || got != id {
			t.Errorf("%s: parseKey = %s %#x %v, want %s %#x", v.name(), a, got, ok, addr, id)
		}
		if _, _, ok := parseKey(v, k[:len(k)-1]); ok {
			t.Errorf("%s: a short key parsed", v.name())
		}
		if w, ok := variantOf(v.blockSet()); !ok || w != v {
			t.Errorf("variantOf(%s) = %v %v", v.blockSet(), w, ok)
		}
	}
	if _, ok := variantOf("nat4"); ok {
		t.Error("nat4 is not a block set")
	}
}

func TestInIntervals(t *testing.T) {
	els := prefixElements([]netip.Prefix{netip.MustParsePrefix("192.0.2.0/25"), netip.MustParsePrefix("198.51.100.7/32"),
		netip.MustParsePrefix("255.255.255.0/24"), netip.MustParsePrefix("2001:db8::/32")}, false)
	for addr, want := range map[string]bool{
		"192.0.2.0": true, "192.0.2.127": true, "192.0.2.128": false, "198.51.100.7": true, "198.51.100.8": false,
		"198.51.100.6": false, "10.0.0.1": false, "255.255.255.255": true, "255.255.254.255": false,
	} {
		if got := inIntervals(els, netip.MustParseAddr(addr).AsSlice()); got != want {
			t.Errorf("%s in set: %v, want %v", addr, got, want)
		}
	}
	if inIntervals([]nftables.SetElement{}, []byte{1, 2, 3, 4}) {
		t.Error("empty set holds an address")
	}
}

func TestValidate(t *testing.T) {
	v4 := []netip.Prefix{netip.MustParsePrefix("192.0.2.1/32")}
	for name, c := range map[string]Config{
		"no nat":       {},
		"overlap":      {NAT: []netip.Prefix{netip.MustParsePrefix("192.0.2.0/24"), netip.MustParsePrefix("192.0.2.1/32")}},
		"method":       {NAT: v4, Methods: []string{"http-header"}},
		"ip option":    {NAT: v4, Types: map[string]byte{IPOption: 31}},
		"dest opt":     {NAT: v4, Types: map[string]byte{destopt.Name: 0x1f}},
		"ip option 0":  {NAT: v4, Types: map[string]byte{IPOption: 0}},
		"dest opt 0":   {NAT: v4, Types: map[string]byte{destopt.Name: 0}},
		"host bits":    {NAT: []netip.Prefix{netip.MustParsePrefix("100.64.0.1/10")}},
		"no family":    {NAT: v4, Methods: []string{destopt.Name}},
		"limit 0":      {NAT: v4, Limit: &Rate{N: 0, Burst: 1}},
		"limit burst0": {NAT: v4, Limit: &Rate{N: 1, Burst: 0}},
	} {
		if err := c.Validate(); err == nil {
			t.Errorf("%s: accepted", name)
		} else if _, ok := err.(*InputError); !ok {
			t.Errorf("%s: %v is not an InputError", name, err)
		}
	}
	c := Config{NAT: v4}
	if err := c.Validate(); err != nil || c.Types[IPOption] != 30 || c.Types[destopt.Name] != 0x1e || len(c.Methods) != len(Methods) {
		t.Errorf("defaults: %v %+v", err, c)
	}
	// IPv4 only: tcpopt4_2, tcpopt4_4, ipid4_2, ipopt4_2, ipopt4_4.
	if got := len(variantsFor(&c)); got != 5 {
		t.Errorf("IPv4 variants: %d, want 5", got)
	}
}

func TestParseMethods(t *testing.T) {
	got, err := ParseMethods([]string{"ip-id,tcp-option", "ip-id"})
	if err != nil || len(got) != 2 || got[0] != IPID || got[1] != TCPOption {
		t.Errorf("ParseMethods = %v, %v", got, err)
	}
	if _, err := ParseMethods([]string{"hip"}); err == nil {
		t.Error("hip accepted")
	}
	if got, _ := ParseMethods(nil); len(got) != len(Methods) {
		t.Errorf("empty list: %v, want every method", got)
	}
}

// FuzzParseKey: any bytes, any variant, no panic; what parses re-encodes.
func FuzzParseKey(f *testing.F) {
	f.Add([]byte{192, 0, 2, 1, 0, 2, 0, 0}, uint8(0))
	f.Add(make([]byte, 20), uint8(3))
	vs := variants(Methods)
	f.Fuzz(func(t *testing.T, k []byte, i uint8) {
		v := vs[int(i)%len(vs)]
		a, id, ok := parseKey(v, k)
		if !ok {
			return
		}
		if v.idLen == 2 && id > 0xffff {
			t.Fatalf("16-bit id %#x", id)
		}
		back := key(v, a, id)
		if string(back[:len(back)-4+v.idLen]) != string(k[:len(k)-4+v.idLen]) {
			t.Fatalf("round trip %x -> %x", k, back)
		}
	})
}

// HOST_IDs in messages: as hostid.Format writes them, 4 hex digits up to 16
// bits, else 8.
func TestIDText(t *testing.T) {
	for id, want := range map[uint32]string{2: "0x0002", 0xffff: "0xffff", 0x10002: "0x00010002"} {
		if got := idText(id); got != want {
			t.Errorf("idText(%#x) = %q, want %q", id, got, want)
		}
	}
}
