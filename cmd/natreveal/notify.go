package main

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/coreos/go-systemd/v22/daemon"
	"golang.org/x/sys/unix"
)

// notifier tells systemd (Type=notify) what the daemon is doing through
// $NOTIFY_SOCKET (sd_notify(3)); without the variable it does nothing.
type notifier struct{ log *slog.Logger }

func (n notifier) send(state string) {
	if _, err := daemon.SdNotify(false, state); err != nil {
		n.log.Warn("sd_notify", "state", state, "err", err)
	}
}

// ready: the rules and the queues are live.
func (n notifier) ready() { n.send(daemon.SdNotifyReady) }

// stopping: the ruleset is being removed.
func (n notifier) stopping() { n.send(daemon.SdNotifyStopping) }

// reloading precedes a reload; ready ends it. MONOTONIC_USEC lets
// Type=notify-reload units match the two (systemd.service(5)).
func (n notifier) reloading() {
	var ts unix.Timespec
	if err := unix.ClockGettime(unix.CLOCK_MONOTONIC, &ts); err != nil {
		n.send(daemon.SdNotifyReloading)
		return
	}
	n.send(fmt.Sprintf("%s\nMONOTONIC_USEC=%d", daemon.SdNotifyReloading, ts.Nano()/1000))
}

// watchdog pings systemd at half the WatchdogSec interval while stuck
// names nothing (queue.Liveness.Stuck: every queue loop came round within the
// interval, or waits for packets), until ctx ends; nothing when the service
// has no watchdog. The first missed ping is logged with its reason, so the
// journal says why systemd ends the daemon (see catchAbort).
func (n notifier) watchdog(ctx context.Context, stop context.CancelFunc, stuck func(within time.Duration) string) {
	every, err := daemon.SdWatchdogEnabled(false)
	if err != nil || every <= 0 {
		return
	}
	n.catchAbort(ctx, stop)
	missed := false
	go repeat(ctx, every/2, func() {
		why := stuck(every)
		if why == "" {
			missed = false
			n.send(daemon.SdNotifyWatchdog)
			return
		}
		if !missed {
			n.log.Error("watchdog: not answering systemd: "+why, "watchdog", every.String())
		}
		missed = true
	})
}

// abortGrace bounds the stop that follows the watchdog's SIGABRT; past it
// the daemon exits at once (ExecStopPost removes the ruleset then).
const abortGrace = 5 * time.Second

// catchAbort: systemd ends a service whose watchdog expired with SIGABRT
// (WatchdogSignal=), on which the Go runtime prints every goroutine's stack
// whatever GOTRACEBACK says (about 330 lines in the journal). Caught
// instead: one line, then the ordinary stop (ruleset removed, sysctls
// restored); exit status 134 (128+SIGABRT) when that stop hangs on the loop
// that stopped answering. Only while the watchdog is on: elsewhere SIGABRT
// keeps its dump.
func (n notifier) catchAbort(ctx context.Context, stop context.CancelFunc) {
	abrt := make(chan os.Signal, 1)
	signal.Notify(abrt, syscall.SIGABRT)
	go func() {
		defer signal.Stop(abrt)
		select {
		case <-ctx.Done():
			return
		case <-abrt:
		}
		n.log.Error("watchdog: SIGABRT from systemd, stopping (no goroutine dump)")
		time.AfterFunc(abortGrace, func() {
			n.log.Error("watchdog: the stop hung; exiting now")
			os.Exit(128 + int(syscall.SIGABRT))
		})
		stop()
	}()
}
