//go:build natreveal_router

package main

import (
	"errors"
	"log/slog"

	"github.com/natreveal/natreveal/metrics"
)

// serveMetrics: a natreveal_router build links no HTTP server; config
// refuses metrics.listen there, so this is not reached.
func serveMetrics(string, *metrics.Registry, *slog.Logger) (func(), error) {
	return nil, errors.New("metrics.listen: this build serves no HTTP (tag natreveal_router)")
}
