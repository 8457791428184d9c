package main

import (
	"context"
	"errors"
	"fmt"
	"log"
	"net"
	"net/netip"
	"time"

	"github.com/natreveal/natreveal/config"
	"github.com/natreveal/natreveal/conntrack"
	"github.com/natreveal/natreveal/hostid"
	"github.com/natreveal/natreveal/ident"
)

// startIdent runs the RFC 1413 responder of the ident method (RFC 6967
// §4.9) until ctx ends: a query names a connection by the NAT's public port
// and the querier's port; conntrack gives the inside host that owns it and
// the HOST_ID source its identifier. The returned function waits for the
// server to stop and reports its counters.
func startIdent(ctx context.Context, c *config.Config, src hostid.Source, g conntrack.Getter, logger *log.Logger) (func(), error) {
	ln, err := net.Listen("tcp", c.Ident.Listen)
	if err != nil {
		return nil, fmt.Errorf("ident: listen on %s: %w", c.Ident.Listen, err)
	}
	// A short cache: a public port is soon reused by another inside host.
	res := conntrack.NewResolver(g, 4096, time.Second)
	resolve := func(local, remote netip.AddrPort) (netip.AddrPort, bool, error) {
		in, err := res.InsideSource(conntrack.Key{Proto: 6, Src: local, Dst: remote})
		if errors.Is(err, conntrack.ErrNotFound) {
			return netip.AddrPort{}, false, nil
		}
		return in, err == nil, err
	}
	hostID := func(a netip.Addr) (uint32, bool) { return src.HostID(a, 0) }
	srv := &ident.Server{
		// Only connections of inside hosts are answered: the NAT's own
		// get NO-USER.
		Lookup: ident.NATLookup(resolve, c.Inside, hostID),
		Format: func(id uint32) string { return fmt.Sprintf("0x%0*x", src.Bits()/4, id) }, // 0x0002 for 16 bits
		Logf:   logger.Printf,
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := srv.Serve(ctx, ln); err != nil {
			logger.Printf("ident: %v", err)
		}
	}()
	logger.Printf("ident: answering on %s", ln.Addr())
	if wildcardListen(c.Ident.Listen) {
		// Kept as the default: a router's public address is often dynamic
		// (DHCP, PPPoE) and absent at boot, so binding it would fail or go
		// stale. Inside hosts reach the responder too, but only about their
		// own connections with the NAT (RFC 1413 §3), which are NO-USER.
		logger.Printf("ident: listening on every interface (ident.listen %s); set it to the public address to answer only there", c.Ident.Listen)
	}
	return func() {
		<-done
		logger.Printf("ident counters: %s", srv.Stats.String())
	}, nil
}

// wildcardListen reports whether addr (host:port) binds every address.
func wildcardListen(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return false
	}
	if host == "" {
		return true
	}
	a, err := netip.ParseAddr(host)
	return err == nil && a.IsUnspecified()
}
