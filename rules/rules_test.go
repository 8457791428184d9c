package rules

import (
	"bytes"
	"encoding/binary"
	"errors"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/google/nftables"
	"github.com/google/nftables/expr"
	"github.com/mdlayher/netlink"
	"golang.org/x/sys/unix"
)

func prefixes(ss ...string) []netip.Prefix {
	ps := make([]netip.Prefix, len(ss))
	for i, s := range ss {
		ps[i] = netip.MustParsePrefix(s)
	}
	return ps
}

// exampleSpec is the ruleset of the design: compat target, two queues,
// queued before NAT, all three kinds of rules.
func exampleSpec() Spec {
	return Spec{
		Inside:     prefixes("100.64.0.0/24"),
		QueueNum:   0,
		QueueCount: 2,
		Mechanism:  Compat,
		Placement:  PreNAT,
		SYN:        true,
		Track:      true,
		AllTCP:     true,
		TrackBit:   0x00010000,
		DoneBit:    0x00020000,
	}
}

func TestStrings(t *testing.T) {
	for _, tc := range []struct {
		got, want string
	}{
		{Native.String(), "native nft queue"},
		{Compat.String(), "xtables NFQUEUE target (nft_compat)"},
		{Mechanism(0).String(), "Mechanism(0)"},
		{PreNAT.String(), "pre-nat"},
		{PostNAT.String(), "post-nat"},
		{Placement(7).String(), "Placement(7)"},
	} {
		if tc.got != tc.want {
			t.Errorf("got %q, want %q", tc.got, tc.want)
		}
	}
}

func TestValidate(t *testing.T) {
	for _, tc := range []struct {
		name string
		edit func(*Spec)
		want []string // substrings of the error; none: valid
	}{
		{"example", func(*Spec) {}, nil},
		{"native post-nat syn only", func(s *Spec) {
			s.Mechanism, s.Placement, s.Track, s.AllTCP, s.TrackBit, s.DoneBit = Native, PostNAT, false, false, 0, 0
		}, nil},
		{"track only", func(s *Spec) { s.SYN, s.AllTCP = false, false }, nil},
		{"bits ignored without track", func(s *Spec) { s.Track, s.TrackBit, s.DoneBit = false, 3, 3 }, nil},
		{"last queue 65535", func(s *Spec) { s.QueueNum, s.QueueCount = 65532, 4 }, nil},
		{"last selected flows' queue 65535", func(s *Spec) {
			s.QueueNum, s.QueueCount, s.Select, s.SelectBit = 65528, 4, true, 0x40000
		}, nil},
		{"several prefixes, adjacent", func(s *Spec) {
			s.Inside = prefixes("100.64.1.0/24", "100.64.0.0/24", "10.0.0.1/32", "0.0.0.0/8", "255.255.255.255/32")
		}, nil},
		{"custom table", func(s *Spec) { s.Table = "nr_2-b" }, nil},
		{"both families", func(s *Spec) { s.Inside, s.SYN6 = prefixes("100.64.0.0/24", "2001:db8:1::/64"), true }, nil},
		{"ipv6 only", func(s *Spec) {
			s.Inside, s.SYN, s.Track, s.AllTCP, s.Track6 = prefixes("2001:db8:1::/64"), false, false, false, true
		}, nil},

		{"no prefixes", func(s *Spec) { s.Inside = nil }, []string{"no inside prefixes"}},
		{"ipv6 prefix, nothing queued", func(s *Spec) { s.Inside = prefixes("2001:db8::/32") }, []string{"nothing to queue for the IPv6"}},
		{"ipv6 post-nat", func(s *Spec) {
			s.Inside, s.SYN6, s.Placement = prefixes("100.64.0.0/24", "2001:db8::/32"), true, PostNAT
		}, []string{"32-bit mark"}},
		{"4in6 prefix", func(s *Spec) { s.Inside = prefixes("::ffff:100.64.0.0/120") }, []string{"write IPv4 prefixes as IPv4"}},
		{"ipv6 overlap", func(s *Spec) { s.Inside, s.SYN6 = prefixes("2001:db8::/32", "2001:db8:1::/48"), true }, []string{"overlap"}},
		{"zero prefix", func(s *Spec) { s.Inside = []netip.Prefix{{}} }, []string{"not valid"}},
		{"host bits", func(s *Spec) { s.Inside = prefixes("100.64.0.1/24") }, []string{"host bits", "100.64.0.0/24"}},
		{"overlap", func(s *Spec) { s.Inside = prefixes("100.64.0.0/24", "100.64.0.128/25") }, []string{"overlap"}},
		{"duplicate", func(s *Spec) { s.Inside = prefixes("100.64.0.0/24", "100.64.0.0/24") }, []string{"overlap"}},
		{"no queues", func(s *Spec) { s.QueueCount = 0 }, []string{"queue count is 0"}},
		{"queues past 65535", func(s *Spec) { s.QueueNum, s.QueueCount = 65533, 4 }, []string{"beyond 65535"}},
		{"selected flows' queues past 65535", func(s *Spec) {
			s.QueueNum, s.QueueCount, s.Select, s.SelectBit = 65529, 4, true, 0x40000
		}, []string{"queues 65529..65536 (the second range, for selected flows) go beyond 65535"}},
		{"no mechanism", func(s *Spec) { s.Mechanism = 0 }, []string{"mechanism"}},
		{"no placement", func(s *Spec) { s.Placement = 3 }, []string{"placement"}},
		{"nothing queued", func(s *Spec) { s.SYN, s.Track, s.AllTCP = false, false, false }, []string{"nothing to queue"}},
		{"track bit zero", func(s *Spec) { s.TrackBit = 0 }, []string{"track bit 0x00000000 is not a single bit"}},
		{"done bit two bits", func(s *Spec) { s.DoneBit = 0x30000 }, []string{"done bit 0x00030000 is not a single bit"}},
		{"same bits", func(s *Spec) { s.DoneBit = s.TrackBit }, []string{"both 0x00010000"}},
		{"seqadj bit without helper", func(s *Spec) { s.Select, s.SelectBit, s.SeqAdjBit = true, 0x40000, 0x80000 },
			[]string{"seqadj bit 0x00080000 needs a seqadj helper"}},
		{"seqadj bit is the select bit", func(s *Spec) {
			s.Select, s.SelectBit, s.SeqAdjHelper, s.SeqAdjBit = true, 0x40000, "ftp", 0x40000
		}, []string{"also the select, track or done bit"}},
		{"seqadj bit two bits", func(s *Spec) {
			s.Select, s.SelectBit, s.SeqAdjHelper, s.SeqAdjBit = true, 0x40000, "ftp", 0x180000
		}, []string{"not a single bit"}},
		{"uploads without seqadj bit", func(s *Spec) { s.UploadSize, s.UploadTimeout = 10, time.Minute },
			[]string{"the uploads set needs the seqadj bit"}},
		{"uploads set too big, no timeout", func(s *Spec) {
			s.Select, s.SelectBit, s.SeqAdjHelper, s.SeqAdjBit, s.UploadSize = true, 0x40000, "ftp", 0x80000, MaxUploadsSize+1
		}, []string{"uploads set size 16777217", "uploads set timeout 0s"}},
		{"close bit with select", func(s *Spec) { s.Select, s.SelectBit, s.CloseBit = true, 0x40000, 0x40000 },
			[]string{"close bit 0x00040000 with select"}},
		{"close bit two bits", func(s *Spec) { s.CloseBit = 0xc0000 }, []string{"close bit 0x000c0000 is not a single bit"}},
		{"close bit is the track bit", func(s *Spec) { s.CloseBit = s.TrackBit }, []string{"close bit 0x00010000 is also the track or done bit"}},
		{"close bit, IPv6 only", func(s *Spec) {
			s.Inside, s.SYN, s.Track, s.AllTCP, s.SYN6, s.CloseBit = prefixes("2001:db8::/32"), false, false, false, true, 0x40000
		}, []string{"close bit 0x00040000 needs an IPv4 inside prefix"}},
		{"bad table name", func(s *Spec) { s.Table = "nat reveal" }, []string{"table name"}},
		{"table name with quote", func(s *Spec) { s.Table = `x"y` }, []string{"table name"}},
		{"long table name", func(s *Spec) { s.Table = strings.Repeat("t", 256) }, []string{"at most 255"}},
		{"probe table", func(s *Spec) { s.Table = probeTable }, []string{"reserved"}},
		{"several problems", func(s *Spec) { s.Inside, s.QueueCount = nil, 0 }, []string{"no inside prefixes", "queue count"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := exampleSpec()
			tc.edit(&s)
			err := s.Validate()
			if len(tc.want) == 0 {
				if err != nil {
					t.Fatalf("Validate: %v", err)
				}
				return
			}
			if err == nil {
				t.Fatalf("Validate accepted %+v", s)
			}
			if !strings.HasPrefix(err.Error(), "rules: invalid spec: ") {
				t.Errorf("error %q lacks context", err)
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not mention %q", err, w)
				}
			}
		})
	}
}

