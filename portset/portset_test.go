package portset

import (
	"encoding/json"
	"net/netip"
	"reflect"
	"strings"
	"testing"
	"time"
)

func pfx(s ...string) []netip.Prefix {
	var out []netip.Prefix
	for _, x := range s {
		out = append(out, netip.MustParsePrefix(x))
	}
	return out
}

func addrs(s ...string) []netip.Addr {
	var out []netip.Addr
	for _, x := range s {
		out = append(out, netip.MustParseAddr(x))
	}
	return out
}

func ap(s string) netip.AddrPort { return netip.MustParseAddrPort(s) }

// labPolicy is the end-to-end test's policy: a /24 on one public address,
// 256 ports per host over 1024-65535: 64512/256 = 252 hosts deterministic.
func labPolicy() Policy {
	return Policy{Inside: pfx("100.64.0.0/24"), Public: addrs("192.0.2.1"), BlockSize: 256}
}

func TestLabPolicy(t *testing.T) {
	p, err := labPolicy().Normalize()
	if err != nil {
		t.Fatal(err)
	}
	if p.Ports != DefaultPorts || p.Ratio != 252 || p.Assignment != Sequential {
		t.Fatalf("normalized = %+v", p)
	}
	if h, d := p.Hosts(), p.Deterministic(); h != 254 || d != 252 {
		t.Fatalf("hosts %d deterministic %d, want 254 and 252", h, d)
	}
	plan := p.Plan()
	if len(plan) != 252 {
		t.Fatalf("plan has %d blocks", len(plan))
	}
	for _, c := range []struct {
		i    int
		want Block
	}{
		{0, Block{netip.MustParseAddr("100.64.0.1"), netip.MustParseAddr("192.0.2.1"), PortRange{1024, 1279}}},
		{1, Block{netip.MustParseAddr("100.64.0.2"), netip.MustParseAddr("192.0.2.1"), PortRange{1280, 1535}}},
		{251, Block{netip.MustParseAddr("100.64.0.252"), netip.MustParseAddr("192.0.2.1"), PortRange{65280, 65535}}},
	} {
		if plan[c.i] != c.want {
			t.Errorf("plan[%d] = %+v, want %+v", c.i, plan[c.i], c.want)
		}
	}
	nd := p.NotDeterministic()
	want := []HostRange{{netip.MustParseAddr("100.64.0.253"), netip.MustParseAddr("100.64.0.254"), 2}}
	if !reflect.DeepEqual(nd, want) {
		t.Errorf("NotDeterministic = %+v, want %+v", nd, want)
	}
	for _, c := range []struct {
		pub  string
		want string // "" none
	}{
		{"192.0.2.1:1024", "100.64.0.1"},
		{"192.0.2.1:1279", "100.64.0.1"},
		{"192.0.2.1:1280", "100.64.0.2"},
		{"192.0.2.1:65535", "100.64.0.252"},
		{"192.0.2.1:1023", ""}, // reserved
		{"192.0.2.1:80", ""},   // reserved
		{"192.0.2.2:2000", ""}, // not a public address of the policy
		{"[::ffff:192.0.2.1]:1300", "100.64.0.2"},
	} {
		got, ok := p.Lookup(ap(c.pub))
		if (c.want == "") == ok || (ok && got.String() != c.want) {
			t.Errorf("Lookup(%s) = %v, %v; want %q", c.pub, got, ok, c.want)
		}
	}
	for _, h := range []string{"100.64.0.0", "100.64.0.255", "100.64.0.253", "100.64.1.1"} {
		if b, ok := p.Forward(netip.MustParseAddr(h)); ok {
			t.Errorf("Forward(%s) = %+v, want none", h, b)
		}
	}
}

