package bench

import (
	"fmt"
	"os"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// cpuList is the CPUs this process may run on (its affinity mask, which
// taskset or a cpuset narrows): the generators get one thread on each.
func cpuList() []int {
	var set unix.CPUSet
	if err := unix.SchedGetaffinity(0, &set); err != nil {
		return []int{0}
	}
	var cpus []int
	for c := 0; c < len(set)*64; c++ {
		if set.IsSet(c) {
			cpus = append(cpus, c)
		}
	}
	if len(cpus) == 0 {
		return []int{0}
	}
	return cpus
}

// pinThread binds the calling OS thread (the goroutine must hold it with
// runtime.LockOSThread, as lab.Enter does) to CPU c.
func pinThread(c int) error {
	var set unix.CPUSet
	set.Set(c)
	if err := unix.SchedSetaffinity(0, &set); err != nil {
		return fmt.Errorf("pin to CPU %d: %w", c, err)
	}
	return nil
}

// cpuTicks is the whole machine's CPU time from the first line of
// /proc/stat (all CPUs), in USER_HZ ticks: busy (user, nice, system, irq,
// softirq, steal) and total. Softirq counts: queued packets' kernel work
// (NAT, the verdict's re-injection) runs there or in system time. ctxt is
// the machine's context switches so far (the "ctxt" line): a queued packet
// puts its sender to sleep and wakes the queue's reader.
type cpuTicks struct{ busy, total, ctxt uint64 }

func readCPUTicks() (cpuTicks, error) {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return cpuTicks{}, err
	}
	line, rest, _ := strings.Cut(string(b), "\n")
	f := strings.Fields(line)
	if len(f) < 9 || f[0] != "cpu" {
		return cpuTicks{}, fmt.Errorf("/proc/stat: unexpected first line %q", line)
	}
	var t cpuTicks
	for i, s := range f[1:] {
		if i >= 8 { // guest and guest_nice are already in user and nice
			break
		}
		n, _ := strconv.ParseUint(s, 10, 64)
		t.total += n
		if i != 3 && i != 4 { // idle, iowait
			t.busy += n
		}
	}
	if _, c, ok := strings.Cut(rest, "\nctxt "); ok {
		c, _, _ = strings.Cut(c, "\n")
		t.ctxt, _ = strconv.ParseUint(c, 10, 64)
	}
	return t, nil
}

// userHZ is the unit of /proc/stat (USER_HZ, 100 on every Linux ABI).
const userHZ = 100
