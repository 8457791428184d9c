package mapping

import (
	"errors"
	"net/netip"
	"strconv"
	"strings"
	"testing"
	"time"
)

const t0 = "2026-06-01T09:00:0"

func logOf(t *testing.T, node string, lines ...string) []Record {
	t.Helper()
	recs, err := Read(strings.NewReader(strings.Join(lines, "\n")+"\n"), node)
	if err != nil {
		t.Fatal(err)
	}
	return recs
}

func at(s string) time.Time {
	v, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		panic(err)
	}
	return v
}

func line(sec int, ev, inside string, iport int, public string, pport int) string {
	return `{"time":"` + t0 + string(rune('0'+sec)) + `Z","event":"` + ev + `","proto":"tcp","inside":"` + inside +
		`","inside_port":` + itoa(iport) + `,"host_id":"0x0002","public":"` + public + `","public_port":` + itoa(pport) + `}`
}

func itoa(n int) string { return strconv.Itoa(n) }

// A flow opened on node a, taken over by node b (conntrackd commits it
// there: b logs "new"), a killed without a destroy, ended on b: one binding
// from a's start to b's end, both nodes named.
func TestMergeFailover(t *testing.T) {
	a := logOf(t, "a", line(1, "new", "100.64.0.2", 40000, "192.0.2.1", 1024))
	b := logOf(t, "b",
		line(4, "new", "100.64.0.2", 40000, "192.0.2.1", 1024),
		line(7, "destroy", "100.64.0.2", 40000, "192.0.2.1", 1024))
	bs := Merge(a, b)
	if len(bs) != 1 {
		t.Fatalf("%d bindings, want 1: %+v", len(bs), bs)
	}
	got := bs[0]
	if !got.Start.Equal(at(t0+"1Z")) || !got.End.Equal(at(t0+"7Z")) || strings.Join(got.Nodes, ",") != "a,b" {
		t.Errorf("binding %+v", got)
	}
	pub := netip.MustParseAddrPort("192.0.2.1:1024")
	for sec, want := range map[int]int{0: 0, 1: 1, 3: 1, 5: 1, 7: 1, 8: 0} {
		if n := len(Lookup(bs, "tcp", pub, at(t0+string(rune('0'+sec))+"Z"))); n != want {
			t.Errorf("at +%ds: %d answers, want %d", sec, n, want)
		}
	}
	if n := len(Lookup(bs, "udp", pub, at(t0+"3Z"))); n != 0 {
		t.Errorf("udp: %d answers", n)
	}
}

// After a failback the node that lost the flow expires its copy: its
// destroy does not end the binding its peer still carries.
func TestMergeStaleDestroy(t *testing.T) {
	a := logOf(t, "a",
		line(1, "new", "100.64.0.2", 40000, "192.0.2.1", 1024),
		line(5, "destroy", "100.64.0.2", 40000, "192.0.2.1", 1024))
	b := logOf(t, "b",
		line(3, "new", "100.64.0.2", 40000, "192.0.2.1", 1024),
		line(8, "destroy", "100.64.0.2", 40000, "192.0.2.1", 1024))
	bs := Merge(b, a)
	if len(bs) != 1 || !bs[0].End.Equal(at(t0+"8Z")) {
		t.Fatalf("bindings %+v, want one ending at +8s", bs)
	}
}

// The same public port reused later by another host, and a log that begins
// mid-flow (a destroy without its new): each answer names one host.
func TestMergeReuseAndOrphan(t *testing.T) {
	a := logOf(t, "a",
		line(0, "destroy", "100.64.0.9", 1, "192.0.2.1", 2000),
		line(1, "new", "100.64.0.2", 40000, "192.0.2.1", 2000),
		line(2, "destroy", "100.64.0.2", 40000, "192.0.2.1", 2000))
	b := logOf(t, "b",
		line(3, "new", "100.64.0.3", 50000, "192.0.2.1", 2000),
		line(5, "destroy", "100.64.0.3", 50000, "192.0.2.1", 2000))
	bs := Merge(a, b)
	if len(bs) != 3 || !bs[0].Start.IsZero() {
		t.Fatalf("bindings %+v", bs)
	}
	pub := netip.MustParseAddrPort("192.0.2.1:2000")
	for sec, want := range map[int]string{0: "100.64.0.9", 1: "100.64.0.2", 4: "100.64.0.3", 6: ""} {
		got := strings.Join(Hosts(Lookup(bs, "tcp", pub, at(t0+string(rune('0'+sec))+"Z"))), ",")
		if got != want {
			t.Errorf("at +%ds: %q, want %q", sec, got, want)
		}
	}
}

// Two hosts on one public port at once (different destinations, no dst in
// the log): both are answered.
func TestLookupAmbiguous(t *testing.T) {
	a := logOf(t, "a",
		line(1, "new", "100.64.0.2", 40000, "192.0.2.1", 3000),
		line(2, "new", "100.64.0.3", 40001, "192.0.2.1", 3000))
	got := Hosts(Lookup(Merge(a), "tcp", netip.MustParseAddrPort("192.0.2.1:3000"), at(t0+"3Z")))
	if strings.Join(got, ",") != "100.64.0.2,100.64.0.3" {
		t.Errorf("hosts %v", got)
	}
}

func TestReadRejects(t *testing.T) {
	for _, in := range []string{
		`{"time":"x"}`,
		`{"time":"2026-06-01T09:00:00Z","event":"update","public":"192.0.2.1"}`,
		`{"time":"2026-06-01T09:00:00Z","event":"new","public":"nope"}`,
	} {
		var le *LineError
		if _, err := Read(strings.NewReader(in), "a"); !errors.As(err, &le) || le.Line != 1 || !strings.HasPrefix(err.Error(), "mapping log a line 1: ") {
			t.Errorf("%s: %v, want a *LineError for line 1", in, err)
		}
	}
	// A line too long for the reader names its line too.
	long := line(1, "new", "100.64.0.2", 40000, "192.0.2.1", 3000) + "\n\n" + strings.Repeat("x", 2<<20)
	var le *LineError
	if _, err := Read(strings.NewReader(long), "a"); !errors.As(err, &le) || le.Line != 3 {
		t.Errorf("a long line: %v, want a *LineError for line 3", err)
	}
}

// Open and Last: a binding without a destroy record is open; Last is the
// latest record of all logs.
func TestOpenLast(t *testing.T) {
	a := logOf(t, "a", line(0, "new", "100.64.0.2", 40000, "192.0.2.1", 3000), line(1, "new", "100.64.0.3", 40000, "192.0.2.1", 3001),
		line(2, "destroy", "100.64.0.3", 40000, "192.0.2.1", 3001))
	b := logOf(t, "b", line(3, "new", "100.64.0.4", 40000, "192.0.2.1", 3002))
	bs := Merge(a, b)
	if len(bs) != 3 || !bs[0].Open() || bs[1].Open() || !bs[2].Open() {
		t.Fatalf("bindings %+v", bs)
	}
	if got := Last(a, b); !got.Equal(at(t0 + "3Z")) {
		t.Errorf("Last = %v", got)
	}
	if !Last().IsZero() {
		t.Error("Last of no logs is not zero")
	}
}
