package httpheader

import "github.com/natreveal/natreveal/stream"

// Stream fills http-header's part of the selected flows' settings: the
// flows it selects (its ports on any server, its destinations) and the
// fields it inserts into their requests (X-Forwarded-For, RFC 7239
// Forwarded).
func (c Config) Stream(sc *stream.Config) {
	sc.HTTPHeader = true
	sc.HTTPSel = nil
	for _, p := range c.Ports {
		sc.HTTPSel = append(sc.HTTPSel, stream.Selector{Port: p})
	}
	for _, d := range c.Destinations {
		sc.HTTPSel = append(sc.HTTPSel, stream.Selector{Prefix: d.Prefix, Port: d.Port, OnAck: d.OnAck})
	}
	sc.HTTPFields = stream.HTTPFields{XFF: c.XFF, Forwarded: c.Forwarded}
}
