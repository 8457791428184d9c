package rules

// Named counters: what the kernel does without the daemon (tracked flows
// ended, SYN-ACK MSS lowered) is counted in the table, and Counters reads it
// back for the metrics and the exit statistics.

import (
	"errors"
	"fmt"

	"github.com/google/nftables"
	"github.com/google/nftables/expr"
	"golang.org/x/sys/unix"
)

// Names of the counter objects (Spec.Track).
const (
	CounterTrackDone  = "track_done"  // followed flows the steer chain ended (RFC 7974 §4.2 established, client reset, packet bound)
	CounterMSSLowered = "mss_lowered" // SYN-ACKs of followed flows whose MSS the mss chain lowered (Spec.TrackMSS)
)

func counterObj(t *nftables.Table, name string) object {
	return object{
		obj:  &nftables.NamedObj{Table: t, Name: name, Type: nftables.ObjTypeCounter, Obj: &expr.Counter{}},
		text: fmt.Sprintf("\tcounter %s {\n\t\tpackets 0 bytes 0\n\t}\n\n", name),
	}
}

// countIn counts the packet in the counter object name.
func countIn(name string) term {
	return term{[]expr.Any{&expr.Objref{Type: unix.NFT_OBJECT_COUNTER, Name: name}}, fmt.Sprintf("counter name %q", name)}
}

// Counters returns the packet counts of the named counters in the tables
// of name (ip and ip6 summed). A table that does not exist counts nothing.
func Counters(c *nftables.Conn, name string) (map[string]uint64, error) {
	out := map[string]uint64{}
	var errs []error
	for _, t := range tables(name) {
		objs, err := c.GetNamedObjects(t)
		if err != nil {
			if !errors.Is(err, unix.ENOENT) {
				errs = append(errs, fmt.Errorf("counters of table %s: %w", t.Name, err))
			}
			continue
		}
		for _, o := range objs {
			n, ok := o.(*nftables.NamedObj)
			if !ok || n.Type != nftables.ObjTypeCounter {
				continue
			}
			if ctr, ok := n.Obj.(*expr.Counter); ok {
				out[n.Name] += ctr.Packets
			}
		}
	}
	return out, errors.Join(errs...)
}
