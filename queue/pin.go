package queue

import (
	"fmt"

	"golang.org/x/sys/unix"
)

// allowedCPUs lists the CPUs this process may run on (its affinity at
// start: a cpuset or taskset may leave out some).
func allowedCPUs() []int {
	var set unix.CPUSet
	if err := unix.SchedGetaffinity(0, &set); err != nil {
		return nil
	}
	var cpus []int
	for c := 0; c < len(set)*64; c++ {
		if set.IsSet(c) {
			cpus = append(cpus, c)
		}
	}
	return cpus
}

// laneCPUs are the CPUs among allowed whose packets queue i of n gets under
// CPU fanout (NFQA fanout: queue num + smp_processor_id() % n).
func laneCPUs(allowed []int, i, n int) []int {
	var cpus []int
	for _, c := range allowed {
		if c%n == i {
			cpus = append(cpus, c)
		}
	}
	return cpus
}

// pin binds the calling thread (locked to its goroutine) to lane i's CPUs.
func pin(allowed []int, i, n int) error {
	cpus := laneCPUs(allowed, i, n)
	if len(cpus) == 0 {
		return fmt.Errorf("no allowed CPU c with c mod %d = %d", n, i)
	}
	var set unix.CPUSet
	for _, c := range cpus {
		set.Set(c)
	}
	if err := unix.SchedSetaffinity(0, &set); err != nil {
		return fmt.Errorf("pin to CPUs %v: %w", cpus, err)
	}
	return nil
}
