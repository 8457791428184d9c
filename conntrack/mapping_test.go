package conntrack

import (
	"bytes"
	"net/netip"
	"testing"
	"time"

	ct "github.com/ti-mo/conntrack"
)

func TestMappingRecord(t *testing.T) {
	f := ct.NewFlow(6, 0, netip.MustParseAddr("100.64.0.2"), netip.MustParseAddr("198.51.100.1"), 40000, 80, 0, 0)
	f.TupleReply.IP.SourceAddress = netip.MustParseAddr("198.51.100.1")
	f.TupleReply.IP.DestinationAddress = netip.MustParseAddr("192.0.2.1")
	f.TupleReply.Proto.SourcePort, f.TupleReply.Proto.DestinationPort = 80, 1280
	now := time.Date(2026, 11, 26, 11, 0, 0, 5, time.UTC)
	m, ok := mappingOf(&f, "new", now)
	if !ok {
		t.Fatal("translated flow not reported")
	}
	var b bytes.Buffer
	w := NewMappingWriter(&b)
	w.Write(m.Record("0x0002", false))
	w.Write(m.Record("", true))
	want := `{"time":"2026-11-26T11:00:00.000000005Z","event":"new","proto":"tcp","inside":"100.64.0.2","inside_port":40000,"host_id":"0x0002","public":"192.0.2.1","public_port":1280}
{"time":"2026-11-26T11:00:00.000000005Z","event":"new","proto":"tcp","inside":"100.64.0.2","inside_port":40000,"public":"192.0.2.1","public_port":1280,"dst":"198.51.100.1:80"}
`
	if b.String() != want {
		t.Errorf("got\n%s\nwant\n%s", b.String(), want)
	}
	// Not translated: no mapping.
	g := ct.NewFlow(17, 0, netip.MustParseAddr("192.0.2.1"), netip.MustParseAddr("198.51.100.1"), 5000, 53, 0, 0)
	g.TupleReply.IP.DestinationAddress = netip.MustParseAddr("192.0.2.1")
	g.TupleReply.Proto.DestinationPort = 5000
	if m, ok := mappingOf(&g, "new", now); ok {
		t.Errorf("untranslated flow reported: %+v", m)
	}
}
