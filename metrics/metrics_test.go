package metrics

import (
	"bytes"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/natreveal/natreveal/handler"
)

// gatherer reads what expose writes with the Prometheus text parser, as a
// Prometheus server would, so the client library's test helpers check it.
// The Prometheus client is a test dependency only: the router binary does
// not link it.
func gatherer(expose func(io.Writer) error) prometheus.Gatherer {
	return prometheus.GathererFunc(func() ([]*dto.MetricFamily, error) {
		var b bytes.Buffer
		if err := expose(&b); err != nil {
			return nil, err
		}
		p := expfmt.NewTextParser(model.UTF8Validation)
		byName, err := p.TextToMetricFamilies(&b)
		if err != nil {
			return nil, err
		}
		var out []*dto.MetricFamily
		for _, mf := range byName {
			out = append(out, mf)
		}
		sort.Slice(out, func(i, j int) bool { return out[i].GetName() < out[j].GetName() })
		return out, nil
	})
}

// Two queues as the kernel prints them (nfnetlink_queue.c seq_show).
const procQueues = `    0 4294963168     0 2 65531     7     3       42  1
    1 123456     5 2 65531     0     0        9  1
`

func TestParseQueues(t *testing.T) {
	qs, err := ParseQueues(strings.NewReader(procQueues))
	if err != nil {
		t.Fatal(err)
	}
	if len(qs) != 2 || qs[0].Num != 0 || qs[0].Dropped != 7 || qs[0].UserDropped != 3 || qs[1].Num != 1 || qs[1].Total != 5 {
		t.Fatalf("parsed %+v", qs)
	}
	if _, err := ParseQueues(strings.NewReader("0 1 2\n")); err == nil {
		t.Error("short line accepted")
	}
	if _, err := ParseQueues(strings.NewReader("x 1 2 3 4 5 6 7 1\n")); err == nil {
		t.Error("bad number accepted")
	}
}

