package main

import (
	"context"
	"fmt"
	"log/slog"

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

// watchdog pings systemd at half the WatchdogSec interval while alive()
// holds, until ctx ends; nothing when the service has no watchdog.
func (n notifier) watchdog(ctx context.Context, alive func() bool) {
	every, err := daemon.SdWatchdogEnabled(false)
	if err != nil || every <= 0 {
		return
	}
	go repeat(ctx, every/2, func() {
		if alive() {
			n.send(daemon.SdNotifyWatchdog)
		}
	})
}
