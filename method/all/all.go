// Package all is the method registry: the one list of natreveal's HOST_ID
// methods, and the configuration blocks of those that have moved into their
// own package. Config, rules, the packet path, metrics, the server-side
// readers, the lab and the bench read the methods from here.
package all

import (
	"github.com/natreveal/natreveal/method"
	"github.com/natreveal/natreveal/method/destopt"
	"github.com/natreveal/natreveal/method/hip"
	"github.com/natreveal/natreveal/method/httpheader"
	"github.com/natreveal/natreveal/method/ident"
	"github.com/natreveal/natreveal/method/ipid"
	"github.com/natreveal/natreveal/method/ipoption"
	"github.com/natreveal/natreveal/method/portset"
	"github.com/natreveal/natreveal/method/proxyprotocol"
	"github.com/natreveal/natreveal/method/tcpoption"
)

// List is every method, in the order messages, --help and the
// documentation name them. Adding a method is one line here.
var List = []method.Method{
	tcpoption.Method,
	ipid.Method,
	ipoption.Method,
	destopt.Method,
	httpheader.Method,
	proxyprotocol.Method,
	portset.Method,
	ident.Method,
	hip.Method,
}

// Keys holds the methods' configuration blocks, each under its section;
// config.Keys embeds it, so each block keeps its section name. The order
// is that of the configuration's documentation.
type Keys struct {
	TCPOption     tcpoption.Keys     `mapstructure:"tcp_option"`
	IPID          ipid.Keys          `mapstructure:"ip_id"`
	IPOption      ipoption.Keys      `mapstructure:"ip_option"`
	DestOpt       destopt.Keys       `mapstructure:"dest_opt"`
	Ident         ident.Keys         `mapstructure:"ident"`
	HTTPHeader    httpheader.Keys    `mapstructure:"http_header"`
	ProxyProtocol proxyprotocol.Keys `mapstructure:"proxy_protocol"`
	PortSet       portset.Keys       `mapstructure:"port_set"`
}

// Configs holds the validated blocks; config.Config embeds it.
type Configs struct {
	TCPOption     tcpoption.Config
	IPID          ipid.Config
	IPIDKernel    ipid.KernelConfig // ip-id's in-kernel path (ip_id.kernel*)
	IPOption      ipoption.Config
	DestOpt       destopt.Config
	Ident         ident.Config
	HTTPHeader    httpheader.Config
	ProxyProtocol proxyprotocol.Config
	PortSet       portset.Config
}

// Validate checks every block of k against e, in Keys' order; the first
// error is a *method.KeyError.
func (k *Keys) Validate(e method.Env) (Configs, error) {
	var c Configs
	var err error
	if c.TCPOption, err = k.TCPOption.Validate(e); err != nil {
		return c, err
	}
	if c.IPID, c.IPIDKernel, err = k.IPID.Validate(e); err != nil {
		return c, err
	}
	if c.IPOption, err = k.IPOption.Validate(e); err != nil {
		return c, err
	}
	if c.DestOpt, err = k.DestOpt.Validate(e); err != nil {
		return c, err
	}
	if c.Ident, err = k.Ident.Validate(e); err != nil {
		return c, err
	}
	if c.HTTPHeader, err = k.HTTPHeader.Validate(e); err != nil {
		return c, err
	}
	if c.ProxyProtocol, err = k.ProxyProtocol.Validate(e); err != nil {
		return c, err
	}
	if c.PortSet, err = k.PortSet.Validate(e); err != nil {
		return c, err
	}
	return c, nil
}

// Needs returns the ruleset needs of the named method's block and whether it
// declares any.
func (c *Configs) Needs(name string) (method.Needs, bool) {
	switch name {
	case tcpoption.Name:
		return c.TCPOption.Needs(), true
	case ipid.Name:
		return c.IPID.Needs(), true
	case ipoption.Name:
		return c.IPOption.Needs(), true
	case destopt.Name:
		return c.DestOpt.Needs(), true
	case ident.Name:
		return c.Ident.Needs(), true
	case httpheader.Name:
		return c.HTTPHeader.Needs(), true
	case proxyprotocol.Name:
		return c.ProxyProtocol.Needs(), true
	case portset.Name:
		return c.PortSet.Needs(), true
	}
	return method.Needs{}, false
}

// Steps returns the packet steps of the methods e enables, in registry
// order (the handler orders them by layer, then by this order).
func (c *Configs) Steps(e method.Env) []method.Step {
	var out []method.Step
	for _, m := range List {
		if !e.Has(m.Name) {
			continue
		}
		switch m.Name {
		case tcpoption.Name:
			out = append(out, c.TCPOption.Step())
		case ipid.Name:
			out = append(out, c.IPID.Step())
		case ipoption.Name:
			out = append(out, c.IPOption.Step())
		case destopt.Name:
			out = append(out, c.DestOpt.Step())
		}
	}
	return out
}

// Enabled ORs the Needs of the methods e enables: the ruleset and packet
// path they need together.
func (c *Configs) Enabled(e method.Env) method.Needs {
	var n method.Needs
	for _, m := range List {
		if mn, ok := c.Needs(m.Name); ok && e.Has(m.Name) {
			n = n.Or(mn)
		}
	}
	return n
}

// Lookup returns the method named name.
func Lookup(name string) (method.Method, bool) {
	for _, m := range List {
		if m.Name == name {
			return m, true
		}
	}
	return method.Method{}, false
}

// Names returns the names of the methods for which keep reports true, in
// List's order.
func Names(keep func(method.Method) bool) []string {
	var out []string
	for _, m := range List {
		if keep(m) {
			out = append(out, m.Name)
		}
	}
	return out
}

// Router returns the names of the methods a NAT configures.
func Router() []string { return Names(func(m method.Method) bool { return m.Router }) }

// Reveal returns the names of the methods the server-side packet decoder
// reads: those it reads by default first, then the others.
func Reveal() []string {
	def := Names(func(m method.Method) bool { return m.Decoder.Reveal && m.Decoder.Default })
	return append(def, Names(func(m method.Method) bool { return m.Decoder.Reveal && !m.Decoder.Default })...)
}

// RevealDefault returns the names of the methods a server reads when told
// nothing.
func RevealDefault() []string {
	return Names(func(m method.Method) bool { return m.Decoder.Reveal && m.Decoder.Default })
}
