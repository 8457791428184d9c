package observe

import (
	"context"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/google/nftables"
	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"

	"github.com/natreveal/natreveal/reveal"
)

func TestBuildText(t *testing.T) {
	for _, c := range []struct {
		name string
		cfg  Config
		want []string // the chain's rules
		sets int
	}{
		{"defaults", Config{}, []string{
			"tcp flags syn / syn,ack log group 33 snaplen 256",
			"meta l4proto hip log group 33 snaplen 256",
		}, 0},
		{"ports, udp", Config{Group: 5, Snaplen: 128, TCPPorts: []uint16{443, 80}, UDPPorts: []uint16{443},
			Decoder: reveal.Decoder{Methods: []reveal.Method{reveal.IPID}}}, []string{
			"tcp dport @tcp_ports tcp flags syn / syn,ack log group 5 snaplen 128",
			"udp dport @udp_ports ct state new log group 5 snaplen 128",
		}, 2},
		{"tcp-option has no udp rule", Config{UDPPorts: []uint16{53}, Decoder: reveal.Decoder{Methods: []reveal.Method{reveal.TCPOption}}}, []string{
			"tcp flags syn / syn,ack log group 33 snaplen 256",
		}, 0},
		{"hip only", Config{TCPPorts: []uint16{1}, Decoder: reveal.Decoder{Methods: []reveal.Method{reveal.HIP}}}, []string{
			"meta l4proto hip log group 33 snaplen 256",
		}, 0},
	} {
		t.Run(c.name, func(t *testing.T) {
			rs := Build(c.cfg)
			if strings.Join(rs.text, "\n") != strings.Join(c.want, "\n") {
				t.Errorf("rules:\n%s\nwant:\n%s", strings.Join(rs.text, "\n"), strings.Join(c.want, "\n"))
			}
			if len(rs.Rules) != len(c.want) || len(rs.Sets) != c.sets {
				t.Errorf("%d rules, %d sets", len(rs.Rules), len(rs.Sets))
			}
			if rs.Chain.Hooknum == nil || *rs.Chain.Hooknum != *nftablesInput() || *rs.Chain.Priority != -300 {
				t.Errorf("chain hook %v priority %v", rs.Chain.Hooknum, rs.Chain.Priority)
			}
		})
	}
	text := Build(Config{TCPPorts: []uint16{8080, 80, 8080}}).String()
	if !strings.Contains(text, "elements = { 80, 8080 }") || !strings.HasPrefix(text, "table inet natreveal_observe {") {
		t.Errorf("text:\n%s", text)
	}
}

func TestRunNothingToObserve(t *testing.T) {
	// Refused before anything is installed or opened.
	_, err := Run(context.Background(), Config{Decoder: reveal.Decoder{Methods: []reveal.Method{}}}, nil)
	if err == nil || !strings.Contains(err.Error(), "nothing to observe") {
		t.Errorf("no methods: %v", err)
	}
}

var (
	src4 = net.IP{192, 0, 2, 1}
	dst4 = net.IP{198, 51, 100, 1}
)

func packet(t *testing.T, opt bool, l4 gopacket.SerializableLayer) []byte {
	t.Helper()
	ip := &layers.IPv4{Version: 4, TTL: 64, Id: 0x4242, Flags: layers.IPv4DontFragment, SrcIP: src4, DstIP: dst4}
	if opt {
		ip.Options = []layers.IPv4Option{{OptionType: 30, OptionLength: 4, OptionData: []byte{0x12, 0x34}}}
	}
	switch l := l4.(type) {
	case *layers.TCP:
		ip.Protocol = layers.IPProtocolTCP
		l.SetNetworkLayerForChecksum(ip)
	case *layers.UDP:
		ip.Protocol = layers.IPProtocolUDP
		l.SetNetworkLayerForChecksum(ip)
	}
	buf := gopacket.NewSerializeBuffer()
	if err := gopacket.SerializeLayers(buf, gopacket.SerializeOptions{FixLengths: true, ComputeChecksums: true}, ip, l4, gopacket.Payload(make([]byte, 500))); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()[:DefaultSnaplen] // as NFLOG copies it
}

func TestHandler(t *testing.T) {
	var got []string
	h := &handler{
		cfg:  Config{Decoder: reveal.Decoder{Methods: []reveal.Method{reveal.IPOption, reveal.IPID}}, ReportNone: true}.withDefaults(),
		emit: func(r reveal.Record) { got = append(got, r.String()) },
		udp:  newFlowSet(2, 30*time.Second),
	}
	t0 := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	synOpt := packet(t, true, &layers.TCP{SrcPort: 40000, DstPort: 80, SYN: true})
	synAck := packet(t, true, &layers.TCP{SrcPort: 40000, DstPort: 80, SYN: true, ACK: true})
	udp := func(sport uint16) []byte {
		return packet(t, true, &layers.UDP{SrcPort: layers.UDPPort(sport), DstPort: 53})
	}
	plain := packet(t, false, &layers.TCP{SrcPort: 40001, DstPort: 80, SYN: true})

	h.handle(t0, synOpt)
	h.handle(t0, synAck) // not an opening: ignored
	h.handle(t0, udp(1000))
	h.handle(t0.Add(time.Second), udp(1000))    // a repeat
	h.handle(t0.Add(30*time.Second), udp(1000)) // a repeat: seen 29s ago
	h.handle(t0.Add(61*time.Second), udp(1000)) // silent for 31s: reported again
	h.handle(t0, plain)
	h.handle(t0, []byte{0x45, 0})
	want := []string{
		"2026-01-02T03:04:05Z tcp 192.0.2.1:40000 -> :80 ip-option 0x1234",
		"2026-01-02T03:04:05Z tcp 192.0.2.1:40000 -> :80 ip-id 0x4242",
		"2026-01-02T03:04:05Z udp 192.0.2.1:1000 -> :53 ip-option 0x1234",
		"2026-01-02T03:04:05Z udp 192.0.2.1:1000 -> :53 ip-id 0x4242",
		"2026-01-02T03:05:06Z udp 192.0.2.1:1000 -> :53 ip-option 0x1234",
		"2026-01-02T03:05:06Z udp 192.0.2.1:1000 -> :53 ip-id 0x4242",
		"2026-01-02T03:04:05Z tcp 192.0.2.1:40001 -> :80 ip-id 0x4242",
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("records:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	st := h.stop()
	if st.Packets != 8 || st.Records != 7 || st.Repeats != 2 || st.Unparsed != 1 {
		t.Errorf("stats %+v", st)
	}

	// ReportNone with nothing found; and a full flow set that forgets.
	h = &handler{cfg: Config{Decoder: reveal.Decoder{Methods: []reveal.Method{reveal.TCPOption}}, ReportNone: true}.withDefaults(),
		emit: func(r reveal.Record) { got = append(got, r.String()) }, udp: newFlowSet(2, 30*time.Second)}
	got = nil
	h.handle(t0, plain)
	if want := "2026-01-02T03:04:05Z tcp 192.0.2.1:40001 -> :80 none"; len(got) != 1 || got[0] != want {
		t.Errorf("ReportNone: %q, want %q", got, want)
	}
	for p := range uint16(10) {
		if !h.udp.first(t0, flowKey{srcPort: p}) {
			t.Errorf("flow %d not first", p)
		}
		if len(h.udp.seen) > 3 {
			t.Fatalf("flow set grew to %d", len(h.udp.seen))
		}
	}
}

func nftablesInput() *nftables.ChainHook { return nftables.ChainHookInput }
