package test

import (
	"testing"

	"github.com/natreveal/natreveal/test/lab"
)

// Post-NAT placement queues packets after the masquerade and asks conntrack
// for the inside source. Kernel fact measured here: ctnetlink cannot see a
// flow until its first packet has left (the entry is unconfirmed while the
// SYN sits in the queue), so SYN lookups miss. The daemon must then fail open:
// the connection succeeds, unmarked, and the miss is counted.
func TestPostNATFailsOpenOnUnconfirmedSYN(t *testing.T) {
	l := newLab(t)
	s := listen(t, l)
	d := startDaemon(t, l, "--inside", lab.InsidePrefix, "--methods", "tcp-option", "--placement", "post-nat")
	got := connect(t, s, l.C2, "postnat", 0)
	st := d.stop(t)
	if got.HasOption {
		t.Logf("post-nat SYN was marked (%#x): this kernel exposes unconfirmed flows", got.OptionID)
	} else if st["ct-miss"] < 1 {
		t.Errorf("unmarked post-nat SYN not counted as ct-miss: %v", st)
	}
	if got.Bytes != 16 {
		t.Errorf("post-nat connection lost data: %d bytes", got.Bytes)
	}
}
