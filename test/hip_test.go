package test

import (
	"bytes"
	"testing"
	"time"

	"github.com/natreveal/natreveal/lab"
	"github.com/natreveal/natreveal/method/hip"
)

// hipI1 is a HIP I1 packet (RFC 7401 §5.1, §5.3.1) without parameters:
// next header 59, header length 4, type 1, version 2, both HITs.
func hipI1(sender byte) []byte {
	p := make([]byte, 40)
	p[0], p[1], p[2], p[3] = 59, 4, 1, 0x21
	for i := 0; i < 16; i++ {
		p[8+i] = 0x20 + sender // an ORCHID-looking sender HIT (2001:20::/28)
		p[24+i] = 0x30
	}
	p[8], p[9] = 0x20, 0x01
	return p
}

// HIP (draft-boucadair-intarea-nat-reveal-analysis §3.7): natreveal never touches HIP (IP protocol 139). With every
// packet method on, the HIP packets of two hosts cross the masquerade with
// their HIP header byte-identical, and the sender HIT found at the server
// tells the hosts apart.
func TestHIPPassesUntouched(t *testing.T) {
	l := newLab(t)
	r, err := lab.ListenRaw(l.Srv, 139)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	d := startDaemon(t, l, "--inside", lab.InsidePrefix, "--methods", "tcp-option,ip-id,ip-option", "--ip-id-scope", "all")
	// Conntrack follows protocol 139 by addresses only (no ports): two inside
	// hosts cannot reach the same server through one public address at
	// once, so each host talks to another address of the server.
	for i, h := range []struct{ ns, dst string }{{l.C1, lab.ServerAddr}, {l.C2, lab.ServerPublic}} {
		ns := h.ns
		sent := hipI1(byte(i))
		if err := lab.SendRaw(ns, h.dst, 139, sent); err != nil {
			t.Fatal(err)
		}
		got, from, err := r.Next(10 * time.Second)
		if err != nil {
			t.Fatalf("HIP packet from %s did not arrive: %v", ns, err)
		}
		if from.String() != lab.NATPublic {
			t.Errorf("HIP from %s arrived from %s, want the NAT's %s", ns, from, lab.NATPublic)
		}
		if !bytes.Equal(got, sent) {
			t.Errorf("HIP packet changed on the way:\n sent % x\n got  % x", sent, got)
		}
		// The decoder reads the sender HIT from the packet as it arrived.
		pkt := append([]byte{0x45, 0, 0, byte(20 + len(got)), 0, 0, 0x40, 0, 64, 139, 0, 0, 192, 0, 2, 1, 192, 0, 2, 2}, got...)
		hit, ok := hip.HIPSenderHIT(pkt)
		if !ok || !bytes.Equal(hit[:], sent[8:24]) {
			t.Errorf("sender HIT %x %v, want %x", hit, ok, sent[8:24])
		}
	}
	if st := d.stop(t); st["packets"] != 0 {
		t.Errorf("natreveal queued %d packets, want none for HIP: %v", st["packets"], st)
	}
}
