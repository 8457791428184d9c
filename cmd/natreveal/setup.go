package main

import (
	"fmt"
	"net"
	"os"

	"github.com/natreveal/natreveal/config"
	"github.com/natreveal/natreveal/hostid"
	"github.com/natreveal/natreveal/nfq"
	"github.com/natreveal/natreveal/rules"
)

// hostIDSource builds the configured HOST_ID source, reading its files.
func hostIDSource(c *config.Config) (hostid.Source, error) {
	bits := 16
	if c.Has(config.MethodTCPOption) && c.TCPOption.Length == 4 && !c.Has(config.MethodIPID) {
		bits = 32
	}
	var key, mapFile []byte
	var err error
	switch c.HostID.Source {
	case "hash":
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

// handlerConfig is the packet path's part of the configuration.
func handlerConfig(c *config.Config) nfq.HandlerConfig {
	return nfq.HandlerConfig{
		Inside:    c.Inside,
		PostNAT:   c.Placement == "post-nat",
		TCPOption: c.Has(config.MethodTCPOption),
		OptionLen: c.TCPOption.Length,
		MaxSegs:   c.TCPOption.MaxSegments,
		IPID:      c.Has(config.MethodIPID),
		IPIDScope: c.IPID.Scope,
		TrackBit:  c.Marks.Track,
		DoneBit:   c.Marks.Done,
	}
}

// ruleSpec is the ruleset the configuration needs.
func ruleSpec(c *config.Config, mech rules.Mechanism) rules.Spec {
	pl := rules.PreNAT
	if c.Placement == "post-nat" {
		pl = rules.PostNAT
	}
	return rules.Spec{
		Table:      c.Table,
		Inside:     c.Inside,
		QueueNum:   c.Queue.Num,
		QueueCount: c.Queue.Count,
		Mechanism:  mech,
		Placement:  pl,
		SYN:        true,
		Track:      handlerConfig(c).Tracks(),
		AllTCP:     c.Has(config.MethodIPID) && c.IPID.Scope == config.ScopeAll,
		TrackBit:   c.Marks.Track,
		DoneBit:    c.Marks.Done,
	}
}

func wrap(what string, err error) error {
	if err == nil {
		return nil
	}
	return fmt.Errorf("%s: %w", what, err)
}
