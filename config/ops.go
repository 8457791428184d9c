package config

import (
	"path/filepath"
	"time"

	"github.com/natreveal/natreveal/internal/unixsock"
	"github.com/natreveal/natreveal/method"
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
	if !HTTPEndpoint {
		// Built without the HTTP server (build_router.go): the default
		// means no endpoint, any other address cannot be served.
		if c.Metrics.Listen == DefaultMetricsListen {
			c.Metrics.Listen = ""
		} else if c.Metrics.Listen != "" {
			return bad("metrics.listen", "%q: this build serves no HTTP (tag natreveal_router); set it empty and use metrics.textfile", c.Metrics.Listen)
		}
	}
	if c.Metrics.Listen != "" {
		if err := method.ListenAddr("metrics.listen", c.Metrics.Listen, DefaultMetricsListen+`, or "" for none`); err != nil {
			return err
		}
	}
	if c.Metrics.Textfile = k.Metrics.Textfile; c.Metrics.Textfile != "" && !filepath.IsAbs(c.Metrics.Textfile) {
		return bad("metrics.textfile", "%q is not an absolute path", c.Metrics.Textfile)
	}
	if k.Metrics.Interval < 1 || k.Metrics.Interval > 3600 {
		return bad("metrics.interval", "%d is not 1-3600 seconds", k.Metrics.Interval)
	}
	c.Metrics.Interval = time.Duration(k.Metrics.Interval) * time.Second
	if c.Status.Socket = k.Status.Socket; c.Status.Socket != "" && !filepath.IsAbs(c.Status.Socket) {
		return bad("status.socket", "%q is not an absolute path", c.Status.Socket)
	} else if c.Status.Socket != "" {
		if err := unixsock.CheckPath(c.Status.Socket); err != nil {
			return bad("status.socket", "%v", err)
		}
	}
	if c.Log.Format, err = oneOf("log.format", k.Log.Format, "text", "json"); err != nil {
		return err
	}
	return nil
}