func TestText(t *testing.T) {
	for _, tc := range []struct {
		name string
		edit func(*Spec)
		want string
	}{
		{"example", func(*Spec) {}, `table ip natreveal {
	counter track_done {
		packets 0 bytes 0
	}

	set inside {
		type ipv4_addr
		flags interval
		elements = { 100.64.0.0/24 }
	}

	chain followed {
		ct mark & 0x00010000 == 0x00010000 ct direction reply tcp flags != syn,ack / syn,ack counter name "track_done" ct mark set ct mark & 0xfffeffff | 0x00020000
		ct mark & 0x00010000 == 0x00010000 ct direction original tcp flags & rst == rst counter name "track_done" ct mark set ct mark & 0xfffeffff | 0x00020000
		ct mark & 0x00010000 == 0x00010000 ct direction original ip protocol tcp meta mark set meta mark | 0x00010000 queue num 0-1 bypass,fanout
	}

	chain from_inside {
		ct state invalid drop
		tcp flags fin,syn / fin,syn drop
		tcp flags syn,rst / syn,rst drop
		tcp flags syn / fin,syn,rst,ack queue num 0-1 bypass,fanout
		ct mark & 0x00010000 != 0x00000000 jump followed
		ip protocol tcp queue num 0-1 bypass,fanout
	}

	chain steer {
		type filter hook postrouting priority srcnat - 1; policy accept;
		ip saddr @inside goto from_inside
		ct mark & 0x00010000 != 0x00000000 goto followed
	}

	chain remember {
		type filter hook postrouting priority srcnat + 1; policy accept;
		meta mark & 0x00030000 == 0x00000000 return
		meta mark & 0x00010000 == 0x00010000 ct state new ct mark set ct mark | 0x00010000
		meta mark & 0x00020000 == 0x00020000 ct mark set ct mark & 0xfffeffff | 0x00020000
		meta mark & 0x00030000 != 0x00000000 meta mark set meta mark & 0xfffcffff
	}
}
`},
		{"one queue, syn only, own table", func(s *Spec) {
			s.Table, s.QueueNum, s.QueueCount, s.Track, s.AllTCP = "nr", 3, 1, false, false
		}, `table ip nr {
	set inside {
		type ipv4_addr
		flags interval
		elements = { 100.64.0.0/24 }
	}

	chain from_inside {
		ct state invalid drop
		tcp flags fin,syn / fin,syn drop
		tcp flags syn,rst / syn,rst drop
		tcp flags syn / fin,syn,rst,ack queue num 3 bypass
	}

	chain steer {
		type filter hook postrouting priority srcnat - 1; policy accept;
		ip saddr @inside goto from_inside
	}
}
`},
		{"native, post-nat, four queues, top bits, many prefixes", func(s *Spec) {
			s.Mechanism, s.Placement, s.QueueNum, s.QueueCount = Native, PostNAT, 10, 4
			s.TrackBit, s.DoneBit = 0x80000000, 0x40000000
			s.Inside = prefixes("100.64.1.0/24", "100.64.0.0/24", "10.0.0.1/32", "192.168.0.0/16", "172.16.0.0/12")
		}, `table ip natreveal {
	counter track_done {
		packets 0 bytes 0
	}

	set inside {
		type ipv4_addr
		flags interval
		elements = { 10.0.0.1, 100.64.0.0/24,
			     100.64.1.0/24, 172.16.0.0/12,
			     192.168.0.0/16 }
	}

	chain tag {
		type filter hook postrouting priority srcnat - 1; policy accept;
		meta mark 0x00000000 ip saddr @inside ip protocol tcp meta mark set @nh,96,32
	}

	chain drop_invalid {
		ct state invalid drop
		tcp flags fin,syn / fin,syn drop
		tcp flags syn,rst / syn,rst drop
	}

	chain followed {
		ct mark 0x80000000/1 ct direction reply tcp flags != syn,ack / syn,ack counter name "track_done" ct mark set ct mark & 0x7fffffff | 0x40000000
		ct mark 0x80000000/1 ct direction original tcp flags & rst == rst counter name "track_done" ct mark set ct mark & 0x7fffffff | 0x40000000
		ct mark 0x80000000/1 ct direction original ip protocol tcp queue flags bypass,fanout to 10-13
	}

	chain from_inside {
		tcp flags syn / fin,syn,rst,ack queue flags bypass,fanout to 10-13
		ct mark != 0x00000000/1 jump followed
		ip protocol tcp queue flags bypass,fanout to 10-13
	}

	chain steer {
		type filter hook postrouting priority srcnat + 1; policy accept;
		ip saddr @inside jump drop_invalid
		ct original ip saddr @inside goto from_inside
		ct mark != 0x00000000/1 goto followed
	}

	chain remember {
		type filter hook postrouting priority srcnat + 2; policy accept;
		meta mark 0x00000000/2 return
		meta mark & 0x3fffffff == 0x00000000 meta mark 0x80000000/1 ct state new ct mark set ct mark | 0x80000000
		meta mark & 0x3fffffff == 0x00000000 meta mark & 0x40000000 == 0x40000000 ct mark set ct mark & 0x7fffffff | 0x40000000
		meta mark != 0x00000000/2 meta mark set meta mark & 0x3fffffff
	}
}
`},
		{"native, one queue, all tcp", func(s *Spec) {
			s.Mechanism, s.QueueCount, s.SYN, s.Track = Native, 1, false, false
		}, `table ip natreveal {
	set inside {
		type ipv4_addr
		flags interval
		elements = { 100.64.0.0/24 }
	}

	chain from_inside {
		ct state invalid drop
		tcp flags fin,syn / fin,syn drop
		tcp flags syn,rst / syn,rst drop
		ip protocol tcp queue flags bypass to 0
	}

	chain steer {
		type filter hook postrouting priority srcnat - 1; policy accept;
		ip saddr @inside goto from_inside
	}
}
`},
		{"both families, tcp-option and dest-opt with UDP", func(s *Spec) {
			s.Mechanism, s.QueueCount, s.AllTCP = Native, 1, false
			s.Inside = prefixes("2001:db8:1::/64", "100.64.0.0/24", "2001:db8:5::9/128")
			s.SYN6, s.Track6, s.UDP6 = true, true, true
			s.TrackMSS, s.TrackPackets = true, 9
		}, `table ip natreveal {
	counter track_done {
		packets 0 bytes 0
	}

	counter mss_lowered {
		packets 0 bytes 0
	}

	set inside {
		type ipv4_addr
		flags interval
		elements = { 100.64.0.0/24 }
	}

	chain mss {
		tcp option maxseg size <= 536 return
		tcp option maxseg size <= 544 counter name "mss_lowered" tcp option maxseg size set 536 return
		tcp option maxseg size & 8 == 8 counter name "mss_lowered" tcp option maxseg size set tcp option maxseg size ^ 0x8 return
		tcp option maxseg size & 24 == 16 counter name "mss_lowered" tcp option maxseg size set tcp option maxseg size ^ 0x18 return
		tcp option maxseg size & 56 == 32 counter name "mss_lowered" tcp option maxseg size set tcp option maxseg size ^ 0x38 return
		tcp option maxseg size & 120 == 64 counter name "mss_lowered" tcp option maxseg size set tcp option maxseg size ^ 0x78 return
		tcp option maxseg size & 248 == 128 counter name "mss_lowered" tcp option maxseg size set tcp option maxseg size ^ 0xf8 return
		tcp option maxseg size & 504 == 256 counter name "mss_lowered" tcp option maxseg size set tcp option maxseg size ^ 0x1f8 return
		tcp option maxseg size & 1016 == 512 counter name "mss_lowered" tcp option maxseg size set tcp option maxseg size ^ 0x3f8 return
		tcp option maxseg size & 2040 == 1024 counter name "mss_lowered" tcp option maxseg size set tcp option maxseg size ^ 0x7f8 return
		tcp option maxseg size & 4088 == 2048 counter name "mss_lowered" tcp option maxseg size set tcp option maxseg size ^ 0xff8 return
		tcp option maxseg size & 8184 == 4096 counter name "mss_lowered" tcp option maxseg size set tcp option maxseg size ^ 0x1ff8 return
		tcp option maxseg size & 16376 == 8192 counter name "mss_lowered" tcp option maxseg size set tcp option maxseg size ^ 0x3ff8 return
		tcp option maxseg size & 32760 == 16384 counter name "mss_lowered" tcp option maxseg size set tcp option maxseg size ^ 0x7ff8 return
		tcp option maxseg size & 65528 == 32768 counter name "mss_lowered" tcp option maxseg size set tcp option maxseg size ^ 0xfff8 return
	}

	chain followed {
		ct mark & 0x00010000 == 0x00010000 ct direction reply tcp flags syn,ack / syn,ack jump mss
		ct mark & 0x00010000 == 0x00010000 ct direction reply tcp flags != syn,ack / syn,ack counter name "track_done" ct mark set ct mark & 0xfffeffff | 0x00020000
		ct mark & 0x00010000 == 0x00010000 ct direction original tcp flags & rst == rst counter name "track_done" ct mark set ct mark & 0xfffeffff | 0x00020000
		ct mark & 0x00010000 == 0x00010000 ct direction original ct original packets > 9 counter name "track_done" ct mark set ct mark & 0xfffeffff | 0x00020000
		ct mark & 0x00010000 == 0x00010000 ct direction original ip protocol tcp meta mark set meta mark | 0x00010000 queue flags bypass to 0
	}

	chain from_inside {
		ct state invalid drop
		tcp flags fin,syn / fin,syn drop
		tcp flags syn,rst / syn,rst drop
		tcp flags syn / fin,syn,rst,ack queue flags bypass to 0
		ct mark & 0x00010000 != 0x00000000 jump followed
	}

	chain steer {
		type filter hook postrouting priority srcnat - 1; policy accept;
		ip saddr @inside goto from_inside
		ct mark & 0x00010000 != 0x00000000 goto followed
	}

	chain remember {
		type filter hook postrouting priority srcnat + 1; policy accept;
		meta mark & 0x00030000 == 0x00000000 return
		meta mark & 0x00010000 == 0x00010000 ct state new ct mark set ct mark | 0x00010000
		meta mark & 0x00020000 == 0x00020000 ct mark set ct mark & 0xfffeffff | 0x00020000
		meta mark & 0x00030000 != 0x00000000 meta mark set meta mark & 0xfffcffff
	}
}
table ip6 natreveal {
	counter track_done {
		packets 0 bytes 0
	}

	counter mss_lowered {
		packets 0 bytes 0
	}

	set inside {
		type ipv6_addr
		flags interval
		elements = { 2001:db8:1::/64,
			     2001:db8:5::9 }
	}

	chain mss {
		tcp option maxseg size <= 1220 return
		tcp option maxseg size <= 1228 counter name "mss_lowered" tcp option maxseg size set 1220 return
		tcp option maxseg size & 8 == 8 counter name "mss_lowered" tcp option maxseg size set tcp option maxseg size ^ 0x8 return
		tcp option maxseg size & 24 == 16 counter name "mss_lowered" tcp option maxseg size set tcp option maxseg size ^ 0x18 return
		tcp option maxseg size & 56 == 32 counter name "mss_lowered" tcp option maxseg size set tcp option maxseg size ^ 0x38 return
		tcp option maxseg size & 120 == 64 counter name "mss_lowered" tcp option maxseg size set tcp option maxseg size ^ 0x78 return
		tcp option maxseg size & 248 == 128 counter name "mss_lowered" tcp option maxseg size set tcp option maxseg size ^ 0xf8 return
		tcp option maxseg size & 504 == 256 counter name "mss_lowered" tcp option maxseg size set tcp option maxseg size ^ 0x1f8 return
		tcp option maxseg size & 1016 == 512 counter name "mss_lowered" tcp option maxseg size set tcp option maxseg size ^ 0x3f8 return
		tcp option maxseg size & 2040 == 1024 counter name "mss_lowered" tcp option maxseg size set tcp option maxseg size ^ 0x7f8 return
		tcp option maxseg size & 4088 == 2048 counter name "mss_lowered" tcp option maxseg size set tcp option maxseg size ^ 0xff8 return
		tcp option maxseg size & 8184 == 4096 counter name "mss_lowered" tcp option maxseg size set tcp option maxseg size ^ 0x1ff8 return
		tcp option maxseg size & 16376 == 8192 counter name "mss_lowered" tcp option maxseg size set tcp option maxseg size ^ 0x3ff8 return
		tcp option maxseg size & 32760 == 16384 counter name "mss_lowered" tcp option maxseg size set tcp option maxseg size ^ 0x7ff8 return
		tcp option maxseg size & 65528 == 32768 counter name "mss_lowered" tcp option maxseg size set tcp option maxseg size ^ 0xfff8 return
	}

	chain followed {
		ct mark & 0x00010000 == 0x00010000 ct direction reply tcp flags syn,ack / syn,ack jump mss
		ct mark & 0x00010000 == 0x00010000 ct direction reply tcp flags != syn,ack / syn,ack counter name "track_done" ct mark set ct mark & 0xfffeffff | 0x00020000
		ct mark & 0x00010000 == 0x00010000 ct direction original tcp flags & rst == rst counter name "track_done" ct mark set ct mark & 0xfffeffff | 0x00020000
		ct mark & 0x00010000 == 0x00010000 ct direction original ct original packets > 9 counter name "track_done" ct mark set ct mark & 0xfffeffff | 0x00020000
		ct mark & 0x00010000 == 0x00010000 ct direction original meta l4proto tcp meta mark set meta mark | 0x00010000 queue flags bypass to 0
		ct mark & 0x00010000 == 0x00010000 meta l4proto udp queue flags bypass to 0
	}

	chain from_inside {
		ct state invalid drop
		tcp flags fin,syn / fin,syn drop
		tcp flags syn,rst / syn,rst drop
		tcp flags syn / fin,syn,rst,ack queue flags bypass to 0
		ct mark & 0x00010000 != 0x00000000 jump followed
		meta l4proto udp ct state new ct mark & 0x00030000 == 0x00000000 queue flags bypass to 0
	}

	chain steer {
		type filter hook postrouting priority srcnat - 1; policy accept;
		ip6 saddr @inside goto from_inside
		ct mark & 0x00010000 != 0x00000000 goto followed
	}

	chain remember {
		type filter hook postrouting priority srcnat + 1; policy accept;
		meta mark & 0x00030000 == 0x00000000 return
		meta mark & 0x00010000 == 0x00010000 ct state new ct mark set ct mark | 0x00010000
		meta mark & 0x00020000 == 0x00020000 ct mark set ct mark & 0xfffeffff | 0x00020000
		meta mark & 0x00030000 != 0x00000000 meta mark set meta mark & 0xfffcffff
	}
}
`},
		{"invalid", func(s *Spec) { s.Inside, s.QueueCount = nil, 0 },
			"# natreveal: invalid rules spec: no inside prefixes; queue count is 0, need at least 1\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := exampleSpec()
			tc.edit(&s)
			if got := Text(s); got != tc.want {
				t.Errorf("Text:\n%s\nwant:\n%s", got, tc.want)
			}
		})
	}
}

