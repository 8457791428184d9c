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

// Keys holds the configuration blocks of the methods that declare their own;
// config.Keys embeds it, so each block keeps its section name.
type Keys struct {
	DestOpt destopt.Keys `mapstructure:"dest_opt"`
}

// Configs holds the validated blocks; config.Config embeds it.
type Configs struct {
	DestOpt destopt.Config
}

// Validate checks every block of k.
func (k *Keys) Validate() (Configs, error) {
	var c Configs
	var err error
	if c.DestOpt, err = k.DestOpt.Validate(); err != nil {
		return c, err
	}
	return c, nil
}

// Needs returns the ruleset needs of the named method's block and whether it
// declares any.
func (c *Configs) Needs(name string) (method.Needs, bool) {
	switch name {
	case destopt.Name:
		return c.DestOpt.Needs(), true
	}
	return method.Needs{}, false
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
