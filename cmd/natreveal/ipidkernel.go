package main

import (
	"sync"

	"github.com/google/nftables"

	"github.com/natreveal/natreveal/config"
	"github.com/natreveal/natreveal/method"
	"github.com/natreveal/natreveal/method/ipid"
	"github.com/natreveal/natreveal/rules"
)

// ipidMapSpec is the in-kernel ip-id map of c's ruleset, or nil. SYNs of
// hosts in the map skip the queue unless another method needs them.
func ipidMapSpec(c *config.Config) *rules.IPIDMap {
	if !c.IPIDKernel.Enabled {
		return nil
	}
	return &rules.IPIDMap{
		Size:      uint32(c.IPIDKernel.Size),
		Timeout:   c.IPIDKernel.Timeout,
		SkipKnown: !needsBesides(c, ipid.Name).SYN,
	}
}

// ipidKernel gives ip-id's packet step among steps, built from c, the
// in-kernel path when c enables it: the learner that fills the map and the
// method's event counters in d.st. d.mu is held.
func (d *packetDaemon) ipidKernel(c *config.Config, steps []method.Step) {
	if !c.IPIDKernel.Enabled {
		return
	}
	k := &ipid.Kernel{Learner: d.ipidLearner(), Events: d.st.Events(ipid.Name)}
	for i, s := range steps {
		if st, ok := s.(ipid.Step); ok {
			st.Kernel = k
			steps[i] = st
		}
	}
}

// ipidLearner is the learner that fills the map, started with the first
// configuration that enables the kernel path and kept across reloads (a
// reload's new table starts empty; hosts are learned again from their next
// SYNs). d.mu is held.
func (d *packetDaemon) ipidLearner() *ipid.Learner {
	if d.learner == nil {
		var (
			once sync.Once
			conn *nftables.Conn
			err  error
		)
		d.learner = ipid.NewLearner(d.ctx, func(els []rules.HostIDElement) error {
			once.Do(func() { conn, err = nftables.New() })
			if err != nil {
				return err
			}
			d.mu.Lock()
			table := d.spec.Table
			d.mu.Unlock()
			return rules.AddHostIDs(conn, table, els)
		}, d.st.Events(ipid.Name))
	}
	return d.learner
}
