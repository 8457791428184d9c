package main

import (
	"errors"
	"fmt"
	"log/slog"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"
)

// Capabilities a running daemon keeps (capabilities(7)): CAP_NET_ADMIN for
// the ruleset, conntrack and the queues, a reload and the removal at stop;
// CAP_NET_RAW for the raw sockets of the packet path; CAP_NET_BIND_SERVICE
// for ident's port 113. Restoring the sysctls at stop needs none: files
// under /proc/sys/net are root's, mode 0644, and the owner's write bit
// applies to uid 0 without CAP_DAC_OVERRIDE (net_ctl_permissions).
func keptCaps(ident bool) []uintptr {
	keep := []uintptr{unix.CAP_NET_ADMIN, unix.CAP_NET_RAW}
	if ident {
		keep = append(keep, unix.CAP_NET_BIND_SERVICE)
	}
	return keep
}

// dropCaps reduces the capabilities of every thread of the process to keep
// (or fewer, where it had fewer): the bounding set, then the permitted,
// effective and inheritable sets, and the ambient set cleared. It runs
// once sockets are bound, tables installed and sysctls set, so that a
// compromise of the packet path does not hold the whole of root. systemd's
// CapabilityBoundingSet= does the same for the unit; outside systemd
// nothing else does.
//
// Capabilities are per thread: the change goes through
// syscall.AllThreadsSyscall, which a binary linked with cgo cannot use
// (ENOTSUP; the Makefile builds with CGO_ENABLED=0).
func dropCaps(log *slog.Logger, keep []uintptr) error {
	var want [2]uint32
	for _, c := range keep {
		want[c/32] |= 1 << (c % 32)
	}
	hdr := unix.CapUserHeader{Version: unix.LINUX_CAPABILITY_VERSION_3}
	var cur [2]unix.CapUserData
	if err := unix.Capget(&hdr, &cur[0]); err != nil {
		return fmt.Errorf("capget: %w", err)
	}
	// The bounding set first: dropping from it needs CAP_SETPCAP, which
	// the capset below gives up. Without CAP_SETPCAP (a unit that bounds
	// it already) it is left as it is.
	if cur[0].Effective&(1<<unix.CAP_SETPCAP) != 0 {
		for c := uintptr(0); c < 64; c++ {
			if want[c/32]&(1<<(c%32)) != 0 {
				continue
			}
			_, _, e := syscall.AllThreadsSyscall6(unix.SYS_PRCTL, unix.PR_CAPBSET_DROP, c, 0, 0, 0, 0)
			if e == unix.EINVAL {
				break // past the kernel's last capability
			}
			if e != 0 {
				return fmt.Errorf("dropping capability %d from the bounding set: %w", c, e)
			}
		}
	}
	if _, _, e := syscall.AllThreadsSyscall6(unix.SYS_PRCTL, unix.PR_CAP_AMBIENT, unix.PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0, 0); e != 0 && e != unix.EINVAL {
		return fmt.Errorf("clearing the ambient capabilities: %w", e)
	}
	var data [2]unix.CapUserData
	for i := range data {
		data[i].Permitted = cur[i].Permitted & want[i]
		data[i].Effective = cur[i].Effective & want[i]
		data[i].Inheritable = cur[i].Inheritable & want[i]
	}
	if _, _, e := syscall.AllThreadsSyscall(unix.SYS_CAPSET, uintptr(unsafe.Pointer(&hdr)), uintptr(unsafe.Pointer(&data[0])), 0); e != 0 {
		if errors.Is(e, syscall.ENOTSUP) {
			return fmt.Errorf("capset on every thread: %w (a binary built with cgo; build with CGO_ENABLED=0)", e)
		}
		return fmt.Errorf("capset: %w", e)
	}
	log.Info(fmt.Sprintf("capabilities dropped: keeping %#x of %#x", uint64(data[1].Effective)<<32|uint64(data[0].Effective),
		uint64(cur[1].Effective)<<32|uint64(cur[0].Effective)))
	return nil
}
