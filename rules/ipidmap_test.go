package rules

import (
	"net/netip"
	"strings"
	"testing"
	"time"
)

func TestIPIDMapValidate(t *testing.T) {
	ok := Spec{Inside: prefixes("100.64.0.0/24"), QueueCount: 1, Mechanism: Native, Placement: PreNAT, SYN: true,
		IPIDMap: &IPIDMap{Size: 10, Timeout: time.Hour}}
	if err := ok.Validate(); err != nil {
		t.Fatal(err)
	}
	for _, f := range []func(*Spec){
		func(s *Spec) { s.IPIDMap.Size = 0 },
		func(s *Spec) { s.IPIDMap.Timeout = time.Microsecond },
		func(s *Spec) { s.Placement = PostNAT },
		func(s *Spec) { s.SYN, s.AllTCP = false, true },
		func(s *Spec) { s.Inside, s.SYN6 = prefixes("2001:db8::/64"), true },
	} {
		s := ok
		m := *ok.IPIDMap
		s.IPIDMap = &m
		f(&s)
		if err := s.Validate(); err == nil || !strings.Contains(err.Error(), "ip-id map") {
			t.Errorf("%+v: %v, want an ip-id map error", s, err)
		}
	}
}

func TestNftDuration(t *testing.T) {
	for d, want := range map[time.Duration]string{
		time.Hour: "1h", 90*time.Minute + 1500*time.Millisecond: "1h30m1s500ms", 49 * time.Hour: "2d1h", 0: "0s",
	} {
		if got := nftDuration(d); got != want {
			t.Errorf("nftDuration(%v) = %q, want %q", d, got, want)
		}
	}
}

// The daemon's adds: the map lists them with the HOST_ID in network byte
// order (nft prints `ip id` values as numbers), an existing element is no
// error, and a full map refuses.
func TestSystemAddHostIDs(t *testing.T) {
	m := probe(t)
	n := newNetNS(t)
	c := n.conn(t)
	s := Spec{Inside: prefixes("100.64.0.0/24"), QueueCount: 1, Mechanism: m, Placement: PreNAT, SYN: true,
		IPIDMap: &IPIDMap{Size: 2, Timeout: time.Hour, SkipKnown: true}}
	if err := Apply(c, s); err != nil {
		t.Fatal(err)
	}
	els := []HostIDElement{{Inside: netip.MustParseAddr("100.64.0.2"), ID: 2}, {Inside: netip.MustParseAddr("100.64.0.3"), ID: 0x1234}}
	if err := AddHostIDs(c, "", els); err != nil {
		t.Fatal(err)
	}
	if err := AddHostIDs(c, "", els[:1]); err != nil {
		t.Errorf("adding an element again: %v", err)
	}
	out := n.mustNft(t, "", "list", "map", "ip", DefaultTable, HostIDMap)
	for _, want := range []string{"100.64.0.2 expires ", " : 2", "100.64.0.3 expires ", " : 4660"} {
		if !strings.Contains(out, want) {
			t.Errorf("map listing lacks %q:\n%s", want, out)
		}
	}
	if err := AddHostIDs(c, "", []HostIDElement{{Inside: netip.MustParseAddr("100.64.0.4"), ID: 4}}); err == nil {
		t.Errorf("a third element fit in a map of size 2")
	}
}
