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
// restores the previous value; who and why go into the error and the log.
func sysctlOn(log *slog.Logger, path, who, why string) (restore func(), err error) {
	old, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("%s needs %s: %w (is nf_conntrack loaded?)", who, path, err)
	}
	if strings.TrimSpace(string(old)) == "1" {
		return func() {}, nil
	}
	if err := os.WriteFile(path, []byte("1"), 0o644); err != nil {
		return nil, fmt.Errorf("setting %s: %w", path, err)
	}
	name := strings.ReplaceAll(strings.TrimPrefix(path, "/proc/sys/"), "/", ".")
	log.Info(fmt.Sprintf("set %s=1 (%s); restored at exit", name, why))
	return func() {
		if err := os.WriteFile(path, old, 0o644); err != nil {
			log.Error("restoring "+name, "err", err)
		}
	}, nil
}
