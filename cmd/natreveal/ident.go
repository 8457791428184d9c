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
	srv := &ident.Server{
		Lookup: func(local, remote netip.AddrPort) (uint32, bool, error) {
			in, err := res.InsideSource(conntrack.Key{Proto: 6, Src: local, Dst: remote})
			if err != nil {
				if errors.Is(err, conntrack.ErrNotFound) {
					return 0, false, nil
				}
				return 0, false, err
			}
			id, ok := src.HostID(in.Addr(), 0)
			return id, ok, nil
		},
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
	return func() {
		<-done
		logger.Printf("ident counters: %s", srv.Stats.String())
	}, nil
}
