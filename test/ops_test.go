package test

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/natreveal/natreveal/lab"
)

// scrape reads /metrics of the daemon in the NAT namespace and returns each
// sample line's value by its name and labels as printed.
func scrape(t *testing.T, l *lab.Lab, addr string) map[string]float64 {
	t.Helper()
	var c net.Conn
	if err := lab.Do(l.NAT, func() error {
		var err error
		c, err = net.DialTimeout("tcp", addr, 5*time.Second)
		return err
	}); err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	fmt.Fprintf(c, "GET /metrics HTTP/1.0\r\nHost: %s\r\n\r\n", addr)
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatal(err)
	}
	body, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("scrape: %s %v\n%s", resp.Status, err, body)
	}
	return samples(t, string(body))
}

// samples returns each sample line's value of a text exposition by its
// name and labels as printed.
func samples(t *testing.T, body string) map[string]float64 {
	t.Helper()
	out := map[string]float64{}
	for _, ln := range strings.Split(body, "\n") {
		if ln == "" || strings.HasPrefix(ln, "#") {
			continue
		}
		i := strings.LastIndexByte(ln, ' ')
		v, err := strconv.ParseFloat(ln[i+1:], 64)
		if err != nil {
			t.Fatalf("scrape: line %q: %v", ln, err)
		}
		out[ln[:i]] = v
	}
	return out
}

// The Prometheus endpoint counts what known traffic did, and JSON logs
// carry the start, stop and stats lines.
func TestMetricsAfterKnownTraffic(t *testing.T) {
	l := newLab(t)
	s := listen(t, l)
	d := startDaemon(t, l, "--inside", lab.InsidePrefix, "--methods", "tcp-option,ip-id", "--log-format", "json",
		"--metrics-listen", "127.0.0.1:9850")
	const n = 3
	for i := 0; i < n; i++ {
		connect(t, s, l.C1, fmt.Sprintf("m%d", i), 0)
	}
	m := scrape(t, l, "127.0.0.1:9850")
	// One per SYN (ip-id, tracked) or SYN-ACK (MSS) of each connection: a
	// retransmission counts again (see retx).
	for name, want := range map[string]float64{
		`natreveal_packets_total{method="ip-id",result="written"}`: n,
		`natreveal_flow_events_total{event="tracked"}`:             n,
		`natreveal_mss_lowered_total`:                              n,
	} {
		if got, ok := m[name]; !ok || !retx(got, want) {
			t.Errorf("%s = %v (present %v), want %v (up to %v with retransmissions)", name, got, ok, want, 2*want)
		}
	}
	for name, want := range map[string]float64{
		`natreveal_packets_total{method="ip-option",result="written"}`: 0,
		`natreveal_kernel_queue_dropped_total{queue="0"}`:              0,
		`natreveal_kernel_queue_user_dropped_total{queue="0"}`:         0,
		`natreveal_verdict_errors_total`:                               0,
		`natreveal_conntrack_lookups_total`:                            0,
	} {
		if got, ok := m[name]; !ok || got != want {
			t.Errorf("%s = %v (present %v), want %v", name, got, ok, want)
		}
	}
	if got := m[`natreveal_packets_total{method="tcp-option",result="written"}`]; got <= n {
		t.Errorf("tcp-option written %v, want more than the %d SYNs (RFC 7974 §4.2)", got, n)
	}
	// A packet is counted as read before its verdict is sent: a scrape may
	// fall between the two (a late segment), so wait until they agree.
	q, deadline := m, time.Now().Add(5*time.Second)
	for q["natreveal_queue_packets_total"] == 0 || q["natreveal_queue_packets_total"] != q["natreveal_verdicts_total"] {
		if time.Now().After(deadline) {
			t.Errorf("queued %v, verdicts %v: want equal and non-zero", q["natreveal_queue_packets_total"], q["natreveal_verdicts_total"])
			break
		}
		time.Sleep(20 * time.Millisecond)
		q = scrape(t, l, "127.0.0.1:9850")
	}
	if _, ok := m["natreveal_flows_tracked"]; !ok {
		t.Error("no natreveal_flows_tracked")
	}
	build := false
	for k, v := range m {
		if strings.HasPrefix(k, "natreveal_build_info{") && v == 1 {
			build = true
		}
	}
	if !build {
		t.Error("no natreveal_build_info")
	}
	st := d.stop(t)
	if float64(st["tcp-option/written"]) != m[`natreveal_packets_total{method="tcp-option",result="written"}`] {
		t.Errorf("stats %v disagree with metrics", st)
	}
	var msgs []string
	for _, ln := range strings.Split(strings.TrimSpace(d.Output()), "\n") {
		var rec map[string]any
		if err := json.Unmarshal([]byte(ln), &rec); err != nil {
			t.Errorf("log.format json: line %q: %v", ln, err)
			continue
		}
		msgs = append(msgs, fmt.Sprint(rec["msg"]))
	}
	joined := strings.Join(msgs, "\n")
	for _, want := range []string{"running: table ip natreveal", "stopped: table natreveal removed", "stats"} {
		if !strings.Contains(joined, want) {
			t.Errorf("no %q among the log messages:\n%s", want, joined)
		}
	}
}

