// Package config loads natreveal's configuration from a YAML file, NATREVEAL_*
// environment variables and command-line flags (flag > env > file > default)
// with viper, and validates every key before anything is installed. Every
// key is declared once, as a field of Keys (keys.go).
package config

import (
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"time"

	"github.com/natreveal/natreveal/method"
	"github.com/natreveal/natreveal/method/all"
	"github.com/natreveal/natreveal/stream"
)

// allMethods lists every method a NAT configures, in the order messages and
// --help name them: the registry's (method/all).
var allMethods = all.Router()

// Methods returns the names of every method natreveal knows.
func Methods() []string { return slices.Clone(allMethods) }

// PacketMethods reports whether a method that rewrites packets is enabled
// (ident answers queries and needs no queue).
func (c *Config) PacketMethods() bool {
	return c.carriesIn(method.Both) || c.Selects()
}

// Selects reports whether a payload insertion method is enabled: one that
// adds bytes to the TCP stream of selected flows, so natreveal follows those
// flows for their whole life.
func (c *Config) Selects() bool { return c.EnabledNeeds().Select }

// EnabledNeeds is what the enabled methods need from the ruleset and the
// packet path together: the OR of their declared Needs.
func (c *Config) EnabledNeeds() method.Needs { return c.Configs.Enabled(c.env()) }

// Steps are the enabled methods' packet steps (method/all.Configs.Steps).
func (c *Config) Steps() []method.Step { return c.Configs.Steps(c.env()) }

// Stream fills the enabled payload methods' part of the selected flows'
// settings (method/all.Configs.Stream).
func (c *Config) Stream(sc *stream.Config) { c.Configs.Stream(c.env(), sc) }

// env is what the methods' blocks are checked against.
func (c *Config) env() method.Env {
	return method.Env{Methods: c.Methods, Inside: c.Inside, PreNAT: c.Placement == "pre-nat"}
}

// carriesIn reports whether an enabled method carries the HOST_ID in the
// packets of family f (a decoder reads it from the packet: not a payload or
// lookup method).
func (c *Config) carriesIn(f method.Family) bool {
	for _, m := range all.List {
		if c.Has(m.Name) && m.Decoder.Packet != nil && m.Family.Has(f) {
			return true
		}
	}
	return false
}

// methodNames joins with sep the names of the router methods keep accepts.
func methodNames(sep string, keep func(method.Method) bool) string {
	return strings.Join(all.Names(func(m method.Method) bool { return m.Router && keep(m) }), sep)
}

// carriers lists the router methods whose HOST_ID rides in packets of
// family f, joined with sep.
func carriers(f method.Family, sep string) string {
	return methodNames(sep, func(m method.Method) bool { return m.Decoder.Packet != nil && m.Family.Has(f) })
}

// enabledOnly lists the enabled methods that work for family f only.
func (c *Config) enabledOnly(f method.Family) string {
	return methodNames(", ", func(m method.Method) bool { return m.Family == f && c.Has(m.Name) })
}

// Config is the validated configuration.
type Config struct {
	Inside    []netip.Prefix
	Methods   []string
	Placement string // "pre-nat" or "post-nat"
	Table     string

	HostID struct {
		Source  string
		KeyFile string
		MapFile string
	}
	all.Configs // the methods' validated blocks (method/all): TCPOption, IPID, PortSet, ...
	Queue       struct {
		Num      uint16
		Count    uint16
		FailOpen bool
		MaxLen   uint32
		Workers  int
		Backlog  int
	}
	Flows struct {
		Max int
	}
	Marks struct {
		Track  uint32
		Done   uint32
		Select uint32 // payload insertion: the ct mark bit of selected flows (config/marks.go)
		// SeqAdj: the ct mark bit of http-header flows whose server segments
		// the kernel's sequence adjustment maps, so they are not queued.
		SeqAdj uint32
	}
	Metrics struct {
		Listen   string        // Prometheus endpoint of run; empty: none
		Textfile string        // file the text format is written to; empty: none
		Interval time.Duration // between two writes of Textfile
	}
	Log struct {
		Format string // "text" or "json"
	}
	Status struct {
		Socket string // control socket of run (internal/control); empty: none
	}
	File       string           // the configuration file read; "" for none
	MappingLog MappingLogConfig // mapping log of run (config/mappinglog.go)
}

// HasIPv4 and HasIPv6 report whether Inside holds prefixes of that family.
func (c *Config) HasIPv4() bool { return c.hasFamily(true) }
func (c *Config) HasIPv6() bool { return c.hasFamily(false) }

func (c *Config) hasFamily(v4 bool) bool {
	for _, p := range c.Inside {
		if p.Addr().Is4() == v4 {
			return true
		}
	}
	return false
}

// Has reports whether method m is enabled.
func (c *Config) Has(m string) bool {
	for _, x := range c.Methods {
		if x == m {
			return true
		}
	}
	return false
}

// Error is a bad configuration value: the key and what is wrong with it.
// It is the methods' error too, so theirs pass through unchanged.
type Error = method.KeyError

// bad is key's error. Not inlined: some fifty callers, and the copies
// cost the router build (TestRouterBinarySize).
//
//go:noinline
func bad(key, format string, a ...any) *Error {
	return &Error{Key: key, Msg: fmt.Sprintf(format, a...)}
}
