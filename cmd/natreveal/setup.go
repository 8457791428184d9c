package main

import (
	"fmt"
	"net"
	"os"
	"time"

	"github.com/natreveal/natreveal/config"
	"github.com/natreveal/natreveal/handler"
	"github.com/natreveal/natreveal/hostid"
	"github.com/natreveal/natreveal/method"
	"github.com/natreveal/natreveal/method/all"
	"github.com/natreveal/natreveal/method/httpheader"
	"github.com/natreveal/natreveal/rules"
	"github.com/natreveal/natreveal/stream"
)

// hostIDSource builds the configured HOST_ID source, reading its files.
func hostIDSource(c *config.Config) (hostid.Source, error) {
	bits := idBits(c)
	var key, mapFile []byte
	var err error
	switch c.HostID.Source {
	case "hash":
		if err := privateFile(c.HostID.KeyFile); err != nil {
			return nil, &config.Error{Key: "hostid.key_file", Msg: err.Error()}
		}
		if key, err = os.ReadFile(c.HostID.KeyFile); err != nil {
			return nil, &config.Error{Key: "hostid.key_file", Msg: err.Error()}
		}
	case "map":
		if mapFile, err = os.ReadFile(c.HostID.MapFile); err != nil {
			return nil, &config.Error{Key: "hostid.map_file", Msg: err.Error()}
		}
	}
	ifIndex := func(name string) (uint32, error) {
		ifc, err := net.InterfaceByName(name)
		if err != nil {
			return 0, err
		}
		return uint32(ifc.Index), nil
	}
	src, err := hostid.New(c.HostID.Source, bits, key, mapFile, ifIndex)
	if err != nil {
		k := "hostid.source"
		switch c.HostID.Source {
		case "hash":
			k = "hostid.key_file"
		case "map":
			k = "hostid.map_file"
		}
		return nil, &config.Error{Key: k, Msg: err.Error()}
	}
	return src, nil
}

// idBits: the HOST_ID is as wide as the narrowest enabled carrier (the
// payload methods carry any width).
func idBits(c *config.Config) int {
	if c.EnabledNeeds().IDBits == 16 {
		return 16
	}
	if c.HostID.Source == "lower16" {
		return 16
	}
	return 32
}

// needsBesides ORs the Needs of the enabled methods other than name.
func needsBesides(c *config.Config, name string) method.Needs {
	var n method.Needs
	for _, m := range all.List {
		if mn, ok := c.Configs.Needs(m.Name); ok && c.Has(m.Name) && m.Name != name {
			n = n.Or(mn)
		}
	}
	return n
}

// handlerConfig is the packet path's part of the configuration: the
// enabled methods' packet steps and the selected flows' settings, each
// method's part from its configuration block.
func handlerConfig(c *config.Config) handler.HandlerConfig {
	sc := stream.Config{
		IDBits:      idBits(c),
		IDAddress:   c.HostID.Source == "address",
		SelectBit:   c.Marks.Select,
		SeqAdjBit:   seqAdjBit(c),
		MaxSelected: c.Flows.Max,
	}
	c.Stream(&sc)
	return handler.HandlerConfig{
		Inside:   c.Inside,
		PostNAT:  c.Placement == "post-nat",
		Steps:    c.Steps(),
		TrackBit: c.Marks.Track,
		DoneBit:  c.Marks.Done,
		Stream:   sc,
	}
}

// tracksTCP reports whether the ruleset follows TCP flows after the SYN
// (rules.Spec.Track), which bounds them with conntrack's packet counters.
func tracksTCP(c *config.Config) bool {
	n := c.EnabledNeeds()
	return n.Track || n.Track6
}

// selectQueues is how many queues, after the queue.count others, the
// ruleset of c sends selected flows' packets to (rules.Spec.SelectQueues):
// the daemon binds them fail closed (queue.Config.Closed).
func selectQueues(c *config.Config) uint16 {
	_, n := ruleSpec(c, rules.Native).SelectQueues()
	return n
}

// ruleSpec is the ruleset the configuration needs: the OR of the enabled
// methods' Needs (method/all) and the common keys.
func ruleSpec(c *config.Config, mech rules.Mechanism) rules.Spec {
	pl := rules.PreNAT
	if c.Placement == "post-nat" {
		pl = rules.PostNAT
	}
	n := c.EnabledNeeds()
	if n.TrackPackets == 0 {
		// Without tcp-option (ip-id scope new alone) tracked flows keep
		// tcp_option.max_segments's bound.
		n.TrackPackets = c.TCPOption.Needs().TrackPackets
	}
	return rules.Spec{
		Table:         c.Table,
		Inside:        c.Inside,
		QueueNum:      c.Queue.Num,
		QueueCount:    c.Queue.Count,
		Mechanism:     mech,
		Placement:     pl,
		SYN:           n.SYN,
		Track:         n.Track,
		TrackMSS:      n.MSS,
		TrackPackets:  n.TrackPackets, // the SYN and max_segments more
		UDP:           n.UDP > 0,
		SYN6:          n.SYN6,
		Track6:        n.Track6,
		UDP6:          n.UDP6 > 0,
		AllTCP:        n.AllTCP,
		TrackBit:      c.Marks.Track,
		DoneBit:       c.Marks.Done,
		Select:        n.Select && c.HasIPv4(),
		SelectBit:     c.Marks.Select,
		SeqAdjHelper:  seqAdjHelper(c),
		SeqAdjBit:     seqAdjBit(c),
		UploadSize:    uploadSize(c),
		UploadTimeout: uploadTimeout,
		IPIDMap:       ipidMapSpec(c),
	}
}

// uploadTimeout bounds how long an element of the uploads set outlives a
// removal the daemon missed (stream/upload.go).
const uploadTimeout = 10 * time.Minute

// uploadSize is the uploads set's bound: a request body per selected flow,
// two elements when its range crosses 2^32; 0 (no set) without the seqadj
// bit.
func uploadSize(c *config.Config) uint32 {
	if seqAdjBit(c) == 0 {
		return 0
	}
	return uint32(min(2*max(c.Flows.Max, 1), rules.MaxUploadsSize))
}

// seqAdjHelper is the conntrack helper whose assignment gives selected flows
// the seqadj extension, so that proxy-protocol flows can be handed to the
// kernel once their header is in (stream/handoff.go); "" without proxy-protocol.
func seqAdjHelper(c *config.Config) string {
	if c.Selects() && c.HasIPv4() && c.Placement != "post-nat" {
		return "ftp"
	}
	return ""
}

// seqAdjBit is the ct mark bit that keeps http-header flows' server
// segments out of the queue while the kernel maps them (stream/kernelack.go).
func seqAdjBit(c *config.Config) uint32 {
	if seqAdjHelper(c) != "" && c.Has(httpheader.Name) {
		return c.Marks.SeqAdj
	}
	return 0
}

// privateFile refuses a key file other users can read or write: the hash
// key is the only secret between a HOST_ID and the inside address it was
// derived from, so anyone who reads it can undo the obfuscation. A file
// that cannot be inspected is left to the read that follows.
func privateFile(path string) error {
	fi, err := os.Stat(path)
	if err != nil || !fi.Mode().IsRegular() {
		return nil
	}
	if p := fi.Mode().Perm(); p&0o006 != 0 {
		return fmt.Errorf("%s is readable or writable by every user (mode %04o); make it private (chmod 600)", path, p)
	}
	return nil
}