// stream opens connections from both inside hosts, one every gap, until
// stop is closed; it returns the labels and the first error of each.
func stream(l *lab.Lab, prefix string, gap time.Duration, stop <-chan struct{}) func() ([]string, []error) {
	var mu sync.Mutex
	var labels []string
	var errs []error
	var wg sync.WaitGroup
	done := make(chan struct{})
	go func() {
		defer close(done)
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			case <-time.After(gap):
			}
			ns := l.C1
			if i%2 == 1 {
				ns = l.C2
			}
			label := fmt.Sprintf("%s%d", prefix, i)
			mu.Lock()
			labels = append(labels, label)
			mu.Unlock()
			wg.Add(1)
			go func() {
				defer wg.Done()
				if err := lab.Connect(ns, srvAddr, []byte(fmt.Sprintf("%-16s", label)), 10*time.Second); err != nil {
					mu.Lock()
					errs = append(errs, fmt.Errorf("%s: %w", label, err))
					mu.Unlock()
				}
			}()
		}
	}()
	return func() ([]string, []error) {
		<-done
		wg.Wait()
		return labels, errs
	}
}

// SIGHUP during a stream of connections loses none; the changed method
// (tcp-option -> ip-id) takes effect and the server sees it; a bad new
// configuration keeps the running one and says why.
func TestReloadUnderLoad(t *testing.T) {
	l := newLab(t)
	s := listen(t, l)
	before := ruleset(t, l)
	file := filepath.Join(t.TempDir(), "natreveal.yaml")
	write := func(body string) {
		if err := os.WriteFile(file, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("inside: [" + lab.InsidePrefix + "]\nmethods: [tcp-option]\n")
	d := startDaemon(t, l, "--config", file)
	if got := connect(t, s, l.C1, "pre-reload", 0); !got.HasOption || got.OptionID != 0x0002 || got.IPID == 0x0002 {
		t.Fatalf("before reload: server saw %+v, want the option and no IP-ID", got)
	}

	stop := make(chan struct{})
	wait := stream(l, "hup", 20*time.Millisecond, stop)
	time.Sleep(200 * time.Millisecond)
	write("inside: [" + lab.InsidePrefix + "]\nmethods: [ip-id]\n")
	for i := 1; i <= 3; i++ { // the last one applies what is already applied
		d.Signal(syscall.SIGHUP)
		d.waitLog(t, "reloaded: table ip natreveal", i)
		time.Sleep(150 * time.Millisecond)
	}
	close(stop)
	labels, errs := wait()
	for _, err := range errs {
		t.Error(err)
	}
	for _, lb := range labels {
		waitSeen(t, s, lb)
	}
	t.Logf("%d connections during 3 reloads", len(labels))
	if !strings.Contains(d.Output(), "methods [ip-id]") {
		t.Errorf("reload line does not say what is installed:\n%s", d.Output())
	}
	if got := connect(t, s, l.C2, "post-reload", 0); got.HasOption || got.IPID != 0x0003 || !got.Atomic {
		t.Errorf("after reload: server saw %+v, want IP-ID 0x0003 and no option", got)
	}
	rs := ruleset(t, l)
	if strings.Count(rs, "table ip natreveal {") != 1 {
		t.Errorf("after reload:\n%s", rs)
	}

	// A bad configuration: the running one stays, the log says why.
	write("inside: [" + lab.InsidePrefix + "]\nmethods: [carrier-pigeon]\n")
	d.Signal(syscall.SIGHUP)
	d.waitLog(t, "reload failed, keeping the running configuration", 1)
	if !strings.Contains(d.Output(), "carrier-pigeon") {
		t.Errorf("the failed reload does not say why:\n%s", d.Output())
	}
	if got := connect(t, s, l.C1, "after-bad", 0); got.IPID != 0x0002 {
		t.Errorf("after a bad reload: server saw %+v, want IP-ID 0x0002", got)
	}
	if after := ruleset(t, l); after != rs {
		t.Errorf("a bad reload changed the ruleset:\n%s\nwas:\n%s", after, rs)
	}
	// A change that needs a restart is refused the same way.
	write("inside: [" + lab.InsidePrefix + "]\nmethods: [ip-id]\nqueue:\n  num: 7\n")
	d.Signal(syscall.SIGHUP)
	d.waitLog(t, "reload failed, keeping the running configuration", 2)
	d.stop(t)
	if after := ruleset(t, l); after != before {
		t.Errorf("ruleset changed.\nbefore:\n%s\nafter:\n%s", before, after)
	}
}

// The daemon tells systemd (Type=notify) READY=1 once the rules and queues
// are live, RELOADING=1 and READY=1 around a reload, WATCHDOG=1 when
// WATCHDOG_USEC is set, and STOPPING=1 on SIGTERM.
func TestSdNotify(t *testing.T) {
	l := newLab(t)
	sock := filepath.Join(t.TempDir(), "notify")
	c, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: sock, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	msgs := make(chan string, 100)
	go func() {
		buf := make([]byte, 4096)
		for {
			n, _, err := c.ReadFrom(buf)
			if err != nil {
				close(msgs)
				return
			}
			msgs <- string(buf[:n])
		}
	}()
	expect := func(want string) {
		t.Helper()
		timeout := time.After(10 * time.Second)
		for {
			select {
			case m, ok := <-msgs:
				if !ok {
					t.Fatalf("socket closed before %q", want)
				}
				if strings.HasPrefix(m, want) {
					return
				}
			case <-timeout:
				t.Fatalf("no %q from the daemon", want)
			}
		}
	}
	d := startDaemonEnv(t, l, []string{"NOTIFY_SOCKET=" + sock, "WATCHDOG_USEC=200000"},
		"--inside", lab.InsidePrefix, "--methods", "tcp-option")
	expect("READY=1")
	if !strings.Contains(ruleset(t, l), "table ip natreveal") {
		t.Error("READY=1 before the ruleset was installed")
	}
	expect("WATCHDOG=1")
	d.Signal(syscall.SIGHUP)
	expect("RELOADING=1")
	expect("READY=1")
	d.stop(t)
	expect("STOPPING=1")
}
