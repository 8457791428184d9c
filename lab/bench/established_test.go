package bench

import (
	"path/filepath"
	"testing"
	"time"
)

func TestSummarizeEstablished(t *testing.T) {
	k := []estSample{
		{SatTxnRate: 100, CPUPerPkt: 1000, P99: 100 * time.Microsecond, PktPerTxn: 2},
		{SatTxnRate: 200, CPUPerPkt: 2000, P99: 200 * time.Microsecond, PktPerTxn: 2},
		{SatTxnRate: 100, CPUPerPkt: 1500, P99: 100 * time.Microsecond, PktPerTxn: 2, Late: 1},
	}
	m := []estSample{
		{SatTxnRate: 90, CPUPerPkt: 1010, ProcsPerPkt: 30, P99: 110 * time.Microsecond, QueuedPerTxn: 0.5},
		{SatTxnRate: 200, CPUPerPkt: 2050, P99: 190 * time.Microsecond},
		{SatTxnRate: 80, CPUPerPkt: 1480, P99: 130 * time.Microsecond, Late: 2},
	}
	rs := summarizeEstablished([]string{"kernel", "tcp-option"}, [][]estSample{k, m})
	if len(rs) != 2 {
		t.Fatalf("%d results, want 2", len(rs))
	}
	kr, r := rs[0], rs[1]
	if kr.SatTxnRatio != 1 || kr.AddedCPUPkt != 0 || kr.AddedP99 != 0 || kr.Late != 1 {
		t.Errorf("kernel only against itself: %+v", kr)
	}
	// Per round: ratios 0.9, 1, 0.8; added ns/pkt 10, 50, -20; added p99 10, -10, 30 µs.
	if r.SatTxnRatio != 0.9 {
		t.Errorf("sat ratio %v, want 0.9 (the median of the per-round ratios)", r.SatTxnRatio)
	}
	if r.AddedCPUPkt != 10 || r.AddedPktMin != -20 || r.AddedPktMax != 50 {
		t.Errorf("added ns/pkt %v (%v..%v), want 10 (-20..50)", r.AddedCPUPkt, r.AddedPktMin, r.AddedPktMax)
	}
	if r.AddedProcs != 0 || r.AddedProcMin != 0 || r.AddedProcMax != 30 {
		t.Errorf("added procs ns/pkt %v (%v..%v), want 0 (0..30)", r.AddedProcs, r.AddedProcMin, r.AddedProcMax)
	}
	if r.AddedP99 != 10 {
		t.Errorf("added p99 %v µs, want 10", r.AddedP99)
	}
	if r.TxnRate != 90 || r.CPUPerPkt != 1480 || r.P99 != 130 || r.QueuedPerTxn != 0 || r.Late != 2 {
		t.Errorf("medians: %+v", r)
	}
}

func TestIfacePackets(t *testing.T) {
	dev := write(t, "Inter-|   Receive                                                |  Transmit\n"+
		" face |bytes    packets errs drop fifo frame compressed multicast|bytes    packets errs drop fifo colls carrier compressed\n"+
		"    lo:     100       1    0    0    0     0          0         0      100       1    0    0    0     0       0          0\n"+
		"   pub: 5000      50    1    2    0     0          0         0     6000      60    3    4    0     0       0          0\n")
	if n, err := ifacePackets(dev, "pub"); err != nil || n != 110 {
		t.Errorf("ifacePackets(pub) = %d, %v; want 110", n, err)
	}
	if _, err := ifacePackets(dev, "br0"); err == nil {
		t.Error("ifacePackets(br0): no error for an absent interface")
	}
	if _, err := ifacePackets(filepath.Join(t.TempDir(), "absent"), "pub"); err == nil {
		t.Error("ifacePackets of an absent file: no error")
	}
}
