//go:build pprof

package main

import (
	"fmt"
	"os"

	"github.com/natreveal/natreveal/internal/cpuprofile"
)

// Built with -tags pprof (natreveal-lab bench -cpuprofile does), the daemon
// writes a Go CPU profile when NATREVEAL_CPUPROFILE names a file; the
// default build leaves runtime/pprof out.
func init() {
	if err := cpuprofile.FromEnv(); err != nil {
		fmt.Fprintln(os.Stderr, err)
	}
}
