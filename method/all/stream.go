package all

import (
	"github.com/natreveal/natreveal/method"
	"github.com/natreveal/natreveal/method/httpheader"
	"github.com/natreveal/natreveal/method/proxyprotocol"
	"github.com/natreveal/natreveal/stream"
)

// Stream fills sc's per-method part from the payload methods e enables,
// each from its configuration block: the flows they select and what they
// insert into them (package stream). The common settings (HOST_ID text
// form, marks, the table's bound) are the caller's.
func (c *Configs) Stream(e method.Env, sc *stream.Config) {
	for _, m := range List {
		if !e.Has(m.Name) {
			continue
		}
		switch m.Name {
		case httpheader.Name:
			c.HTTPHeader.Stream(sc)
		case proxyprotocol.Name:
			c.ProxyProtocol.Stream(sc)
		}
	}
}
