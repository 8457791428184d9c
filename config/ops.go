package config

import (
	"net"

	"github.com/spf13/pflag"
	"github.com/spf13/viper"
)

// DefaultMetricsListen is where `natreveal run` serves Prometheus metrics
// unless metrics.listen says otherwise: loopback only. The port is an
// arbitrary choice (the Prometheus exporter port range 9100-9999 is fully
// allocated); empty disables the endpoint.
const DefaultMetricsListen = "127.0.0.1:9850"

// Operational keys of the daemon: metrics endpoint and log format.
func init() {
	defaults["metrics.listen"] = DefaultMetricsListen
	defaults["log.format"] = "text"
	flags["metrics-listen"] = "metrics.listen"
	flags["log-format"] = "log.format"
}

// AddRunFlags registers the flags of the daemon's operational keys (run and
// check --config).
func AddRunFlags(fs *pflag.FlagSet) {
	fs.String("metrics-listen", DefaultMetricsListen, "address of the Prometheus /metrics endpoint (empty: none)")
	fs.String("log-format", "text", "log format: text or json")
}

// ops validates the operational keys.
func (c *Config) ops(v *viper.Viper) error {
	var err error
	if c.Metrics.Listen, err = str(v, "metrics.listen"); err != nil {
		return err
	}
	if c.Metrics.Listen != "" {
		if _, _, err := net.SplitHostPort(c.Metrics.Listen); err != nil {
			return bad("metrics.listen", "%q is not host:port (e.g. 127.0.0.1:9850) or empty: %v", c.Metrics.Listen, err)
		}
	}
	if c.Log.Format, err = oneOf(v, "log.format", "text", "json"); err != nil {
		return err
	}
	return nil
}
