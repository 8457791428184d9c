// Package cpuprofile writes a Go CPU profile of a process's first seconds
// when the environment asks for one: the daemons the bench starts are
// profiled this way (natreveal-lab bench -hold D -cpuprofile FILE).
package cpuprofile

import (
	"fmt"
	"os"
	"runtime/pprof"
	"strconv"
	"time"
)

// The environment: File names the profile to write, Seconds how long to
// profile from the start (default 10).
const (
	File    = "NATREVEAL_CPUPROFILE"
	Seconds = "NATREVEAL_CPUPROFILE_SECONDS"
)

// FromEnv starts the profile File asks for, if any, and stops it after
// Seconds; it returns at once.
func FromEnv() error {
	path := os.Getenv(File)
	if path == "" {
		return nil
	}
	secs := 10
	if s := os.Getenv(Seconds); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n <= 0 {
			return fmt.Errorf("cpu profile: %s=%q: want a positive number of seconds", Seconds, s)
		}
		secs = n
	}
	f, err := os.Create(path)
	if err != nil {
		return fmt.Errorf("cpu profile: %w", err)
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		f.Close()
		return fmt.Errorf("cpu profile: %w", err)
	}
	time.AfterFunc(time.Duration(secs)*time.Second, func() {
		pprof.StopCPUProfile()
		f.Close()
	})
	return nil
}