func TestCollector(t *testing.T) {
	dir := t.TempDir()
	qf := filepath.Join(dir, "q")
	if err := os.WriteFile(qf, []byte("    3  12345     0 2 65531    11     2       42  1\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	st := &handler.Stats{}
	refreshed := 0
	c := gatherer(NewCollector(Source{
		Stats: func() *handler.Stats { return st }, Flows: func() int { return 4 },
		Lookups: func() uint64 { return 9 }, QueueFile: qf, Version: "v1.2.3",
		// The ruleset's counters (tracked flows ended, MSS lowered) are
		// read at scrape time.
		Refresh: func() { refreshed++; st.SetRuleset(3, 5) },
	}).Expose)
	if err := testutil.GatherAndCompare(c, strings.NewReader(`
# HELP natreveal_mss_lowered_total SYN-ACKs whose MSS was lowered to make room for the option (by the ruleset for tracked flows).
# TYPE natreveal_mss_lowered_total counter
natreveal_mss_lowered_total 5
`), "natreveal_mss_lowered_total"); err != nil || refreshed == 0 {
		t.Errorf("ruleset counters: %v (refreshed %d times)", err, refreshed)
	}
	if n, err := testutil.GatherAndCount(c, "natreveal_ip_id_kernel_events_total"); err != nil || n != 4 {
		t.Errorf("ip-id kernel events: %d series, want 4 (%v)", n, err)
	}
	want := `
# HELP natreveal_flows_tracked UDP flows whose first datagrams the daemon follows right now (the ruleset follows TCP flows).
# TYPE natreveal_flows_tracked gauge
natreveal_flows_tracked 4
# HELP natreveal_kernel_queue_dropped_total Packets the kernel dropped because the queue was full (with queue.fail_open it accepts them unmarked instead, and counts nothing).
# TYPE natreveal_kernel_queue_dropped_total counter
natreveal_kernel_queue_dropped_total{queue="3"} 11
# HELP natreveal_conntrack_lookups_total Conntrack lookups of the post-NAT path.
# TYPE natreveal_conntrack_lookups_total counter
natreveal_conntrack_lookups_total 9
`
	if err := testutil.GatherAndCompare(c, strings.NewReader(want),
		"natreveal_flows_tracked", "natreveal_kernel_queue_dropped_total", "natreveal_conntrack_lookups_total"); err != nil {
		t.Error(err)
	}
	if err := testutil.GatherAndCompare(c, strings.NewReader(`
# HELP natreveal_packets_total Packets an encoder looked at, by method and result (written: marked; any other result: passed unchanged and why).
# TYPE natreveal_packets_total counter
`+packetsZero()), "natreveal_packets_total"); err != nil {
		t.Error(err)
	}
	if n, err := testutil.GatherAndCount(gatherer(NewRegistry(Source{QueueFile: "-", Version: "x"}).Expose), "natreveal_build_info"); err != nil || n != 1 {
		t.Errorf("build_info: %d series, %v", n, err)
	}
	if problems, err := testutil.GatherAndLint(c); err != nil || len(problems) > 0 {
		t.Errorf("lint: %v %v", problems, err)
	}
}

func packetsZero() string {
	var b strings.Builder
	for _, m := range []string{"dest-opt", "ip-id", "ip-option", "tcp-option"} {
		for _, r := range []string{"bad-header", "fragment", "no-buffer-room", "no-option-space", "not-atomic", "not-tcp", "over-mtu", "truncated", "written"} {
			b.WriteString(`natreveal_packets_total{method="` + m + `",result="` + r + `"} 0` + "\n")
		}
	}
	return b.String()
}

func TestServer(t *testing.T) {
	s, err := Listen("127.0.0.1:0", NewRegistry(Source{QueueFile: "-", Version: "v9"}))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	resp, err := http.Get("http://" + s.Addr().String() + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if !strings.Contains(string(body), `natreveal_build_info{goversion="`) || !strings.Contains(string(body), `version="v9"`) {
		t.Errorf("no build info in:\n%s", body)
	}
}

// A whole scrape parses as Prometheus reads it, and carries the runtime
// and process series the leak drills read.
func TestRegistryParses(t *testing.T) {
	mfs, err := gatherer(NewRegistry(Source{Stats: func() *handler.Stats { return &handler.Stats{} }, QueueFile: "-", Version: "v1"}).Expose).Gather()
	if err != nil {
		t.Fatal(err)
	}
	names := map[string]bool{}
	for _, mf := range mfs {
		names[mf.GetName()] = true
	}
	for _, n := range []string{"go_goroutines", "process_open_fds", "natreveal_build_info", "natreveal_packets_total"} {
		if !names[n] {
			t.Errorf("no %s in the scrape", n)
		}
	}
	if _, err := gatherer(NewRegistry(Source{QueueFile: filepath.Join(t.TempDir(), "none")}).Expose).Gather(); err == nil {
		t.Error("an unreadable queue file did not fail the scrape")
	}
}

// Label values and help text are escaped as the text format 0.0.4 says.
func TestExpositionEscapes(t *testing.T) {
	f := gaugeFamily("x_info", "a \\ b\nc", "v")
	var e exposition
	e.add(f, 1, "q\"\\\n")
	e.add(counterFamily("a_total", "A."), 12345678)
	var b bytes.Buffer
	if err := e.write(&b); err != nil {
		t.Fatal(err)
	}
	want := `# HELP a_total A.
# TYPE a_total counter
a_total 1.2345678e+07
# HELP x_info a \\ b\nc
# TYPE x_info gauge
x_info{v="q\"\\\n"} 1
`
	if b.String() != want {
		t.Errorf("got\n%s\nwant\n%s", b.String(), want)
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	mfs, err := p.TextToMetricFamilies(strings.NewReader(b.String()))
	if err != nil {
		t.Fatal(err)
	}
	if got := mfs["x_info"].GetMetric()[0].GetLabel()[0].GetValue(); got != "q\"\\\n" {
		t.Errorf("label value read back as %q", got)
	}
	if got := mfs["x_info"].GetHelp(); got != "a \\ b\nc" {
		t.Errorf("help read back as %q", got)
	}
}

// Every family's label names are sorted, as Prometheus clients print them.
func TestFamilyLabelsSorted(t *testing.T) {
	fs := []*family{descPackets, descQueued, descVerdicts, descModified, descUnchanged, descRefused,
		descVerdictErrors, descFlowEvents, descFlows, descMSS, descCtLookups, descCtMisses,
		descCtErrors, descKernelDropped, descUserDropped, descBuild}
	for _, ev := range events {
		fs = append(fs, ev.f)
	}
	for _, f := range fs {
		if !sort.StringsAreSorted(f.Labels) {
			t.Errorf("%s: labels %v not sorted", f.Name, f.Labels)
		}
	}
}
