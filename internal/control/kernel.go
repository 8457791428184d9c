package control

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
)

// QueuesFile lists the NFQUEUE instances of the caller's network namespace
// (net/netfilter/nfnetlink_queue.c, seq_show).
const QueuesFile = "/proc/net/netfilter/nfnetlink_queue"

// Queue is one line of QueuesFile: an instance a process has bound.
type Queue struct {
	Num         int    `json:"num"`
	PeerPortID  uint32 `json:"peer_portid"`  // the listener's netlink port id
	Queued      int    `json:"queued"`       // packets waiting for a verdict
	CopyMode    int    `json:"copy_mode"`    // 2: whole packets
	CopyRange   int    `json:"copy_range"`   // bytes copied at most
	Dropped     int    `json:"dropped"`      // dropped by the kernel: queue full
	UserDropped int    `json:"user_dropped"` // netlink could not deliver: socket buffer full
	IDSequence  uint32 `json:"id_sequence"`  // the last packet id: packets queued so far
}

// ParseQueues reads QueuesFile's format: "%5u %6u %5u %1u %5u %5u %5u %8u %2d"
// per instance (queue_num, peer_portid, queue_total, copy_mode, copy_range,
// queue_dropped, queue_user_dropped, id_sequence, 1).
func ParseQueues(r io.Reader) ([]Queue, error) {
	var qs []Queue
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) == 0 {
			continue
		}
		if len(f) < 8 {
			return nil, fmt.Errorf("%s: %q: want 9 fields", QueuesFile, sc.Text())
		}
		var v [8]uint64
		for i := range v {
			n, err := strconv.ParseUint(f[i], 10, 32)
			if err != nil {
				return nil, fmt.Errorf("%s: %q: %w", QueuesFile, sc.Text(), err)
			}
			v[i] = n
		}
		qs = append(qs, Queue{Num: int(v[0]), PeerPortID: uint32(v[1]), Queued: int(v[2]), CopyMode: int(v[3]),
			CopyRange: int(v[4]), Dropped: int(v[5]), UserDropped: int(v[6]), IDSequence: uint32(v[7])})
	}
	return qs, sc.Err()
}

// Facts are what the kernel says, read by `natreveal status` itself.
type Facts struct {
	Tables  map[string]bool `json:"tables"`            // "ip natreveal": present
	Closing bool            `json:"closing,omitempty"` // the ip table is the closing table a stop leaves (rules.Close)
	Queues  []Queue         `json:"queues"`            // every bound instance of the namespace
}

// Verdict says whether the daemon marks packets: "marking" (ok), or what
// is wrong. snap is nil when the daemon did not answer (err says why);
// table and families are then those status was told to look for.
func Verdict(snap *Snapshot, err error, f Facts, table string, families []string) (ok bool, line string) {
	missing := func(table string, fams []string) []string {
		var m []string
		for _, fam := range fams {
			if !f.Tables[fam+" "+table] {
				m = append(m, "table "+fam+" "+table)
			}
		}
		return m
	}
	if snap == nil {
		left := len(missing(table, families)) < len(families)
		switch {
		case f.Closing:
			return false, fmt.Sprintf("stopped: %v; table ip %s is the closing table, which resets the selected flows "+
				"of the last run at their next packet (the next run replaces it, `natreveal rules remove` deletes it)", err, table)
		case left:
			return false, fmt.Sprintf("queue unbound: %v, but table %s is still installed: its queue rules have no reader, so SYNs pass "+
				"unmarked (bypass) and selected flows' packets are dropped (no bypass); start natreveal, or `natreveal rules remove`", err, table)
		case isNoAnswer(err):
			return false, fmt.Sprintf("not marking: %v", err)
		}
		if errors.Is(err, ErrNoDaemon) {
			return false, err.Error()
		}
		return false, fmt.Sprintf("no daemon: %v", err)
	}
	// Before the ruleset is in, or after it is out, whatever QueueCount
	// says (it stays 0 until the packet path starts).
	if snap.PacketMethods && !snap.Installed || snap.PortSetTable != "" && !snap.PortSetInstalled {
		return false, "not marking: the daemon has not installed its ruleset (starting or stopping)"
	}
	var m []string
	if snap.PacketMethods {
		m = missing(snap.Table, snap.Families)
	}
	if snap.PortSetTable != "" && !f.Tables[snap.PortSetTable] {
		m = append(m, "table "+snap.PortSetTable)
	}
	if len(m) > 0 {
		return false, fmt.Sprintf("table missing: %s gone while the daemon runs (a firewall reload or `nft flush ruleset` "+
			"removed it?); reload the daemon (SIGHUP, systemctl reload natreveal) to install it again", strings.Join(m, ", "))
	}
	if !snap.PacketMethods {
		if snap.PortSetTable != "" {
			return true, "running: " + strings.Join(snap.Methods, ",") + " (no queue; table " + snap.PortSetTable + " installed)"
		}
		return true, "running: " + strings.Join(snap.Methods, ",") + " (no queue, no ruleset)"
	}
	bound := map[int]bool{}
	for _, q := range f.Queues {
		bound[q.Num] = q.PeerPortID != 0
	}
	var unbound []string
	for n := snap.QueueNum; n < snap.QueueNum+snap.QueueCount+snap.SelectQueues; n++ {
		if !bound[n] {
			unbound = append(unbound, strconv.Itoa(n))
		}
	}
	if len(unbound) > 0 {
		return false, "queue unbound: no listener on queue " + strings.Join(unbound, ", ") + " (another network namespace, or the daemon lost its socket)"
	}
	return true, "marking"
}

func isNoAnswer(err error) bool { return errors.Is(err, ErrNoAnswer) }
