package main

import (
	"errors"
	"net/netip"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/natreveal/natreveal/guard"
)

func TestGuardCollector(t *testing.T) {
	entries := []guard.Entry{
		{Addr: netip.MustParseAddr("192.0.2.1"), HostID: "0x0002", Method: "tcp-option", IDBytes: 2, Packets: 20, Bytes: 1200},
		{Addr: netip.MustParseAddr("192.0.2.1"), HostID: "0x00000002", Method: "tcp-option", IDBytes: 4, Packets: 0},
		{Addr: netip.MustParseAddr("192.0.2.1"), HostID: "0x0003", Method: "tcp-option", IDBytes: 2, Packets: 1, Bytes: 60},
		{Addr: netip.MustParseAddr("2001:db8:2::1"), HostID: "0x0002", Method: "dest-opt", IDBytes: 2, Packets: 5, Bytes: 400},
	}
	c := guardCollector{list: func() ([]guard.Entry, error) { return entries, nil }}
	want := `
# HELP natreveal_guard_blocked_pairs Blocked (address, HOST_ID) pairs now, by method's set.
# TYPE natreveal_guard_blocked_pairs gauge
natreveal_guard_blocked_pairs{family="ipv4",id_bytes="2",method="tcp-option"} 2
natreveal_guard_blocked_pairs{family="ipv4",id_bytes="4",method="tcp-option"} 1
natreveal_guard_blocked_pairs{family="ipv6",id_bytes="2",method="dest-opt"} 1
# HELP natreveal_guard_dropped_packets_total Packets of a blocked (address, HOST_ID) pair that guard dropped or rejected, by method's set.
# TYPE natreveal_guard_dropped_packets_total counter
natreveal_guard_dropped_packets_total{addr="192.0.2.1",family="ipv4",host_id="0x0002",id_bytes="2",method="tcp-option"} 20
natreveal_guard_dropped_packets_total{addr="192.0.2.1",family="ipv4",host_id="0x00000002",id_bytes="4",method="tcp-option"} 0
natreveal_guard_dropped_packets_total{addr="192.0.2.1",family="ipv4",host_id="0x0003",id_bytes="2",method="tcp-option"} 1
natreveal_guard_dropped_packets_total{addr="2001:db8:2::1",family="ipv6",host_id="0x0002",id_bytes="2",method="dest-opt"} 5
# HELP natreveal_guard_installed 1 when guard's table is installed, 0 when not.
# TYPE natreveal_guard_installed gauge
natreveal_guard_installed 1
`
	if err := testutil.CollectAndCompare(c, strings.NewReader(want), "natreveal_guard_blocked_pairs",
		"natreveal_guard_dropped_packets_total", "natreveal_guard_installed"); err != nil {
		t.Error(err)
	}
	if n := testutil.CollectAndCount(c, "natreveal_guard_dropped_bytes_total"); n != 4 {
		t.Errorf("%d byte series, want 4", n)
	}

	// No table: installed 0 and no pair series; another error fails the scrape.
	c.list = func() ([]guard.Entry, error) { return nil, guard.ErrNotInstalled }
	if err := testutil.CollectAndCompare(c, strings.NewReader(`
# HELP natreveal_guard_installed 1 when guard's table is installed, 0 when not.
# TYPE natreveal_guard_installed gauge
natreveal_guard_installed 0
`)); err != nil {
		t.Error(err)
	}
	c.list = func() ([]guard.Entry, error) { return nil, errors.New("netlink: permission denied") }
	reg := prometheus.NewRegistry()
	reg.MustRegister(c)
	if _, err := reg.Gather(); err == nil || !strings.Contains(err.Error(), "permission denied") {
		t.Errorf("a failed read: scrape error %v, want the read's", err)
	}
}
