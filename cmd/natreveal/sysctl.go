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

// liberalTCP sets nf_conntrack_tcp_be_liberal to 1 in this network namespace
// and returns a function that restores the previous value.
func liberalTCP(log *slog.Logger) (restore func(), err error) {
	old, err := os.ReadFile(beLiberal)
	if err != nil {
		return nil, fmt.Errorf("http-header/proxy-protocol need %s: %w (is nf_conntrack loaded?)", beLiberal, err)
	}
	if strings.TrimSpace(string(old)) == "1" {
		return func() {}, nil
	}
	if err := os.WriteFile(beLiberal, []byte("1"), 0o644); err != nil {
		return nil, fmt.Errorf("setting %s: %w", beLiberal, err)
	}
	log.Info("set net.netfilter.nf_conntrack_tcp_be_liberal=1 (payload insertion shifts sequence numbers); restored at exit")
	return func() {
		if err := os.WriteFile(beLiberal, old, 0o644); err != nil {
			log.Error("restoring nf_conntrack_tcp_be_liberal", "err", err)
		}
	}, nil
}
