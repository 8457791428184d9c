package table

// The port-set method in the lab (RFC 6967, RFC 7422): the NAT installs
// deterministic SNAT port blocks and marks nothing; the server reads the
// HOST_ID from the source address:port it saw, looked up in the policy the
// NAT's operator publishes (`natreveal portset plan`).

import (
	"encoding/json"
	"errors"
	"net"
	"net/http"
	"net/netip"
	"slices"
	"strconv"
	"sync"

	"github.com/natreveal/natreveal/lab"
	"github.com/natreveal/natreveal/method"
	"github.com/natreveal/natreveal/portset"
)

// PortSetBlock is the lab's block size: 252 ports per host over the
// default 1024-65535 (reserved 0-1023, RFC 7422 §2 R) give every host of
// the inside /24 a block on the one public address (RFC 7422 §2 step 2:
// 64512 ports / (C+D) with C = 254 hosts per outside address, D = 2).
const PortSetBlock = 252

// portSetArgs are the NAT's flags for a method read by a port-set lookup:
// the same parameters as LabPortSetPolicy.
func portSetArgs(m method.Method) []string {
	return append(slices.Clip(m.Lab.NATArgs), flag(m, "public"), lab.NATPublic, flag(m, "block_size"), strconv.Itoa(PortSetBlock))
}

// LabPortSetPolicy is the policy `natreveal run` builds from the lab's
// flags (portSetArgs), before publication.
func LabPortSetPolicy() portset.Policy {
	return portset.Policy{
		Inside:    []netip.Prefix{netip.MustParsePrefix(lab.InsidePrefix)},
		Public:    []netip.Addr{netip.MustParseAddr(lab.NATPublic)},
		BlockSize: PortSetBlock,
	}
}

// published is the policy as a server has it: parsed from the published
// plan (the JSON `natreveal portset plan` prints), once.
var published = sync.OnceValues(func() (portset.Policy, error) {
	p, err := LabPortSetPolicy().Normalize()
	if err != nil {
		return portset.Policy{}, err
	}
	doc, err := json.Marshal(p.Doc())
	if err != nil {
		return portset.Policy{}, err
	}
	return portset.ParsePolicy(doc)
})

// portSetLookup names the HOST_ID (lower16, the lab's source) of the inside
// host that used public source src; ok is false when src is in no block:
// another address (a second NAT's) or a port outside the blocks.
func portSetLookup(src string) (uint32, bool, error) {
	p, err := published()
	if err != nil {
		return 0, false, err
	}
	ap, err := netip.ParseAddrPort(src)
	if err != nil {
		return 0, false, err
	}
	in, ok := p.Lookup(ap)
	if !ok {
		return 0, false, nil
	}
	b := in.As4()
	return uint32(b[2])<<8 | uint32(b[3]), true, nil
}

// portSetConn reads the HOST_ID of a TCP connection (plain, HTTP or TLS:
// the source port is the same) from its remote address.
func portSetConn(_ ServerEnv, c net.Conn, _ *http.Request) (uint32, bool, error) {
	if c == nil || c.RemoteAddr() == nil {
		return 0, false, errors.New("port-set: no remote address")
	}
	return portSetLookup(c.RemoteAddr().String())
}

// portSetUDP reads it from a datagram's source.
func portSetUDP(d *Datagram) (uint32, bool) {
	if d.Src == "" {
		return 0, false
	}
	id, ok, err := portSetLookup(d.Src)
	return id, ok && err == nil
}

// portSetPrep empties the NAT's conntrack table before the blocks go in:
// flows of the methods before (UDP flows the clients reuse, TCP tuples in
// TIME_WAIT) keep the masquerade's mapping, a port in some other host's
// block. A NAT that turns port-set on has the same choice: flush, or let old
// flows run out.
func portSetPrep(t *lab.Lab) error { return lab.FlushConntrack(t.NAT) }
