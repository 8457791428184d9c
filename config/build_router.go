//go:build natreveal_router

package config

// HTTPEndpoint: see build.go.
const HTTPEndpoint = false
