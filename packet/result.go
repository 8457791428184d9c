package packet

// Result says what a parser or an encoder did. It is dense, so it can index
// counters: var counts [NumResults]uint64; counts[res]++.
//
// Parsers (Parse, ParseIPv4, ParseTCP, ...) report success as Unchanged:
// they never modify a packet.
type Result uint8

const (
	Written       Result = iota // packet modified
	Unchanged                   // nothing needed changing (or: parsed fine)
	Truncated                   // shorter than its headers claim
	BadHeader                   // wrong version, IHL < 5, data offset < 5, malformed options, bad argument
	NotTCP                      // the upper-layer protocol is not TCP (not UDP, for UDP parsers)
	Fragment                    // MF set or fragment offset != 0; an IPv6 Fragment header
	NotAtomic                   // DF clear: RFC 6864 §4, the ID is in use for fragmentation
	NoOptionSpace               // the option space cannot take the option
	OverMTU                     // the grown datagram would exceed the MTU (or 65535)
	NoBufferRoom                // cap(buf) too small for the grown datagram
	NumResults                  // number of Result values; not a result
)

var resultNames = [NumResults]string{
	Written:       "written",
	Unchanged:     "unchanged",
	Truncated:     "truncated",
	BadHeader:     "bad-header",
	NotTCP:        "not-tcp",
	Fragment:      "fragment",
	NotAtomic:     "not-atomic",
	NoOptionSpace: "no-option-space",
	OverMTU:       "over-mtu",
	NoBufferRoom:  "no-buffer-room",
}

// String returns a short kebab-case name, suitable as a metric label.
func (r Result) String() string {
	if r < NumResults {
		return resultNames[r]
	}
	return "unknown"
}
