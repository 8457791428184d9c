package ipid

import (
	"github.com/natreveal/natreveal/encoders"
	"github.com/natreveal/natreveal/packet"
)

// What the tests, written beside the other encoders, name without a
// package: the results and parsers (package packet) and the TCP readers
// and checksum verifiers that check their packets (encoders).

type Result = packet.Result

const (
	Written       = packet.Written
	Unchanged     = packet.Unchanged
	Fragment      = packet.Fragment
	NotAtomic     = packet.NotAtomic
	Truncated     = packet.Truncated
	BadHeader     = packet.BadHeader
	NumResults    = packet.NumResults
	Headroom      = encoders.Headroom
	HostIDKind    = encoders.HostIDKind
	FlagSYN       = packet.FlagSYN
	FlagACK       = packet.FlagACK
	protoTCP      = packet.ProtoTCP
	NoOptionSpace = packet.NoOptionSpace
	OverMTU       = packet.OverMTU
	NoBufferRoom  = packet.NoBufferRoom
)

var (
	ParseIPv4           = packet.ParseIPv4
	HostIDOption        = encoders.HostIDOption
	HostIDFromTCPHeader = encoders.HostIDFromTCPHeader
	TCPChecksumOK       = encoders.TCPChecksumOK
	IPv4ChecksumOK      = encoders.IPv4ChecksumOK
	optLen              = packet.OptLen
)
