package test

import (
	"testing"

	"github.com/natreveal/natreveal/lab"
)

// Post-NAT placement tags only packets without a mark. A packet the user's
// own rules marked keeps its mark; the daemon then asks conntrack, which
// cannot see a flow while its SYN sits in the queue (the entry is unconfirmed
// until the packet leaves: measured on this kernel). Such a SYN must go on
// unmarked and be counted, and unmarked hosts must still get their HOST_ID.
func TestPostNATUserMarkedSYNFailsOpen(t *testing.T) {
	l := newLab(t)
	s := listen(t, l)
	if err := l.Nft(l.NAT, `table ip usermark {
	chain forward {
		type filter hook forward priority filter; policy accept;
		ip saddr `+lab.Client2+` meta mark set 0x00000005
	}
}`); err != nil {
		t.Fatal(err)
	}
	d := startDaemon(t, l, "--inside", lab.InsidePrefix, "--methods", "tcp-option", "--placement", "post-nat")
	marked := connect(t, s, l.C2, "usermark", 0)
	plain := connect(t, s, l.C1, "plain", 0)
	st := d.stop(t)
	if marked.HasOption {
		t.Logf("user-marked post-nat SYN was marked (%#x): this kernel exposes unconfirmed flows", marked.OptionID)
	} else if !retx(st["ct-miss"], 1) {
		// One SYN, one miss; a retransmitted SYN is looked up again.
		t.Errorf("unmarked post-nat SYN not counted as one ct-miss (two with a SYN retransmission): %v", st)
	}
	if marked.Bytes != 16 {
		t.Errorf("user-marked connection lost data: %d bytes", marked.Bytes)
	}
	if !plain.HasOption || plain.OptionID != 0x0002 {
		t.Errorf("unmarked host: option %v id %#x, want 0x0002", plain.HasOption, plain.OptionID)
	}
}
