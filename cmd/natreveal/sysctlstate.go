package main

import (
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"golang.org/x/sys/unix"
)

// stateDirEnv names the directory where natreveal records the sysctl
// values it found (tests point it elsewhere). Without it: systemd's
// $RUNTIME_DIRECTORY (RuntimeDirectory=natreveal), else defaultStateDir.
const stateDirEnv = "NATREVEAL_STATE_DIR"

// defaultStateDir is on /run: a reboot resets the sysctls and the records
// together.
const defaultStateDir = "/run/natreveal"

// restoredSysctls are the sysctls sysctlOn sets, in the order restored.
var restoredSysctls = []string{beLiberal, ctAcct}

func stateDir() string {
	if d := os.Getenv(stateDirEnv); d != "" {
		return d
	}
	if d := os.Getenv("RUNTIME_DIRECTORY"); d != "" {
		return strings.Split(d, ":")[0]
	}
	return defaultStateDir
}

// sysctlStateFile is where the value found of the sysctl name (dotted) is
// recorded while a daemon has it set. The sysctls are per network
// namespace: outside the initial one (PID 1's) the file name carries the
// namespace's inode, so that daemons in other namespaces (labs, containers
// sharing /run) keep their own records.
func sysctlStateFile(name string) string {
	return filepath.Join(stateDir(), "sysctl."+name+netnsSuffix())
}

// netnsSuffix is "" in the initial network namespace (PID 1's), else
// ".netns" and the namespace's inode: what names a state file per network
// namespace.
func netnsSuffix() string {
	var self, init unix.Stat_t
	if unix.Stat("/proc/self/ns/net", &self) == nil {
		if unix.Stat("/proc/1/ns/net", &init) != nil || init.Ino != self.Ino || init.Dev != self.Dev {
			return fmt.Sprintf(".netns%d", self.Ino)
		}
	}
	return ""
}

// writeState records b at path durably enough for a SIGKILL or a crash:
// written to a temporary file, synced, renamed into place.
func writeState(path string, b []byte) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return err
	}
	tmp := path + ".tmp"
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return err
	}
	_, err = f.Write(b)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, path)
	}
	if err != nil {
		os.Remove(tmp)
	}
	return err
}

// restoreLeftSysctls writes back the values a daemon that did not stop
// cleanly (SIGKILL, a crash) recorded before it set its sysctls, and
// deletes the records; sysctls named in keep are left to sysctlOn, which
// restores the recorded value at this run's exit. `natreveal rules remove`
// and the start of `natreveal run` call it.
func restoreLeftSysctls(log *slog.Logger, keep ...string) {
	for _, path := range restoredSysctls {
		if slices.Contains(keep, path) {
			continue
		}
		name := strings.ReplaceAll(strings.TrimPrefix(path, "/proc/sys/"), "/", ".")
		saved := sysctlStateFile(name)
		old, err := os.ReadFile(saved)
		if err != nil {
			continue // no record: nothing left set
		}
		was := strings.TrimSpace(string(old))
		if was != "0" && was != "1" {
			log.Error(fmt.Sprintf("ignoring the record %s: not a boolean sysctl value", saved))
			os.Remove(saved)
			continue
		}
		if err := os.WriteFile(path, []byte(was), 0o644); err != nil {
			log.Error(fmt.Sprintf("cannot restore %s=%s, left set by a daemon that did not stop: %v", name, was, err))
			continue
		}
		os.Remove(saved)
		log.Info(fmt.Sprintf("restored %s=%s, left set by a daemon that did not stop", name, was))
	}
}
