package table

import (
	"fmt"
	"net"
	"time"

	"github.com/natreveal/natreveal/lab"
)

// hipI1 is a HIP I1 packet (RFC 7401 §5.1, §5.3.1) without parameters: next
// header 59 (none), header length 4, packet type 1, version 2, then the
// sender's and the receiver's HIT. The lab puts the probe's label in the
// receiver HIT.
func hipI1(sender, receiver [16]byte) []byte {
	p := make([]byte, 40)
	p[0], p[1], p[2], p[3] = 59, 4, 1, 0x21
	copy(p[8:24], sender[:])
	copy(p[24:40], receiver[:])
	return p
}

// hostHIT is an ORCHID-looking HIT (2001:20::/28, RFC 7343) for host i.
func hostHIT(i int) [16]byte {
	var h [16]byte
	h[0], h[1], h[2] = 0x20, 0x01, 0x20
	h[15] = byte(i + 1)
	return h
}

// hipProbe sends n HIP I1 packets, alternating hosts, and counts those that
// reached the server and those whose sender HIT arrived intact. Each host
// talks to its own server address: conntrack follows protocol 139 by
// addresses only, so two hosts behind one public address cannot reach the
// same server address at once.
func hipProbe(r *runner, n int) (sent, arrived, revealed int, err error) {
	labels := make([]string, n)
	for i := 0; i < n; i++ {
		hi := i % len(r.t.Hosts)
		h := r.t.Hosts[hi]
		dst := lab.ServerAddr
		if hi == 1 {
			dst = lab.ServerAddr2
		}
		var recv [16]byte
		labels[i] = r.label()
		copy(recv[:], fmt.Sprintf("%16s", labels[i]))
		err := lab.Do(h.NS, func() error {
			c, err := net.Dial("ip4:139", dst)
			if err != nil {
				return err
			}
			defer c.Close()
			_, err = c.Write(hipI1(hostHIT(hi), recv))
			return err
		})
		if err != nil {
			return 0, 0, 0, fmt.Errorf("hip from %s: %w", h.Name, err)
		}
		labels[i] = string(recv[:])
		sent++
	}
	deadline := time.Now().Add(udpWait)
	for {
		arrived, revealed = 0, 0
		r.st.mu.Lock()
		for i, l := range labels {
			if hit, ok := r.st.hip[l]; ok {
				arrived++
				if hit == hostHIT(i%len(r.t.Hosts)) {
					revealed++
				}
			}
		}
		r.st.mu.Unlock()
		if arrived == sent || time.Now().After(deadline) {
			return sent, arrived, revealed, nil
		}
		time.Sleep(20 * time.Millisecond)
	}
}
