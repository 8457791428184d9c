package bench

import (
	"bufio"
	"fmt"
	"os"
	"strconv"
	"strings"

	"github.com/natreveal/natreveal/lab"
)

// Where a flooded SYN can be dropped between the generator's send and the
// server's first hook, each read as a running total before and after the
// flood (issue 15: every SYN accounted).
const (
	dropQueueFull   = "queue full"            // nfnetlink_queue queue_dropped: the queue held queue.max_len packets
	dropQueueSocket = "queue socket full"     // nfnetlink_queue queue_user_dropped: the netlink receive buffer overflowed
	dropConntrack   = "conntrack"             // /proc/net/stat/nf_conntrack drop + early_drop + insert_failed (NAT namespace)
	dropLinks       = "interfaces"            // rx/tx drops and errors of every lab interface (ip -s link)
	dropSoftnet     = "softnet backlog"       // /proc/net/softnet_stat dropped: netdev_max_backlog (whole machine)
	passedBacklog   = "backlog-full (passed)" // the daemon's backlog-full: accepted unchanged, received without HOST_ID
	dropBacklog     = "daemon backlog"        // the daemon's backlog-dropped: backlog full, queue.fail_open false
)

// dropPlaces lists the drop counters in the order the summary prints them.
var dropPlaces = []string{dropQueueFull, dropQueueSocket, dropBacklog, dropConntrack, dropLinks, dropSoftnet}

// readDrops reads every drop counter of the lab (running totals).
func readDrops(l *lab.Lab) (map[string]uint64, error) {
	d := map[string]uint64{}
	q, err := readQueueStats(l.NAT)
	if err != nil {
		return nil, err
	}
	d[dropQueueFull], d[dropQueueSocket] = q.full, q.userDropped
	err = lab.Do(l.NAT, func() error {
		n, err := conntrackDrops("/proc/thread-self/net/stat/nf_conntrack")
		d[dropConntrack] = n
		return err
	})
	if err != nil {
		return nil, err
	}
	for _, ns := range l.Namespaces() {
		err := lab.Do(ns, func() error {
			n, err := linkDrops("/proc/thread-self/net/dev")
			d[dropLinks] += n
			return err
		})
		if err != nil {
			return nil, err
		}
	}
	d[dropSoftnet], err = softnetDrops("/proc/net/softnet_stat")
	return d, err
}

// conntrackDrops sums the drop columns of /proc/net/stat/nf_conntrack (a
// header line, then one line of hex fields per CPU). Absent: conntrack not
// loaded in the namespace, nothing dropped there.
func conntrackDrops(path string) (uint64, error) {
	b, err := os.ReadFile(path)
	if os.IsNotExist(err) {
		return 0, nil
	}
	if err != nil {
		return 0, err
	}
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	if len(lines) < 2 {
		return 0, nil
	}
	head := strings.Fields(lines[0])
	var sum uint64
	for _, line := range lines[1:] {
		f := strings.Fields(line)
		for i, name := range head {
			if i >= len(f) || (name != "drop" && name != "early_drop" && name != "insert_failed") {
				continue
			}
			n, _ := strconv.ParseUint(f[i], 16, 64)
			sum += n
		}
	}
	return sum, nil
}

// linkDrops sums receive and transmit errors and drops over the
// interfaces of /proc/net/dev (the figures of `ip -s link`).
func linkDrops(path string) (uint64, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0, err
	}
	var sum uint64
	sc := bufio.NewScanner(strings.NewReader(string(b)))
	for sc.Scan() {
		_, rest, ok := strings.Cut(sc.Text(), ":")
		if !ok {
			continue
		}
		f := strings.Fields(rest)
		if len(f) < 12 {
			continue
		}
		for _, i := range []int{2, 3, 10, 11} { // rx errs, rx drop, tx errs, tx drop
			n, _ := strconv.ParseUint(f[i], 10, 64)
			sum += n
		}
	}
	return sum, nil
}

// softnetDrops sums the second column of /proc/net/softnet_stat (hex, one
// line per CPU): packets dropped because a CPU's input backlog was full.
func softnetDrops(path string) (uint64, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0, err
	}
	var sum uint64
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.Fields(line)
		if len(f) < 2 {
			continue
		}
		n, _ := strconv.ParseUint(f[1], 16, 64)
		sum += n
	}
	return sum, nil
}

// synAccount is one flood's balance: sent = received + the drops at named
// places + unaccounted.
type synAccount struct {
	Sent        uint64            `json:"sent"`
	Received    uint64            `json:"received"`     // at the server, all SYNs to the flood port
	WithHostID  uint64            `json:"with_host_id"` // of those, carrying the mode's HOST_ID (or the queue-only mark)
	Drops       map[string]uint64 `json:"drops"`        // by place
	Unaccounted int64             `json:"unaccounted"`  // sent - received - drops
	BacklogFull uint64            `json:"backlog_full"` // the daemon's backlog-full over its whole life (dropped with fail_open false, else passed unmarked)
}

// balance fills Unaccounted from the others.
func (a *synAccount) balance() {
	u := int64(a.Sent) - int64(a.Received)
	for _, n := range a.Drops {
		u -= int64(n)
	}
	a.Unaccounted = u
}

// unaccountedOK is how many SYNs a flood may leave unexplained: none,
// beyond a thousandth (interface counters also count the server's RSTs, so
// drops can exceed the SYNs lost by a little).
func (a synAccount) unaccountedOK() bool {
	lim := int64(a.Sent / 1000)
	return a.Unaccounted <= lim && a.Unaccounted >= -lim
}

func (a synAccount) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "sent %d = received %d", a.Sent, a.Received)
	for _, p := range dropPlaces {
		if n := a.Drops[p]; n > 0 {
			fmt.Fprintf(&b, " + %s %d", p, n)
		}
	}
	fmt.Fprintf(&b, " + unaccounted %d", a.Unaccounted)
	return b.String()
}