// RFC 7422 §2's arithmetic: 64 hosts per outside address over the ports
// above the reserved 0-1023 leave (65536-1024)/64 = 1008 ports per host.
// Sequential (A=0) fills the first outside address before the second;
// natreveal's staggered (A=5) spreads consecutive hosts over the outside
// addresses.
func TestRFC7422Algorithms(t *testing.T) {
	base := Policy{
		Inside: pfx("10.0.0.0/24"), Public: addrs("198.51.100.1", "198.51.100.2"),
		Ratio: 64, IncludeBoundary: true,
	}
	n, err := base.Normalize()
	if err != nil {
		t.Fatal(err)
	}
	if n.BlockSize != 1008 || n.Ports != (PortRange{1024, 65535}) {
		t.Fatalf("M = %d, ports %v; want 1008 and 1024-65535", n.BlockSize, n.Ports)
	}
	type fwd struct{ in, pub, ports string }
	for _, c := range []struct {
		a    Assignment
		want []fwd
	}{
		{Sequential, []fwd{
			{"10.0.0.0", "198.51.100.1", "1024-2031"},
			{"10.0.0.1", "198.51.100.1", "2032-3039"},
			{"10.0.0.63", "198.51.100.1", "64528-65535"},
			{"10.0.0.64", "198.51.100.2", "1024-2031"},
			{"10.0.0.127", "198.51.100.2", "64528-65535"},
		}},
		{Staggered, []fwd{
			{"10.0.0.0", "198.51.100.1", "1024-2031"},
			{"10.0.0.1", "198.51.100.2", "1024-2031"},
			{"10.0.0.2", "198.51.100.1", "2032-3039"},
			{"10.0.0.3", "198.51.100.2", "2032-3039"},
			{"10.0.0.127", "198.51.100.2", "64528-65535"},
		}},
	} {
		p := base
		p.Assignment = c.a
		for _, w := range c.want {
			b, ok := p.Forward(netip.MustParseAddr(w.in))
			if !ok || b.Public.String() != w.pub || b.Ports.String() != w.ports {
				t.Errorf("%s: Forward(%s) = %+v, %v; want %s %s", c.a, w.in, b, ok, w.pub, w.ports)
			}
			port, _ := ParsePortRange(w.ports)
			for _, pp := range []uint16{port.First, port.Last} {
				got, ok := p.Lookup(netip.AddrPortFrom(netip.MustParseAddr(w.pub), pp))
				if !ok || got.String() != w.in {
					t.Errorf("%s: Lookup(%s:%d) = %v, %v; want %s", c.a, w.pub, pp, got, ok, w.in)
				}
			}
		}
		// 256 hosts, 2 x 64 blocks: the upper half is not deterministic.
		if _, ok := p.Forward(netip.MustParseAddr("10.0.0.128")); ok {
			t.Errorf("%s: 10.0.0.128 got a block", c.a)
		}
		nd := p.NotDeterministic()
		if len(nd) != 1 || nd[0].First.String() != "10.0.0.128" || nd[0].Last.String() != "10.0.0.255" || nd[0].Hosts != 128 {
			t.Errorf("%s: NotDeterministic = %+v", c.a, nd)
		}
	}
}

// Every port of every block maps back to its host, for both algorithms,
// several prefixes and a reserved top range.
func TestLookupInvertsPlan(t *testing.T) {
	for _, a := range []Assignment{Sequential, Staggered} {
		p := Policy{
			Inside: pfx("100.64.1.0/28", "100.64.0.0/29", "100.64.2.7/32"),
			Public: addrs("192.0.2.9", "192.0.2.3", "192.0.2.4"),
			Ports:  PortRange{2000, 2999}, BlockSize: 100, Assignment: a,
		}
		if err := p.Validate(); err != nil {
			t.Fatal(err)
		}
		plan := p.Plan()
		// 14 + 6 + 1 hosts, 3 x 10 blocks: all deterministic.
		if len(plan) != 21 || len(p.NotDeterministic()) != 0 {
			t.Fatalf("%s: %d blocks, not deterministic %v", a, len(plan), p.NotDeterministic())
		}
		used := map[netip.AddrPort]bool{}
		for _, b := range plan {
			for port := int(b.Ports.First); port <= int(b.Ports.Last); port++ {
				k := netip.AddrPortFrom(b.Public, uint16(port))
				if used[k] {
					t.Fatalf("%s: %v in two blocks", a, k)
				}
				used[k] = true
				if got, ok := p.Lookup(k); !ok || got != b.Inside {
					t.Fatalf("%s: Lookup(%v) = %v, %v; want %v", a, k, got, ok, b.Inside)
				}
			}
			if f, ok := p.Forward(b.Inside); !ok || f != b {
				t.Fatalf("%s: Forward(%v) = %+v, want %+v", a, b.Inside, f, b)
			}
		}
		if plan[0].Inside.String() != "100.64.0.1" || plan[20].Inside.String() != "100.64.2.7" {
			t.Errorf("%s: host order %v ... %v", a, plan[0].Inside, plan[20].Inside)
		}
		for _, k := range []string{"192.0.2.9:1999", "192.0.2.9:3000", "192.0.2.5:2000"} {
			if got, ok := p.Lookup(ap(k)); ok {
				t.Errorf("%s: Lookup(%s) = %v", a, k, got)
			}
		}
	}
}

