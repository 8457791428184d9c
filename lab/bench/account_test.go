package bench

import (
	"os"
	"path/filepath"
	"testing"
)

func write(t *testing.T, text string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "f")
	if err := os.WriteFile(p, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestDropParsers(t *testing.T) {
	ct := write(t, "entries  clashres found new invalid ignore delete chainlength insert insert_failed drop early_drop icmp_error  expect_new expect_create expect_delete search_restart\n"+
		"00000010  00000000 00000000 00000000 00000005 00000000 00000000 00000000 00000000 00000001 00000002 00000003 00000000  00000000 00000000 00000000 00000000\n"+
		"00000010  00000000 00000000 00000000 00000000 00000000 00000000 00000000 00000000 00000000 0000000a 00000000 00000000  00000000 00000000 00000000 00000000\n")
	if n, err := conntrackDrops(ct); err != nil || n != 1+2+3+10 {
		t.Errorf("conntrackDrops = %d, %v; want 16 (invalid is not a drop)", n, err)
	}
	if n, err := conntrackDrops(filepath.Join(t.TempDir(), "absent")); err != nil || n != 0 {
		t.Errorf("conntrackDrops(absent) = %d, %v", n, err)
	}
	dev := write(t, "Inter-|   Receive                                                |  Transmit\n"+
		" face |bytes    packets errs drop fifo frame compressed multicast|bytes    packets errs drop fifo colls carrier compressed\n"+
		"    lo:     100       1    0    0    0     0          0         0      100       1    0    0    0     0       0          0\n"+
		"  veth0:   5000      50    1    2    0     0          0         0     6000      60    3    4    0     0       0          0\n")
	if n, err := linkDrops(dev); err != nil || n != 10 {
		t.Errorf("linkDrops = %d, %v; want 10", n, err)
	}
	sn := write(t, "0000abcd 00000002 00000000 00000000\n00001000 00000010 00000000 00000000\n")
	if n, err := softnetDrops(sn); err != nil || n != 0x12 {
		t.Errorf("softnetDrops = %d, %v; want 18", n, err)
	}
}

func TestSYNAccount(t *testing.T) {
	a := synAccount{Sent: 10000, Received: 9000, Drops: map[string]uint64{dropQueueFull: 990}}
	a.balance()
	if a.Unaccounted != 10 || !a.unaccountedOK() {
		t.Errorf("unaccounted %d ok %v; want 10 within a thousandth", a.Unaccounted, a.unaccountedOK())
	}
	a.Drops[dropQueueFull] = 900
	a.balance()
	if a.Unaccounted != 100 || a.unaccountedOK() {
		t.Errorf("unaccounted %d ok %v; want 100, flagged", a.Unaccounted, a.unaccountedOK())
	}
}

func TestGoals(t *testing.T) {
	rep := &report{CPUList: []int{0, 1}, Results: []Result{
		{Mode: "kernel", SYNRatio: 1},
		{Mode: "queue", SYNRatio: 0.5},
		{Mode: "tcp-option", AddedCPU: 1.5, SYNRatio: 0.95, AddedP99: 60},
	}, Bulk: []BulkResult{{Mode: "kernel"}, {Mode: "http-header", DownRatio: 0.9, UpRatio: 0.7}}}
	got := map[string]bool{}
	for _, g := range evalGoals(rep) {
		got[g.Mode+": "+g.What] = g.Met
	}
	want := map[string]bool{
		"tcp-option: added CPU µs/conn":           true,
		"tcp-option: sat SYN/s x kernel (2 CPUs)": true,
		"tcp-option: added p99 µs":                false,
		"http-header: bulk down x kernel":         true,
		"http-header: bulk up x kernel":           false,
	}
	if len(got) != len(want) {
		t.Errorf("goals %v; want %v (baselines have none)", got, want)
	}
	for k, v := range want {
		if m, ok := got[k]; !ok || m != v {
			t.Errorf("goal %q: met %v (present %v), want %v", k, m, ok, v)
		}
	}
}
