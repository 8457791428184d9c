package test

import (
	"testing"
	"time"

	ct "github.com/ti-mo/conntrack"

	"github.com/natreveal/natreveal/test/lab"
)

// A followed flow whose conntrack entry goes away is forgotten at once (the
// daemon listens for destroy events), not only when it ages out. The server
// drops the SYN, so the flow stays half-open in natreveal's table until the
// test deletes the NAT's conntrack entries.
func TestConntrackDestroyEvictsFlows(t *testing.T) {
	for _, placement := range []string{"pre-nat", "post-nat"} {
		t.Run(placement, func(t *testing.T) {
			l := newLab(t)
			if err := l.Nft(l.Srv, `table ip blackhole {
	chain in {
		type filter hook input priority filter; policy accept;
		tcp dport 9999 drop
	}
}`); err != nil {
				t.Fatal(err)
			}
			d := startDaemon(t, l, "--inside", lab.InsidePrefix, "--methods", "tcp-option", "--placement", placement)
			if err := lab.Connect(l.C1, lab.ServerAddr+":9999", []byte("x"), 500*time.Millisecond); err == nil {
				t.Fatal("connected through a server that drops every SYN")
			}
			err := lab.Do(l.NAT, func() error {
				c, err := ct.Dial(nil)
				if err != nil {
					return err
				}
				defer c.Close()
				return c.Flush()
			})
			if err != nil {
				t.Fatalf("flushing the NAT's conntrack table: %v", err)
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
			// The one flow is tracked once, or twice if the client's SYN was
			// retransmitted (the same flow, refreshed); its one conntrack
			// entry is destroyed once.
			if !retx(st["flows-tracked"], 1) || st["flows-evicted"] != 1 {
				t.Errorf("flows tracked %d, evicted %d: want 1 (2 with a SYN retransmission) and 1 (%v)", st["flows-tracked"], st["flows-evicted"], st)
			}
		})
	}
}