func TestValidate(t *testing.T) {
	good := labPolicy()
	for _, c := range []struct {
		edit func(*Policy)
		want string
	}{
		{func(p *Policy) { p.Inside = nil }, "inside: no prefix"},
		{func(p *Policy) { p.Inside = pfx("2001:db8::/64") }, "not an IPv4 prefix"},
		{func(p *Policy) { p.Inside = pfx("100.64.0.1/24") }, "host bits set"},
		{func(p *Policy) { p.Inside = pfx("100.64.0.0/24", "100.64.0.128/25") }, "overlap"},
		{func(p *Policy) { p.Public = nil }, "public: no address"},
		{func(p *Policy) { p.Public = addrs("192.0.2.1", "192.0.2.1") }, "listed twice"},
		{func(p *Policy) { p.Public = addrs("2001:db8::1") }, "not an IPv4 address"},
		{func(p *Policy) { p.Assignment = "random" }, "assignment"},
		{func(p *Policy) { p.BlockSize = 0 }, "block_size: set"},
		{func(p *Policy) { p.BlockSize = 70000 }, "block_size: 70000"},
		{func(p *Policy) { p.BlockSize = 1 }, "want 2 to"},
		{func(p *Policy) { p.Ratio = 253 }, "ratio: 253 hosts"},
		{func(p *Policy) { p.Ports = PortRange{0, 100} }, "port 0"},
	} {
		p := good
		p.Inside, p.Public = pfx("100.64.0.0/24"), addrs("192.0.2.1")
		c.edit(&p)
		err := p.Validate()
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("Validate(%+v) = %v, want %q", p, err, c.want)
		}
	}
	if err := good.Validate(); err != nil {
		t.Errorf("lab policy: %v", err)
	}
}

func TestJSONRoundTrip(t *testing.T) {
	p, _ := labPolicy().Normalize()
	b, err := json.Marshal(p)
	if err != nil {
		t.Fatal(err)
	}
	want := `{"inside":["100.64.0.0/24"],"public":["192.0.2.1"],"ports":"1024-65535","block_size":256,"ratio":252,"assignment":"sequential"}`
	if string(b) != want {
		t.Errorf("policy JSON\n got %s\nwant %s", b, want)
	}
	q, err := ParsePolicy(b)
	if err != nil || !reflect.DeepEqual(p, q) {
		t.Errorf("ParsePolicy = %+v, %v; want %+v", q, err, p)
	}
	doc, err := json.Marshal(p.Doc())
	if err != nil {
		t.Fatal(err)
	}
	if q, err := ParsePolicy(doc); err != nil || !reflect.DeepEqual(p, q) {
		t.Errorf("ParsePolicy(plan) = %+v, %v", q, err)
	}
	for _, bad := range []string{
		`{"inside":["100.64.0.0/24"],"public":["192.0.2.1"],"block_size":256,"colour":1}`,
		`{"inside":["100.64.0.0/24"],"public":["192.0.2.1"],"ports":"2000-1000","block_size":256}`,
		`{"inside":["100.64.0.0/24"],"public":["192.0.2.1"]}`,
		`{"inside":["100.64.0.0/24"],"public":["192.0.2.1"],"block_size":256} {}`,
		`[]`,
	} {
		if _, err := ParsePolicy([]byte(bad)); err == nil {
			t.Errorf("ParsePolicy(%s) accepted", bad)
		}
	}
}

