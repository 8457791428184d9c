// Package table is `natreveal-lab lab`: in the routed lab (package lab:
// two inside hosts, a NAT running natreveal, a transit router, a server) it
// runs every method natreveal has over UDP, TCP, HTTP and TLS, on a clean
// path, through a router that drops packets carrying IP options and through
// a second NAT, and fills in Table 1 of the analysis
// (draft-boucadair-intarea-nat-reveal-analysis-04, published as RFC 6967)
// with the analysis's claim and the measured value side by side.
package table
