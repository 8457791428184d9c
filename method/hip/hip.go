// Package hip is the hip method: HIP hosts name themselves by their Host
// Identity Tag (RFC 7401 §5.1, IP protocol 139); the NAT only passes the
// packets through, and a server reads the sender's HIT.
package hip

import (
	"github.com/natreveal/natreveal/method"
)

// Name is the method's name.
const Name = "hip"

// Method describes hip: nothing to configure on the NAT.
var Method = method.Method{
	Name: Name, Family: method.Both,
	NoCounters: "the NAT never queues HIP packets",
	Decoder: method.Decoder{Why: "the sender HIT of a HIP packet (RFC 7401 §5.1), 128 bits, not a HOST_ID word", Default: true, Reveal: true,
		Proto: 139, HIT: HIPSenderHIT}, // RFC 7401 §5.1: HIP packets, IP protocol 139
	Lab: method.Lab{Column: "HIP", Position: 7, Family: 4, Reading: method.HIPStack,
		ServerReads:   "yes: a HIP stack (the lab reads the sender HIT from raw HIP packets)",
		KernelChange:  true,
		Configured:    "NAT: nothing (natreveal never queues HIP); clients and server: a HIP stack and HIP infrastructure",
		NeedsEndHosts: true,
		Claims:        method.Claims{Success: "Low", Perf: "N/A", Deployable: "No", Notes: "(4) (5)"}},
}
