package reveal

import (
	"bytes"
	"encoding/json"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/natreveal/natreveal/method/destopt"
	"github.com/natreveal/natreveal/method/ipoption"
)

var when = time.Date(2026, 1, 2, 15, 4, 5, 1, time.UTC)

func TestRecordFormats(t *testing.T) {
	tcp := Flow{Src: netip.MustParseAddr("192.0.2.1"), Dst: netip.MustParseAddr("198.51.100.1"), Proto: ProtoTCP, SrcPort: 40000, DstPort: 80, L4Off: 20}
	udp6 := Flow{Src: netip.MustParseAddr("2001:db8::1"), Proto: ProtoUDP, SrcPort: 5353, DstPort: 443, L4Off: 48}
	hip := Flow{Src: netip.MustParseAddr("2001:db8::1"), Proto: ProtoHIP, L4Off: 40}
	for _, c := range []struct {
		r          Record
		json, text string
	}{
		{
			NewRecord(when, tcp, Found{Method: TCPOption, HostID: 2, Len: 2}),
			`{"time":"2026-01-02T15:04:05.000000001Z","src":"192.0.2.1:40000","dst_port":80,"proto":"tcp","method":"tcp-option","host_id":"0x0002"}`,
			`2026-01-02T15:04:05.000000001Z tcp 192.0.2.1:40000 -> :80 tcp-option 0x0002`,
		},
		{
			NewRecord(when.In(time.FixedZone("X", 3600)), tcp, Found{Method: IPOption, HostID: 0xdeadbeef, Len: 4}),
			`{"time":"2026-01-02T15:04:05.000000001Z","src":"192.0.2.1:40000","dst_port":80,"proto":"tcp","method":"ip-option","host_id":"0xdeadbeef"}`,
			`2026-01-02T15:04:05.000000001Z tcp 192.0.2.1:40000 -> :80 ip-option 0xdeadbeef`,
		},
		{
			NewRecord(when, udp6, Found{Method: DestOpt, HostID: 0x12, Len: 4}),
			`{"time":"2026-01-02T15:04:05.000000001Z","src":"[2001:db8::1]:5353","dst_port":443,"proto":"udp","method":"dest-opt","host_id":"0x00000012"}`,
			`2026-01-02T15:04:05.000000001Z udp [2001:db8::1]:5353 -> :443 dest-opt 0x00000012`,
		},
		{
			NewRecord(when, hip, Found{Method: HIP, Len: 16, HIT: testHIT}),
			`{"time":"2026-01-02T15:04:05.000000001Z","src":"2001:db8::1","proto":"hip","method":"hip","host_id":"2001:2a::1234"}`,
			`2026-01-02T15:04:05.000000001Z hip 2001:db8::1 hip 2001:2a::1234`,
		},
		{
			Record{Time: when, Src: netip.MustParseAddrPort("192.0.2.1:40000"), DstPort: 8080, Proto: "tcp"},
			`{"time":"2026-01-02T15:04:05.000000001Z","src":"192.0.2.1:40000","dst_port":8080,"proto":"tcp"}`,
			`2026-01-02T15:04:05.000000001Z tcp 192.0.2.1:40000 -> :8080 none`,
		},
	} {
		if got := string(FormatJSON.AppendLine(nil, c.r)); got != c.json+"\n" {
			t.Errorf("json:\n got %s\nwant %s", got, c.json)
		}
		if got := string(FormatText.AppendLine(nil, c.r)); got != c.text+"\n" {
			t.Errorf("text:\n got %s\nwant %s", got, c.text)
		}
		var back Record
		if err := json.Unmarshal([]byte(c.json), &back); err != nil {
			t.Fatal(err)
		}
		if !back.Time.Equal(c.r.Time) || back.Src != c.r.Src || back.DstPort != c.r.DstPort || back.Proto != c.r.Proto || back.Method != c.r.Method || back.HostID != c.r.HostID {
			t.Errorf("round trip: %+v, want %+v", back, c.r)
		}
	}
}

func TestParseMethods(t *testing.T) {
	ms, err := ParseMethods([]string{"tcp-option, IP-ID", "tcp-option"})
	if err != nil || len(ms) != 2 || ms[0] != TCPOption || ms[1] != IPID {
		t.Errorf("got %v, %v", ms, err)
	}
	for _, bad := range [][]string{nil, {""}, {"carrier-pigeon"}, {"tcp-option", "nope"}} {
		if _, err := ParseMethods(bad); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
	for _, m := range Methods {
		if _, err := ParseMethods([]string{string(m)}); err != nil {
			t.Errorf("%s: %v", m, err)
		}
	}
}

func TestParseOptionType(t *testing.T) {
	for _, c := range []struct {
		s    string
		want byte
		ok   bool
	}{{"30", 30, true}, {"0x9e", 158, true}, {"222", 222, true}, {"31", 0, false}, {"256", 0, false}, {"x", 0, false}} {
		got, err := ParseOptionType(c.s, ipoption.Types)
		if (err == nil) != c.ok || got != c.want {
			t.Errorf("%q: %d, %v", c.s, got, err)
		}
	}
	if v, err := ParseOptionType("0x1E", destopt.Types); err != nil || v != 0x1e {
		t.Errorf("0x1E: %d, %v", v, err)
	}
	if _, err := ParseOptionType("31", destopt.Types); err == nil || !strings.Contains(err.Error(), "0x1E") {
		t.Errorf("dest-opt 31: %v", err)
	}
	// The lists are the values the encoders accept.
	for v := range 256 {
		in := func(l []byte) bool { return bytes.IndexByte(l, byte(v)) >= 0 }
		if in(ipoption.Types) != ipoption.IPOptionTypeValid(byte(v)) || in(destopt.Types) != destopt.IsDestOptType(byte(v)) {
			t.Errorf("type %d: lists and encoders disagree", v)
		}
	}
	if _, err := ParseFormat("xml"); err == nil {
		t.Error("format xml accepted")
	}
}