func TestElementsText(t *testing.T) {
	for _, tc := range []struct {
		in   []string
		want string
	}{
		{[]string{"0.0.0.0/0"}, "0.0.0.0/0"},
		{[]string{"255.255.255.255/32", "1.2.3.4/32"}, "1.2.3.4, 255.255.255.255"},
		{[]string{"10.0.0.0/8", "100.64.0.0/24", "100.64.1.0/24", "100.64.2.0/23", "172.16.0.0/12", "192.168.1.1/32"},
			"10.0.0.0/8, 100.64.0.0/24,\n\t\t\t     100.64.1.0/24, 100.64.2.0/23,\n\t\t\t     172.16.0.0/12, 192.168.1.1"},
	} {
		if got := elementsText(prefixes(tc.in...)); got != tc.want {
			t.Errorf("elementsText(%v) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

func TestMaskedMatch(t *testing.T) {
	for _, tc := range []struct {
		mask, val uint32
		neq       bool
		want      string
	}{
		{0x00010000, 0x00010000, false, "k & 0x00010000 == 0x00010000"},
		{0x00000001, 0x00000001, false, "k & 0x00000001 == 0x00000001"},
		{0x80000000, 0x80000000, false, "k 0x80000000/1"},
		{0xc0000000, 0xc0000000, false, "k 0xc0000000/2"},
		{0xc0000000, 0, true, "k != 0x00000000/2"},
		{0x80000001, 0, true, "k & 0x80000001 != 0x00000000"},
		{0x00030000, 0, true, "k & 0x00030000 != 0x00000000"},
	} {
		if got := maskedMatch("k", tc.mask, tc.val, tc.neq); got != tc.want {
			t.Errorf("maskedMatch(%#x, %#x, %v) = %q, want %q", tc.mask, tc.val, tc.neq, got, tc.want)
		}
	}
}

func TestIntervalElements(t *testing.T) {
	type el struct {
		key string
		end bool
	}
	for _, tc := range []struct {
		in   []string
		want []el
	}{
		{[]string{"100.64.0.0/24"}, []el{{"0.0.0.0", true}, {"100.64.0.0", false}, {"100.64.1.0", true}}},
		// Adjacent ranges keep both the end of one and the start of the next, as nft sends them.
		{[]string{"100.64.1.0/24", "0.0.0.0/8", "100.64.0.0/24"}, []el{
			{"0.0.0.0", false}, {"1.0.0.0", true},
			{"100.64.0.0", false}, {"100.64.1.0", true},
			{"100.64.1.0", false}, {"100.64.2.0", true},
		}},
		{[]string{"0.0.0.0/0"}, []el{{"0.0.0.0", false}}},
		{[]string{"255.255.255.255/32"}, []el{{"0.0.0.0", true}, {"255.255.255.255", false}}},
		{[]string{"2001:db8:1::/64", "2001:db8:1:1::9/128"}, []el{
			{"::", true}, {"2001:db8:1::", false}, {"2001:db8:1:1::", true},
			{"2001:db8:1:1::9", false}, {"2001:db8:1:1::a", true},
		}},
		{[]string{"::/0"}, []el{{"::", false}}},
		{[]string{"ff00::/8"}, []el{{"::", true}, {"ff00::", false}}},
	} {
		var got []el
		for _, e := range intervalElements(prefixes(tc.in...)) {
			a, ok := netip.AddrFromSlice(e.Key)
			if !ok || len(e.Val) != 0 || len(e.KeyEnd) != 0 {
				t.Fatalf("odd element %+v", e)
			}
			got = append(got, el{a.String(), e.IntervalEnd})
		}
		if len(got) != len(tc.want) {
			t.Errorf("%v: got %v, want %v", tc.in, got, tc.want)
			continue
		}
		for i := range got {
			if got[i] != tc.want[i] {
				t.Errorf("%v: got %v, want %v", tc.in, got, tc.want)
				break
			}
		}
	}
}

func TestBuild(t *testing.T) {
	if _, err := Build(Spec{}); err == nil {
		t.Fatal("Build accepted an empty Spec")
	}
	s := exampleSpec()
	s.Placement = PostNAT
	rss, err := Build(s)
	if err != nil {
		t.Fatal(err)
	}
	if len(rss) != 1 {
		t.Fatalf("%d tables for IPv4 prefixes, want 1", len(rss))
	}
	rs := rss[0]
	if rs.Table.Name != DefaultTable || rs.Table.Family != nftables.TableFamilyIPv4 {
		t.Errorf("table %+v", rs.Table)
	}
	if rs.Set.Name != "inside" || !rs.Set.Interval || rs.Set.KeyType.Name != "ipv4_addr" || rs.Set.Table != rs.Table {
		t.Errorf("set %+v", rs.Set)
	}
	// Base chains tag, steer and remember; the regular chains steer sends
	// packets into, each before the first rule that jumps to it.
	names := []string{"tag", "drop_invalid", "followed", "from_inside", "steer", "remember"}
	if len(rs.Chains) != len(names) {
		t.Fatalf("chains %v", rs.Chains)
	}
	prio := map[string]int32{"tag": 99, "steer": 101, "remember": 102}
	for i, ch := range rs.Chains {
		if ch.Name != names[i] {
			t.Fatalf("chain %d is %s, want %s", i, ch.Name, names[i])
		}
		want, base := prio[ch.Name]
		if !base {
			if ch.Hooknum != nil || ch.Priority != nil || ch.Policy != nil {
				t.Errorf("regular chain %s: %+v", ch.Name, ch)
			}
			continue
		}
		if p := *ch.Priority; int32(p) != want {
			t.Errorf("%s priority %d, want %d", ch.Name, p, want)
		}
		if *ch.Hooknum != *nftables.ChainHookPostrouting || ch.Type != nftables.ChainTypeFilter || *ch.Policy != nftables.ChainPolicyAccept {
			t.Errorf("chain %s: %+v", ch.Name, ch)
		}
	}
	// Rules per chain, in chain order.
	counts := []int{1, 3, 3, 3, 3, 4}
	var chainOf []*nftables.Chain
	for i, n := range counts {
		for range n {
			chainOf = append(chainOf, rs.Chains[i])
		}
	}
	if len(rs.Rules) != len(chainOf) {
		t.Fatalf("%d rules, want %d", len(rs.Rules), len(chainOf))
	}
	for i, r := range rs.Rules {
		if r.Chain != chainOf[i] || r.Table != rs.Table {
			t.Errorf("rule %d in %s, want %s", i, r.Chain.Name, chainOf[i].Name)
		}
	}
	// The tag rule (AllTCP covers SYN and Track) ends by copying the
	// source address bytes into the packet mark.
	tag := rs.Rules[0].Exprs
	if p, ok := tag[len(tag)-2].(*expr.Payload); !ok || p.Base != expr.PayloadBaseNetworkHeader || p.Offset != 12 || p.Len != 4 {
		t.Errorf("tag rule loads %#v, want the IPv4 source address", tag[len(tag)-2])
	}
	if m, ok := tag[len(tag)-1].(*expr.Meta); !ok || m.Key != expr.MetaKeyMARK || !m.SourceRegister {
		t.Errorf("tag rule ends with %#v, want meta mark set", tag[len(tag)-1])
	}
	// The steer chain starts with the jump to the drops of invalid packets
	// (not NATed: matched by their own source), then post-NAT it recognises
	// inside hosts by the original source address.
	steer := rs.Rules[10:13]
	e := steer[0].Exprs
	if p, ok := e[0].(*expr.Payload); !ok || p.Offset != 12 || p.Len != 4 {
		t.Errorf("steer rule 0 starts with %#v, want ip saddr", e[0])
	}
	if v, ok := e[len(e)-1].(*expr.Verdict); !ok || v.Kind != expr.VerdictJump || v.Chain != "drop_invalid" {
		t.Errorf("steer rule 0 ends with %#v, want jump drop_invalid", e[len(e)-1])
	}
	for i := 1; i <= 3; i++ {
		e := rs.Rules[i].Exprs
		if v, ok := e[len(e)-1].(*expr.Verdict); !ok || v.Kind != expr.VerdictDrop {
			t.Errorf("drop rule %d ends with %#v, want drop", i, e[len(e)-1])
		}
	}
	e = steer[1].Exprs
	ct, ok := e[0].(*expr.Ct)
	if !ok || ct.Key != expr.CtKey(unix.NFT_CT_SRC_IP) || ct.Direction != 0 || ct.Register != 1 {
		t.Errorf("first expression %#v, want ct original ip saddr", e[0])
	}
	if v, ok := e[len(e)-1].(*expr.Verdict); !ok || v.Kind != expr.VerdictGoto || v.Chain != "from_inside" {
		t.Errorf("steer rule 1 ends with %#v, want goto from_inside", e[len(e)-1])
	}
	syn := rs.Rules[7].Exprs
	tg, ok := syn[len(syn)-1].(*expr.Target)
	if !ok || tg.Name != "NFQUEUE" || tg.Rev != 3 {
		t.Fatalf("last expression %#v, want NFQUEUE target", syn[len(syn)-1])
	}
	if got := rs.String(); got != "table ip natreveal: 6 chains, 17 rules, 3 set elements" {
		t.Errorf("String() = %q", got)
	}
}

func TestSourceFromMark(t *testing.T) {
	// The kernel stores the register's 4 bytes as the mark: read back in
	// host order they are the address again.
	a := netip.MustParseAddr("100.64.0.3")
	b := a.As4()
	if got := SourceFromMark(binary.NativeEndian.Uint32(b[:])); got != a {
		t.Errorf("SourceFromMark = %v, want %v", got, a)
	}
}

func TestNFQueueInfo(t *testing.T) {
	// struct xt_NFQ_info_v3 in host byte order, padded to 8 bytes: the
	// bytes iptables-nft sends (little-endian host) for
	// -j NFQUEUE --queue-balance 0:1 --queue-bypass --queue-cpu-fanout.
	got := nfqueueTarget(0, 2, nfqFlagBypass|nfqFlagCPUFanout)
	info, err := expr.Marshal(unix.NFPROTO_IPV4, got)
	if err != nil {
		t.Fatal(err)
	}
	var want []byte
	if isLittleEndian() {
		want = []byte{0x0c, 0x00, 0x03, 0x00, 0x00, 0x00, 0x02, 0x00, 0x03, 0x00, 0x00, 0x00}
	} else {
		want = []byte{0x0c, 0x00, 0x03, 0x00, 0x00, 0x00, 0x00, 0x02, 0x00, 0x03, 0x00, 0x00}
	}
	if !bytes.Contains(info, want) {
		t.Errorf("target %x does not hold NFTA_TARGET_INFO %x", info, want)
	}
}

// fakeConn returns a Conn whose batches go to fn, one call per batch (the
// request without its batch begin and end messages).
func fakeConn(t *testing.T, fn func(msgs []netlink.Message) error) *nftables.Conn {
	t.Helper()
	c, err := nftables.New(nftables.WithTestDial(func(req []netlink.Message) ([]netlink.Message, error) {
		if len(req) == 0 {
			return nil, nil // Flush reading acknowledgements
		}
		if len(req) < 2 || req[0].Header.Type != unix.NFNL_MSG_BATCH_BEGIN || req[len(req)-1].Header.Type != unix.NFNL_MSG_BATCH_END {
			t.Errorf("request is not one batch: %v", req)
			return nil, errors.New("not a batch")
		}
		if err := fn(req[1 : len(req)-1]); err != nil {
			return nil, err
		}
		return req, nil
	}))
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func msgType(m netlink.Message) int { return int(m.Header.Type) & 0xff }

func hasExpr(msgs []netlink.Message, name string) bool {
	for _, m := range msgs {
		if msgType(m) == unix.NFT_MSG_NEWRULE && bytes.Contains(m.Data, []byte(name+"\x00")) {
			return true
		}
	}
	return false
}

func TestProbeFake(t *testing.T) {
	enoent := func(name string) func([]netlink.Message) error {
		return func(msgs []netlink.Message) error {
			if name == "" || hasExpr(msgs, name) {
				return unix.ENOENT
			}
			return nil
		}
	}
	for _, tc := range []struct {
		name    string
		fail    string // expression the fake kernel lacks; "" for everything
		want    Mechanism
		batches int
	}{
		{"native", "nothing", Native, 1},
		{"compat", "queue", Compat, 2},
		{"none", "", 0, 2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var batches int
			check := enoent(tc.fail)
			c := fakeConn(t, func(msgs []netlink.Message) error {
				batches++
				// add table, add chain, add rule, delete table: nothing stays.
				wantTypes := []int{unix.NFT_MSG_NEWTABLE, unix.NFT_MSG_NEWCHAIN, unix.NFT_MSG_NEWRULE, unix.NFT_MSG_DELTABLE}
				if len(msgs) != len(wantTypes) {
					t.Fatalf("batch of %d messages, want %d", len(msgs), len(wantTypes))
				}
				for i, m := range msgs {
					if msgType(m) != wantTypes[i] || !bytes.Contains(m.Data, []byte(probeTable+"\x00")) {
						t.Errorf("message %d: type %d, %x", i, msgType(m), m.Data)
					}
				}
				return check(msgs)
			})
			m, err := Probe(c)
			if m != tc.want {
				t.Errorf("Probe = %v, want %v", m, tc.want)
			}
			if tc.want == 0 {
				if err == nil || !strings.Contains(err.Error(), Native.String()) || !strings.Contains(err.Error(), Compat.String()) ||
					!errors.Is(err, unix.ENOENT) {
					t.Errorf("error %v does not name both failures", err)
				}
			} else if err != nil {
				t.Errorf("Probe: %v", err)
			}
			if batches != tc.batches {
				t.Errorf("%d batches, want %d", batches, tc.batches)
			}
		})
	}
}

func TestApplyErrors(t *testing.T) {
	c := fakeConn(t, func([]netlink.Message) error {
		t.Error("an invalid spec reached the kernel")
		return nil
	})
	s := exampleSpec()
	s.QueueCount = 0
	err := Apply(c, s)
	if err == nil || !strings.HasPrefix(err.Error(), "rules: apply table natreveal: invalid spec: queue count") {
		t.Errorf("Apply(invalid) = %v", err)
	}
	if err := c.Flush(); err != nil { // nothing buffered
		t.Errorf("Flush after a refused Apply: %v", err)
	}

	c = fakeConn(t, func([]netlink.Message) error { return unix.EPERM })
	err = Apply(c, exampleSpec())
	if err == nil || !strings.HasPrefix(err.Error(), "rules: apply table natreveal: ") || !errors.Is(err, unix.EPERM) {
		t.Errorf("Apply with EPERM = %v", err)
	}
	err = Remove(c, "")
	if err == nil || !strings.HasPrefix(err.Error(), "rules: remove table natreveal: ") || !errors.Is(err, unix.EPERM) {
		t.Errorf("Remove with EPERM = %v", err)
	}
}

func TestCtWorkaround(t *testing.T) {
	if err := checkCtWorkaround(); err != nil {
		t.Fatal(err)
	}
	// What libnftnl sends for `ct original ip saddr` into register 1 (nft
	// --debug=mnl): key NFT_CT_SRC_IP (19), dreg 1, direction 0 as a u8.
	want := []byte{
		0x28, 0x00, 0x01, 0x80, // NFTA_LIST_ELEM
		0x07, 0x00, 0x01, 0x00, 'c', 't', 0x00, 0x00, // NFTA_EXPR_NAME "ct"
		0x1c, 0x00, 0x02, 0x80, // NFTA_EXPR_DATA
		0x08, 0x00, 0x02, 0x00, 0x00, 0x00, 0x00, 0x13, // NFTA_CT_KEY 19
		0x08, 0x00, 0x01, 0x00, 0x00, 0x00, 0x00, 0x01, // NFTA_CT_DREG 1
		0x05, 0x00, 0x03, 0x00, 0x00, 0x00, 0x00, 0x00, // NFTA_CT_DIRECTION 0
	}
	var got []byte
	c := fakeConn(t, func(msgs []netlink.Message) error {
		got = msgs[0].Data
		return nil
	})
	tb := &nftables.Table{Family: nftables.TableFamilyIPv4, Name: "t"}
	ch := &nftables.Chain{Name: "c", Table: tb}
	r := &nftables.Rule{Table: tb, Chain: ch, Exprs: family{}.insideMatch(PostNAT).exprs}
	if err := addRule(c, r); err != nil {
		t.Fatal(err)
	}
	if err := c.Flush(); err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(got, want) {
		t.Errorf("rule %x\ndoes not hold %x", got, want)
	}
	if ct := r.Exprs[0].(*expr.Ct); ct.Key != ctKeySrcIP {
		t.Errorf("addRule changed the caller's rule: %#v", ct)
	}

	// A placeholder that is not where it is expected is an error.
	if err := applyPatches([]byte("abc"), []ctPatch{{placeholder: []byte("x"), want: []byte("y")}}); err == nil {
		t.Error("applyPatches accepted a missing placeholder")
	}
	data := []byte("axbxc")
	if err := applyPatches(data, []ctPatch{{[]byte("x"), []byte("y")}, {[]byte("x"), []byte("y")}}); err != nil || string(data) != "aybyc" {
		t.Errorf("applyPatches = %v, %q", err, data)
	}
}

// The mss chain takes MSSDelta off every MSS above the floor, as
// packet.LowerMSS does in user space, for every 16-bit value.
func TestMSSChainSubtracts(t *testing.T) {
	for _, min := range []uint16{minMSS4, minMSS6} {
		for v := 0; v <= 0xffff; v++ {
			want := uint16(v)
			switch {
			case v > int(min)+MSSDelta:
				want = uint16(v - MSSDelta)
			case v > int(min):
				want = min
			}
			if got := chainMSS(uint16(v), min); got != want {
				t.Fatalf("floor %d: MSS %d became %d, want %d", min, v, got, want)
			}
		}
	}
}
