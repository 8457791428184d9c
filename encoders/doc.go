// Package encoders rewrites and reads the bytes of IPv4 packets handed over by
// NFQUEUE: it writes a HOST_ID into them (TCP option, RFC 7974; IPv4
// Identification of atomic datagrams, RFC 6864) and reads it back.
//
// Everything here is pure: no syscalls, no allocation on the packet path, and
// no panics on any input. Functions report what they did as a Result, which
// callers use to index counters. Packets start at the IPv4 header; bytes past
// the IPv4 Total Length are ignored (and dropped by functions that change the
// length). Checksums are updated incrementally (RFC 1624), so a packet whose
// checksum was wrong before stays wrong by the same amount.
package encoders