// RFC 7422 §3's record: I:mask:O:mask:D:M:A:R, C implied as I/O and each
// host given (65536-|R|)/(C+D) ports (§2 step 2).
func TestLogLine(t *testing.T) {
	for _, c := range []struct {
		p    Policy
		want string // "" an error naming errKey
		err  string
	}{
		// The lab's /24 on one address: 252 ports each fit all 254 hosts,
		// C = 254, 64512/252 = 256 = C+D, D = 2.
		{p: Policy{Inside: pfx("100.64.0.0/24"), Public: addrs("192.0.2.1"), BlockSize: 252},
			want: "100.64.0.0:24:192.0.2.1:32:2:252:0:0-1023"},
		// RFC 7422 §2.3: a /28 (14 hosts) on 192.0.2.1, D = 2: 4032 ports.
		{p: Policy{Inside: pfx("198.51.100.0/28"), Public: addrs("192.0.2.1"), BlockSize: 4032},
			want: "198.51.100.0:28:192.0.2.1:32:2:4032:0:0-1023"},
		{p: Policy{Inside: pfx("10.0.0.0/24"), Public: addrs("198.51.100.0", "198.51.100.1"), BlockSize: 504, Assignment: Staggered},
			want: "10.0.0.0:24:198.51.100.0:31:1:504:5:0-1023"},
		{p: Policy{Inside: pfx("10.0.0.0/24"), Public: addrs("198.51.100.0", "198.51.100.1"), BlockSize: 504},
			want: "10.0.0.0:24:198.51.100.0:31:1:504:0:0-1023"},
		{p: Policy{Inside: pfx("100.64.0.0/30"), Public: addrs("192.0.2.1"), Ports: PortRange{1, 60000}, BlockSize: 1000},
			want: "100.64.0.0:30:192.0.2.1:32:58:1000:0:0,60001-65535"},
		// 256 ports: hosts .253 and .254 get no block (the masquerade).
		{p: labPolicy(), err: "block_size: 256 ports give blocks to 252 of 254"},
		{p: Policy{Inside: pfx("100.64.0.0/25", "100.64.1.0/25"), Public: addrs("192.0.2.1"), BlockSize: 200}, err: "inside: 2 prefixes"},
		{p: Policy{Inside: pfx("100.64.0.0/24"), Public: addrs("192.0.2.1"), BlockSize: 200, IncludeBoundary: true}, err: "include_boundary"},
		{p: Policy{Inside: pfx("100.64.0.0/24"), Public: addrs("192.0.2.1", "192.0.2.3"), BlockSize: 200}, err: "public: RFC 7422's record names one outside prefix"},
		{p: Policy{Inside: pfx("100.64.0.0/24"), Public: addrs("192.0.2.1", "192.0.2.0"), BlockSize: 200}, err: "public:"},
		{p: Policy{Inside: pfx("100.64.0.0/24"), Public: addrs("192.0.2.0", "192.0.2.1"), Ratio: 200}, err: "ratio: 200"},
		// 1000/300 = 3 blocks, but 1000/3 = 333 ports: no whole D gives 300.
		{p: Policy{Inside: pfx("100.64.0.0/30"), Public: addrs("192.0.2.1"), Ports: PortRange{1024, 2023}, BlockSize: 300}, err: "block_size: 300; RFC 7422"},
	} {
		got, err := c.p.LogLine()
		if c.want == "" {
			if err == nil || !strings.Contains(err.Error(), c.err) {
				t.Errorf("LogLine(%+v) = %q, %v; want an error with %q", c.p, got, err, c.err)
			}
			continue
		}
		if err != nil || got != c.want {
			t.Errorf("LogLine(%+v)\n got %s, %v\nwant %s", c.p, got, err, c.want)
			continue
		}
		n, _ := c.p.Normalize()
		back, err := ParseLogLine(got)
		if err != nil || !reflect.DeepEqual(back.Plan(), n.Plan()) {
			t.Errorf("ParseLogLine(%s) = %+v, %v", got, back, err)
		} else if again, _ := back.LogLine(); again != got {
			t.Errorf("ParseLogLine(%s).LogLine() = %s", got, again)
		}
		rec, err := c.p.Record(time.Date(2000, 10, 11, 14, 32, 52, 0, time.UTC))
		if err != nil || rec != "[Wed Oct 11 14:32:52 2000]:"+c.want {
			t.Errorf("Record = %q, %v", rec, err)
		}
		if back, err := ParseLogLine(rec + "."); err != nil || !reflect.DeepEqual(back.Plan(), n.Plan()) {
			t.Errorf("ParseLogLine(%s.) = %v", rec, err)
		}
	}
}

