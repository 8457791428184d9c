//go:build !natreveal_router

package config

// HTTPEndpoint reports whether this build serves metrics.listen. The
// router build (tag natreveal_router, the OpenWrt package's) leaves
// net/http's server out of the binary, about 1.6 MB for mips, and writes
// metrics.textfile instead.
const HTTPEndpoint = true
