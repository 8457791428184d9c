package config

import (
	"net"
	"path/filepath"
)

// DefaultMetricsListen is where `natreveal run` serves Prometheus metrics
// unless metrics.listen says otherwise: loopback only. The port is an
// arbitrary choice (the Prometheus exporter port range 9100-9999 is fully
// allocated); empty disables the endpoint. Keys.Metrics.Listen's default
// tag spells the same (TestDefaultsMatchConstants).
const DefaultMetricsListen = "127.0.0.1:9850"

// ops validates the operational keys.
func (c *Config) ops(k *Keys) error {
	var err error
	c.Metrics.Listen = k.Metrics.Listen
	if c.Metrics.Listen != "" {
		if _, _, err := net.SplitHostPort(c.Metrics.Listen); err != nil {
			return bad("metrics.listen", "%q is not host:port (e.g. 127.0.0.1:9850) or empty: %v", c.Metrics.Listen, err)
		}
	}
	if c.Status.Socket = k.Status.Socket; c.Status.Socket != "" && !filepath.IsAbs(c.Status.Socket) {
		return bad("status.socket", "%q is not an absolute path", c.Status.Socket)
	}
	if c.Log.Format, err = oneOf("log.format", k.Log.Format, "text", "json"); err != nil {
		return err
	}
	return nil
}