// RFC 7422 §2.3's example as its record (with the RFC's M = 5040, the
// 4032-port block plus overflow ports): 14 hosts of 198.51.100.0/28 get
// 4032 ports each on 192.0.2.1 from 1024, the overflow pool is
// 57472-65535; the abuse report for port 2001 names subscriber 1, 58204 is
// in the dynamic pool (no deterministic host).
func TestRFC7422Example(t *testing.T) {
	p, err := ParseLogLine("[Wed Oct 11 14:32:52 2000]:198.51.100.0:28:192.0.2.1:32:2:5040:0:1-1023")
	if err != nil {
		t.Fatal(err)
	}
	if p.BlockSize != 4032 || p.Ratio != 14 || p.Ports != DefaultPorts || p.Deterministic() != 14 {
		t.Fatalf("policy %+v", p)
	}
	for _, c := range []struct {
		host, ports string
	}{
		{"198.51.100.1", "1024-5055"}, {"198.51.100.2", "5056-9087"}, {"198.51.100.3", "9088-13119"},
		{"198.51.100.10", "37312-41343"}, {"198.51.100.14", "53440-57471"},
	} {
		if b, ok := p.Forward(netip.MustParseAddr(c.host)); !ok || b.Ports.String() != c.ports || b.Public.String() != "192.0.2.1" {
			t.Errorf("Forward(%s) = %+v, %v; want 192.0.2.1:%s", c.host, b, ok, c.ports)
		}
	}
	for port, want := range map[uint16]string{2001: "198.51.100.1", 5056: "198.51.100.2", 57471: "198.51.100.14", 58204: "", 57472: "", 1023: ""} {
		got, ok := p.Lookup(netip.AddrPortFrom(netip.MustParseAddr("192.0.2.1"), port))
		if (want == "") == ok || (ok && got.String() != want) {
			t.Errorf("Lookup(192.0.2.1:%d) = %v, %v; want %q", port, got, ok, want)
		}
	}
	for _, bad := range []struct{ line, err string }{
		// §3's own example reserves 5004 and 5060 amid the blocks.
		{"[Wed Oct 11 14:32:52 2000]:198.51.100.0:28:192.0.2.0:32:2:5040:0:1-1023,5004,5060.", "reserves port 5004 between usable ports"},
		{"198.51.100.0:28:192.0.2.1:32:2:5040:1:0-1023", "A=1 (staggered, ports interleaved)"},
		{"198.51.100.0:28:192.0.2.1:32:2:5040:3:0-1023", "A=3"},
		{"198.51.100.0:28:192.0.2.1:32:2:5040:6:0-1023", "A="},
		{"198.51.100.1:28:192.0.2.1:32:2:5040:0:0-1023", "host bits"},
		{"198.51.100.0:28:192.0.2.1:32:2:100:0:0-1023", "M=100 is below the 4032"},
		{"198.51.100.0:28:192.0.2.1:32:2:5040:0", "want 8 fields"},
		{"[yesterday]:198.51.100.0:28:192.0.2.1:32:2:5040:0:0-1023", "timestamp"},
		{"198.51.100.0:28:10.0.0.0:8:2:5040:0:0-1023", "more than 65536"},
		{"198.51.100.0:28:192.0.2.1:32:-1:5040:0:0-1023", "D="},
		{"198.51.100.0:28:192.0.2.1:32:2:5040:0:0-65535", "every port"},
		{"", "want 8 fields"},
	} {
		if p, err := ParseLogLine(bad.line); err == nil || !strings.Contains(err.Error(), bad.err) {
			t.Errorf("ParseLogLine(%q) = %+v, %v; want an error with %q", bad.line, p, err, bad.err)
		}
	}
}

