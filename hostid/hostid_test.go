package hostid

import (
	"errors"
	"net/netip"
	"strings"
	"testing"
)

var addr = netip.MustParseAddr

func TestLower16AndAddress(t *testing.T) {
	if id, ok := (Lower16{}).HostID(addr("100.64.1.7"), 0); !ok || id != 0x0107 {
		t.Fatalf("lower16 = %#x %v, want 0x0107", id, ok)
	}
	if id, ok := (Address{}).HostID(addr("100.64.1.7"), 0); !ok || id != 0x64400107 {
		t.Fatalf("address = %#x %v, want 0x64400107", id, ok)
	}
	if id, ok := (Lower16{}).HostID(addr("2001:db8:1::2:3"), 0); !ok || id != 0x0003 {
		t.Fatalf("lower16 of 2001:db8:1::2:3 = %#x %v, want 0x0003", id, ok)
	}
	if id, ok := (Address{}).HostID(addr("2001:db8:1::a:b0c"), 0); !ok || id != 0x000a0b0c {
		t.Fatalf("address of 2001:db8:1::a:b0c = %#x %v, want the low 32 bits 0x000a0b0c", id, ok)
	}
}

func TestHash(t *testing.T) {
	key := []byte("000102030405060708090a0b0c0d0e0f\n")
	h, err := NewHash(key, 16)
	if err != nil {
		t.Fatal(err)
	}
	a, _ := h.HostID(addr("100.64.0.2"), 0)
	b, _ := h.HostID(addr("100.64.0.3"), 0)
	a2, _ := h.HostID(addr("100.64.0.2"), 0)
	if a != a2 || a == b || a > 0xffff {
		t.Fatalf("hash ids %#x %#x %#x: want stable, distinct, 16-bit", a, a2, b)
	}
	// SipHash-2-4 reference vector (Aumasson & Bernstein, appendix A): key
	// 00..0f, message 00 01 02 03 -> 0xcf2794e0277187b7 as a little-endian
	// uint64 of the output bytes. Our 4-byte input is the address 0.1.2.3.
	h32, _ := NewHash(key, 32)
	if id, _ := h32.HostID(addr("0.1.2.3"), 0); id != 0x277187b7 {
		t.Fatalf("hash(0.1.2.3) = %#x, want 0x277187b7 (SipHash reference vector)", id)
	}
	// IPv6: the 16 address bytes are hashed.
	x, _ := h.HostID(addr("2001:db8:1::2"), 0)
	y, _ := h.HostID(addr("2001:db8:1::3"), 0)
	if x == y || x > 0xffff {
		t.Fatalf("IPv6 hash ids %#x %#x: want distinct, 16-bit", x, y)
	}
	if _, err := NewHash([]byte("short"), 16); err == nil {
		t.Fatal("a 5-byte key must be refused")
	}
}

func TestMap(t *testing.T) {
	file := `
# subscribers
100.64.0.0/24   17
100.64.0.0/28   18      # longer prefix wins
100.64.0.77     4242
2001:db8:1::/48 6000
2001:db8:1::/64 6001
2001:db8:1::9   6002
iface eth1.100  100
`
	ifs := func(name string) (uint32, error) {
		if name == "eth1.100" {
			return 9, nil
		}
		return 0, errors.New("no such interface")
	}
	m, err := ParseMap([]byte(file), 16, ifs)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		a    string
		inIf uint32
		id   uint32
		ok   bool
	}{
		{"100.64.0.3", 0, 18, true},
		{"100.64.0.20", 0, 17, true},
		{"100.64.0.77", 0, 4242, true},
		{"10.0.0.1", 9, 100, true},
		{"10.0.0.1", 3, 0, false},
		{"2001:db8:1::2", 0, 6001, true},
		{"2001:db8:1::9", 0, 6002, true},
		{"2001:db8:1:2::9", 0, 6000, true},
		{"2001:db8:2::1", 9, 100, true},
		{"2001:db8:2::1", 0, 0, false},
		{"::ffff:100.64.0.77", 0, 0, false},
	} {
		id, ok := m.HostID(addr(c.a), c.inIf)
		if id != c.id || ok != c.ok {
			t.Errorf("HostID(%s, if %d) = %d %v, want %d %v", c.a, c.inIf, id, ok, c.id, c.ok)
		}
	}
	for _, bad := range []struct{ file, want string }{
		{"100.64.0.0/24 70000", "does not fit in 16 bits"},
		{"100.64.0.1/24 1", "host bits set"},
		{"100.64.0.0/24", "want \"PREFIX ID\""},
		{"iface nope 3", "no such interface"},
		{"# only a comment", "no entries"},
		{"100.64.0.0/24 1\n100.64.0.0/24 2", "listed twice"},
		{"2001:db8::1/64 1", "host bits set"},
		{"::ffff:100.64.0.0/120 1", "write IPv4 as IPv4"},
	} {
		_, err := ParseMap([]byte(bad.file), 16, ifs)
		if err == nil || !strings.Contains(err.Error(), bad.want) {
			t.Errorf("ParseMap(%q) error = %v, want it to mention %q", bad.file, err, bad.want)
		}
	}
}

func TestNoAllocs(t *testing.T) {
	h, _ := NewHash(make([]byte, 16), 16)
	m, _ := ParseMap([]byte("100.64.0.0/24 1\n100.64.0.9 2\n2001:db8:1::/64 3"), 16, nil)
	for _, a := range []netip.Addr{addr("100.64.0.9"), addr("2001:db8:1::9")} {
		for name, s := range map[string]Source{"lower16": Lower16{}, "address": Address{}, "hash": h, "map": m} {
			if n := testing.AllocsPerRun(100, func() { s.HostID(a, 1) }); n != 0 {
				t.Errorf("%s(%s): %v allocations per lookup, want 0", name, a, n)
			}
		}
	}
}

func FuzzParseMap(f *testing.F) {
	f.Add([]byte("100.64.0.0/24 17\n"))               // plain prefix
	f.Add([]byte("100.64.0.7 0x10 # hex id\n"))       // single host, hex, comment
	f.Add([]byte("iface eth0 1\n"))                   // interface entry
	f.Add([]byte("2001:db8::/64 5\n100.64.0.0/10 6")) // mixed families
	f.Add([]byte("::/0 4294967296"))                  // out of range
	f.Fuzz(func(t *testing.T, data []byte) {
		m, err := ParseMap(data, 32, func(string) (uint32, error) { return 1, nil })
		if err != nil {
			return
		}
		m.HostID(addr("100.64.0.7"), 1)
	})
}
