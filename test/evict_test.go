package test

import (
	"testing"
	"time"

	"github.com/natreveal/natreveal/lab"
)

// A followed flow whose conntrack entry goes away is forgotten at once (the
// daemon listens for destroy events), not only when it ages out. TCP flows
// are followed by the ruleset alone (rules.Spec.Track); the daemon keeps
// state for UDP flows (the first ip_id.udp_packets datagrams): one datagram
// leaves the flow in natreveal's table until the test deletes the NAT's
// conntrack entries.
func TestConntrackDestroyEvictsFlows(t *testing.T) {
	for _, placement := range []string{"pre-nat", "post-nat"} {
		t.Run(placement, func(t *testing.T) {
			l := newLab(t)
			u, err := lab.ListenUDP(l.Srv, lab.ServerAddr+":9999")
			if err != nil {
				t.Fatal(err)
			}
			defer u.Close()
			d := startDaemon(t, l, "--inside", lab.InsidePrefix, "--methods", "ip-id", "--placement", placement)
			if err := lab.SendUDP(l.C1, lab.ServerAddr+":9999", []string{"x"}, 0); err != nil {
				t.Fatal(err)
			}
			// Flush only once the datagram went through: its conntrack entry
			// is confirmed when the verdict re-injects it.
			for deadline := time.Now().Add(10 * time.Second); len(u.Seen()) == 0; time.Sleep(10 * time.Millisecond) {
				if time.Now().After(deadline) {
					t.Fatal("the datagram did not reach the server in 10s")
				}
			}
			if err := lab.FlushConntrack(l.NAT); err != nil {
				t.Fatal(err)
			}
			// The destroy event reaches the daemon asynchronously: wait for
			// the eviction on the metrics endpoint (default 127.0.0.1:9850).
			const evicted = `natreveal_flow_events_total{event="evicted"}`
			for deadline := time.Now().Add(10 * time.Second); ; {
				m := scrape(t, l, "127.0.0.1:9850")
				if m[evicted] >= 1 {
					break
				}
				if time.Now().After(deadline) {
					t.Errorf("%s = %v after 10s, want 1", evicted, m[evicted])
					break
				}
				time.Sleep(20 * time.Millisecond)
			}
			st := d.stop(t)
			// One datagram, one flow, one conntrack entry destroyed.
			if st["flows-tracked"] != 1 || st["flows-evicted"] != 1 || st["ip-id/written"] != 1 {
				t.Errorf("flows tracked %d, evicted %d, ip-id written %d: want 1, 1, 1 (%v)", st["flows-tracked"], st["flows-evicted"], st["ip-id/written"], st)
			}
		})
	}
}