func TestParsePortRange(t *testing.T) {
	for in, want := range map[string]PortRange{"1024-65535": {1024, 65535}, " 80 ": {80, 80}, "0-0": {0, 0}} {
		if got, err := ParsePortRange(in); err != nil || got != want {
			t.Errorf("ParsePortRange(%q) = %v, %v", in, got, err)
		}
	}
	for _, in := range []string{"", "-", "1-", "65536", "2-1", "+5", "1-2-3", "0x10", "1 -2x"} {
		if got, err := ParsePortRange(in); err == nil {
			t.Errorf("ParsePortRange(%q) = %v, want an error", in, got)
		}
	}
}

func FuzzParsePortRange(f *testing.F) {
	for _, s := range []string{"1024-65535", "80", "0", "65535-65535", "2-1", "99999", " 1 - 2 "} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		r, err := ParsePortRange(s)
		if err != nil {
			return
		}
		if r.First > r.Last {
			t.Fatalf("%q: %v", s, r)
		}
		if back, err := ParsePortRange(r.String()); err != nil || back != r {
			t.Fatalf("%q: round trip %v -> %v, %v", s, r, back, err)
		}
	})
}

func FuzzParsePolicy(f *testing.F) {
	f.Add(`{"inside":["100.64.0.0/24"],"public":["192.0.2.1"],"block_size":256}`)
	f.Add(`{"inside":["10.0.0.0/24"],"public":["198.51.100.1","198.51.100.2"],"ratio":64,"assignment":"staggered","include_boundary":true}`)
	f.Add(`{"policy":{"inside":["100.64.0.0/30"],"public":["192.0.2.1"],"ports":"5000-5999","block_size":10},"blocks":[]}`)
	f.Add(`{"inside":["100.64.0.0/0"],"public":["192.0.2.1"],"block_size":2}`)
	f.Fuzz(func(t *testing.T, s string) {
		p, err := ParsePolicy([]byte(s))
		if err != nil {
			return
		}
		checkPolicy(t, p)
	})
}

func FuzzParseLogLine(f *testing.F) {
	f.Add("100.64.0.0:24:192.0.2.1:32:2:252:0:0-1023")
	f.Add("[Wed Oct 11 14:32:52 2000]:198.51.100.0:28:192.0.2.1:32:2:5040:0:1-1023.")
	f.Add("10.0.0.0:24:198.51.100.0:31:1:504:5:0-1023")
	f.Add("100.64.0.9:32:192.0.2.1:32:0:2:0:0,3-65535")
	f.Add("198.51.100.0:28:192.0.2.0:32:2:5040:0:1-1023,5004,5060")
	f.Fuzz(func(t *testing.T, s string) {
		p, err := ParseLogLine(s)
		if err != nil {
			return
		}
		line, err := p.LogLine()
		if err != nil {
			t.Fatalf("%q: parsed, but no record: %v", s, err)
		}
		q, err := ParseLogLine(line)
		if err != nil || !reflect.DeepEqual(q, p) {
			t.Fatalf("%q -> %q -> %+v, %v; want %+v", s, line, q, err, p)
		}
		checkPolicy(t, p)
	})
}

// checkPolicy checks Lookup against Forward on a few hosts of a valid p
// (bounded: fuzzed policies may number millions of hosts).
func checkPolicy(t *testing.T, p Policy) {
	t.Helper()
	det := p.Deterministic()
	for _, i := range []uint64{0, 1, det / 2, det - 1, det, det + 1} {
		h, ok := p.hostAt(i)
		if !ok {
			continue
		}
		b, ok := p.Forward(h)
		if ok != (i < det) {
			t.Fatalf("host %d (%v): Forward ok %v, deterministic %d", i, h, ok, det)
		}
		if !ok {
			continue
		}
		for _, port := range []uint16{b.Ports.First, b.Ports.Last} {
			if got, ok := p.Lookup(netip.AddrPortFrom(b.Public, port)); !ok || got != h {
				t.Fatalf("Lookup(%v:%d) = %v, %v; want %v", b.Public, port, got, ok, h)
			}
		}
	}
}
