package main

import (
	"log/slog"
	"os"
	"time"

	"github.com/natreveal/natreveal/config"
	"github.com/natreveal/natreveal/internal/control"
	"github.com/natreveal/natreveal/method/portset"
	"github.com/natreveal/natreveal/rules"
)

// serveControl answers `natreveal status` on status.socket until the
// returned func runs; a socket it cannot serve is logged, never fatal.
func serveControl(c *config.Config, d *packetDaemon, log *slog.Logger) func() {
	if c.Status.Socket == "" {
		return func() {}
	}
	started := time.Now().UTC().Format(time.RFC3339)
	s, err := control.Listen(c.Status.Socket, func() control.Snapshot { return d.snapshot(c, started) })
	if err != nil {
		log.Warn("natreveal status will not find this daemon", "err", err)
		return func() {}
	}
	return s.Close
}

// snapshot describes the running daemon; first is the configuration it
// started with (d.c is nil until the packet path starts, port-set and
// ident-only daemons never start it). The port-set table is named
// whenever port-set is on, installed or not (d.portSet).
func (d *packetDaemon) snapshot(first *config.Config, started string) control.Snapshot {
	d.RefreshRuleset()
	d.mu.Lock()
	defer d.mu.Unlock()
	c, installed := d.c, d.installed
	if c == nil {
		c = first
	}
	s := control.Snapshot{Version: version, PID: os.Getpid(), ConfigFile: c.File, Started: started,
		Methods: c.Methods, Placement: c.Placement, Table: c.Table, Installed: installed, Counters: d.st.Snapshot(),
		PacketMethods: c.PacketMethods()}
	if d.c != nil {
		s.Mechanism, s.QueueNum, s.QueueCount, s.Rules = d.mech.String(), int(d.spec.QueueNum), int(d.spec.QueueCount), rules.Text(d.spec)
		_, sel := d.spec.SelectQueues()
		s.SelectQueues = int(sel)
		if c.HasIPv4() {
			s.Families = append(s.Families, "ip")
		}
		if c.HasIPv6() {
			s.Families = append(s.Families, "ip6")
		}
	}
	if c.Has(portset.Name) {
		ps := portSetSpec(c)
		s.PortSetTable, s.PortSetInstalled = "ip "+ps.Table, d.portSet.Load()
		s.Rules += rules.PortSetText(ps)
	}
	return s
}
