//go:build !natreveal_router

package main

import (
	"log/slog"

	"github.com/natreveal/natreveal/metrics"
)

// serveMetrics serves reg as /metrics on addr until the returned function
// runs. A natreveal_router build has no such server (metrics_router.go).
func serveMetrics(addr string, reg *metrics.Registry, log *slog.Logger) (func(), error) {
	ms, err := metrics.Listen(addr, reg)
	if err != nil {
		return nil, err
	}
	log.Info("metrics: serving /metrics", "addr", ms.Addr().String())
	return func() { ms.Close() }, nil
}
