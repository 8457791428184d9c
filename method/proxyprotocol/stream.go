package proxyprotocol

import "github.com/natreveal/natreveal/stream"

// Stream fills proxy-protocol's part of the selected flows' settings: the
// destinations whose flows get a PROXY header (+ack: on the handshake's
// ACK) and the header's form.
func (c Config) Stream(sc *stream.Config) {
	sc.Proxy = true
	sc.ProxySel = nil
	for _, d := range c.Destinations {
		sc.ProxySel = append(sc.ProxySel, stream.Selector{Prefix: d.Prefix, Port: d.Port, OnAck: d.OnAck})
	}
	sc.ProxyCfg = stream.ProxyConfig{Version: c.Version, CRC32C: c.CRC32C,
		OnAck: c.OnAck, ReplaceClient: c.ClientHeader == "replace"}
}
