//go:build !natreveal_router

package metrics

import (
	"bytes"

	vm "github.com/VictoriaMetrics/metrics"
)

// writeProcess adds the Go runtime and process metrics. The router build
// (tag natreveal_router) has none (process_router.go): they are about 90 KB
// of a mips binary, and a router's node exporter describes the machine.
func writeProcess(b *bytes.Buffer) {
	vm.WriteProcessMetrics(b) // go_*, process_* (CPU, memory, I/O)
	vm.WriteFDMetrics(b)      // process_open_fds, process_max_fds
}
