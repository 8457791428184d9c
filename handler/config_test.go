package handler

import (
	"net/netip"
	"testing"

	"github.com/natreveal/natreveal/method"
	"github.com/natreveal/natreveal/method/all"
	"github.com/natreveal/natreveal/method/destopt"
	"github.com/natreveal/natreveal/method/ipid"
	"github.com/natreveal/natreveal/method/ipoption"
	"github.com/natreveal/natreveal/method/tcpoption"
	"github.com/natreveal/natreveal/stream"
)

// testConfig is a handler configuration as the tests spell it: the
// methods' settings flat, as the configuration's blocks hold them;
// handler() builds their packet steps.
type testConfig struct {
	Inside    []netip.Prefix
	PostNAT   bool
	TCPOption bool
	OptionLen int
	IPID      bool
	IPIDScope string
	IPIDUDP   int
	IPOption  bool
	IPOptType byte
	IPOptLen  int
	IPOptUDP  int
	DestOpt   bool
	DestType  byte
	DestLen   int
	DestUDP   int
	TrackBit  uint32
	DoneBit   uint32

	HTTPHeader  bool
	HTTPSel     []Selector
	HTTPFields  HTTPFields
	Proxy       bool
	ProxySel    []Selector
	ProxyCfg    ProxyConfig
	IDBits      int
	IDAddress   bool
	SelectBit   uint32
	SeqAdjBit   uint32
	MaxSelected int
	IPIDLearn   ipid.HostLearner

	stats *Stats // the in-kernel ip-id path counts into it (newHandler sets it)
}

// handler is c as NewHandler takes it.
func (c testConfig) handler() HandlerConfig {
	var steps []method.Step
	if c.TCPOption {
		steps = append(steps, tcpoption.Step{Length: c.OptionLen})
	}
	if c.IPID {
		s := ipid.Step{Scope: c.IPIDScope, UDPPackets: c.IPIDUDP}
		if c.IPIDLearn != nil {
			s.Kernel = &ipid.Kernel{Learner: c.IPIDLearn, Events: c.stats.Events(ipid.Name)}
		}
		steps = append(steps, s)
	}
	if c.IPOption {
		steps = append(steps, ipoption.Step{Type: c.IPOptType, Length: c.IPOptLen, UDPPackets: c.IPOptUDP})
	}
	if c.DestOpt {
		steps = append(steps, destopt.Config{Type: c.DestType, Length: c.DestLen, UDPPackets: c.DestUDP}.Step())
	}
	return HandlerConfig{
		Inside: c.Inside, PostNAT: c.PostNAT, Steps: steps, TrackBit: c.TrackBit, DoneBit: c.DoneBit,
		Stream: stream.Config{
			HTTPHeader: c.HTTPHeader, HTTPSel: c.HTTPSel, HTTPFields: c.HTTPFields,
			Proxy: c.Proxy, ProxySel: c.ProxySel, ProxyCfg: c.ProxyCfg, IDBits: c.IDBits, IDAddress: c.IDAddress,
			SelectBit: c.SelectBit, SeqAdjBit: c.SeqAdjBit, MaxSelected: c.MaxSelected,
		},
	}
}

// Tracks is HandlerConfig.Tracks.
func (c testConfig) Tracks() bool { return c.handler().Tracks() }

// Stats holds the step results of every registered method.
func TestStatsHoldEveryMethod(t *testing.T) {
	if len(all.List) > maxMethods {
		t.Fatalf("%d methods registered, Stats holds %d: raise maxMethods", len(all.List), maxMethods)
	}
	for _, m := range all.List {
		if len(m.Events.Names) > maxEvents {
			t.Errorf("%s: %d events, Stats holds %d: raise maxEvents", m.Name, len(m.Events.Names), maxEvents)
		}
	}
}

// withStats is c with the stats the in-kernel ip-id path counts into.
func (c testConfig) withStats(st *Stats) testConfig {
	c.stats = st
	return c
}
