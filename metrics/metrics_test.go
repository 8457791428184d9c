package metrics

import (
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/natreveal/natreveal/handler"
)

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
	c := NewCollector(Source{
		Stats: func() *handler.Stats { return st }, Flows: func() int { return 4 },
		Lookups: func() uint64 { return 9 }, QueueFile: qf, Version: "v1.2.3",
		// The ruleset's counters (tracked flows ended, MSS lowered) are
		// read at scrape time.
		Refresh: func() { refreshed++; st.SetRuleset(3, 5) },
	})
	if err := testutil.CollectAndCompare(c, strings.NewReader(`
# HELP natreveal_mss_lowered_total SYN-ACKs whose MSS was lowered to make room for the option (by the ruleset for tracked flows).
# TYPE natreveal_mss_lowered_total counter
natreveal_mss_lowered_total 5
`), "natreveal_mss_lowered_total"); err != nil || refreshed == 0 {
		t.Errorf("ruleset counters: %v (refreshed %d times)", err, refreshed)
	}
	if n := testutil.CollectAndCount(c, "natreveal_ip_id_kernel_events_total"); n != 4 {
		t.Errorf("ip-id kernel events: %d series, want 4", n)
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
	if err := testutil.CollectAndCompare(c, strings.NewReader(want),
		"natreveal_flows_tracked", "natreveal_kernel_queue_dropped_total", "natreveal_conntrack_lookups_total"); err != nil {
		t.Error(err)
	}
	if err := testutil.CollectAndCompare(c, strings.NewReader(`
# HELP natreveal_packets_total Packets an encoder looked at, by method and result (written: marked; any other result: passed unchanged and why).
# TYPE natreveal_packets_total counter
`+packetsZero()), "natreveal_packets_total"); err != nil {
		t.Error(err)
	}
	if n, err := testutil.GatherAndCount(NewRegistry(Source{QueueFile: "-", Version: "x"}), "natreveal_build_info"); err != nil || n != 1 {
		t.Errorf("build_info: %d series, %v", n, err)
	}
	if problems, err := testutil.CollectAndLint(c); err != nil || len(problems) > 0 {
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
