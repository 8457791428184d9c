package main

import (
	"fmt"
	"log/slog"
	"os"
	"strings"
)

// beLiberal is the conntrack sysctl that payload insertion needs: conntrack
// checks the server's acknowledgements at prerouting, before natreveal maps
// them back into the client's sequence space, and would otherwise mark them
// out of window (measured here: the NAT then resets the connection).
const beLiberal = "/proc/sys/net/netfilter/nf_conntrack_tcp_be_liberal"

// ctAcct makes conntrack count packets per direction, which the steer
// chain's `ct original packets` bound on tracked flows reads
// (tcp_option.max_segments; rules.Spec.TrackPackets). Without it the bound
// never matches and a flow is followed until the server's first segment.
const ctAcct = "/proc/sys/net/netfilter/nf_conntrack_acct"

// liberalTCP sets nf_conntrack_tcp_be_liberal to 1 in this network namespace
// and returns a function that restores the previous value.
func liberalTCP(log *slog.Logger) (restore func(), err error) {
	return sysctlOn(log, beLiberal, "http-header/proxy-protocol", "payload insertion shifts sequence numbers")
}

// countPackets sets nf_conntrack_acct to 1 (see ctAcct).
func countPackets(log *slog.Logger) (restore func(), err error) {
	return sysctlOn(log, ctAcct, "tcp_option.max_segments", "the bound on followed flows reads ct original packets")
}

// sysctlOn sets the boolean sysctl at path to 1 and returns a function that
// restores the value found; who and why go into the error and the log. A
// failed write (a read-only /proc/sys/net: a container, or a unit without
// the ReadWritePaths carve-out) is logged here, one line, and still returns
// restore with its error: the kernel may turn the sysctl on itself (nft_ct
// enables conntrack accounting for a ruleset's `ct packets`), and what was
// there is restored at exit where the file is writable by then, or logged.
// A failed read (the sysctl is not there: nf_conntrack not loaded yet) is
// left to the caller.
//
// The value found is also recorded in the state directory (sysctlstate.go:
// $RUNTIME_DIRECTORY under systemd, else /run/natreveal), so that a daemon
// the watchdog, a crash or SIGKILL ended before it restored still restores
// what was there before the first run, not the 1 its predecessor left; so
// does `natreveal rules remove` (restoreLeftSysctls).
func sysctlOn(log *slog.Logger, path, who, why string) (restore func(), err error) {
	name := strings.ReplaceAll(strings.TrimPrefix(path, "/proc/sys/"), "/", ".")
	old, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("%s needs %s: %w (is nf_conntrack loaded?)", who, path, err)
	}
	saved := sysctlStateFile(name)
	if prev, err := os.ReadFile(saved); err == nil && len(prev) > 0 {
		log.Info(fmt.Sprintf("%s: restoring %s at exit, as found before a run that did not", name, strings.TrimSpace(string(prev))))
		old = prev
	}
	was := strings.TrimSpace(string(old))
	if was == "1" {
		return func() {}, nil
	}
	restore = func() {
		if err := os.WriteFile(path, old, 0o644); err != nil {
			if cur, _ := os.ReadFile(path); strings.TrimSpace(string(cur)) != was {
				log.Error(fmt.Sprintf("cannot restore %s=%s: %v", name, was, err))
			}
			return
		}
		if saved != "" {
			os.Remove(saved)
		}
		log.Info(fmt.Sprintf("restored %s=%s", name, was))
	}
	if err := os.WriteFile(path, []byte("1"), 0o644); err != nil {
		log.Warn(fmt.Sprintf("cannot set %s=1 (%s: %s): %v", name, who, why, err))
		return restore, fmt.Errorf("setting %s=1: %w", name, err)
	}
	if saved != "" {
		if err := writeState(saved, old); err != nil {
			log.Warn("recording "+name+" for a restart", "err", err)
		}
	}
	log.Info(fmt.Sprintf("set %s=1 (%s); restored to %s at exit", name, why, was))
	return restore, nil
}
