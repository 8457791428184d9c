package all

import (
	"os"
	"reflect"
	"regexp"
	"testing"

	"github.com/natreveal/natreveal/method"
)

// TestEveryMethodIsAUnit checks that every registered method declares a
// decoder (or where a server reads it instead), counters (or why it has
// none), a lab column and a "## <name>" section in docs/methods.md.
func TestEveryMethodIsAUnit(t *testing.T) {
	doc, err := os.ReadFile("../../docs/methods.md")
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	for _, m := range List {
		if m.Name == "" || seen[m.Name] {
			t.Errorf("method %q: empty or registered twice", m.Name)
		}
		seen[m.Name] = true
		if m.Decoder.Packet == nil && m.Decoder.Why == "" {
			t.Errorf("%s: no decoder, and no word on how a server reads it", m.Name)
		}
		if m.Decoder.Packet != nil {
			if _, _, ok := m.Decoder.Packet(nil); ok {
				t.Errorf("%s: the decoder finds a HOST_ID in no packet", m.Name)
			}
		}
		if len(m.Counters) == 0 && m.NoCounters == "" {
			t.Errorf("%s: no counters, and no word on why", m.Name)
		}
		if m.Lab.Reading == method.NoReading || (m.Lab.Family != 4 && m.Lab.Family != 6) {
			t.Errorf("%s: no lab column (reading %v, family %d)", m.Name, m.Lab.Reading, m.Lab.Family)
		}
		if m.Router && (m.Section == "" || len(m.Lab.NATArgs) == 0) {
			t.Errorf("%s: a router method without a configuration section or NAT arguments", m.Name)
		}
		if m.Family == 0 {
			t.Errorf("%s: marks no address family", m.Name)
		}
		if !regexp.MustCompile(`(?m)^## ` + regexp.QuoteMeta(m.Name) + `$`).Match(doc) {
			t.Errorf("docs/methods.md has no section %q", "## "+m.Name)
		}
	}
}

// TestBlocks checks that each configuration block in Keys sits under its
// method's section and has a validated counterpart in Configs.
func TestBlocks(t *testing.T) {
	kt, ct := reflect.TypeOf(Keys{}), reflect.TypeOf(Configs{})
	for i := range kt.NumField() {
		f := kt.Field(i)
		sec := f.Tag.Get("mapstructure")
		found := false
		for _, m := range List {
			found = found || m.Section == sec
		}
		if !found {
			t.Errorf("block %s: section %q is no method's", f.Name, sec)
		}
		if _, ok := ct.FieldByName(f.Name); !ok {
			t.Errorf("block %s has no field in Configs", f.Name)
		}
	}
	k := Keys{}
	k.TCPOption.Length = 2
	k.IPID.Scope, k.IPID.KernelSize, k.IPID.KernelTimeout = "syn", 1, "0"
	k.IPOption.Type, k.IPOption.Length = 30, 2
	k.DestOpt.Type, k.DestOpt.Length = 0x1E, 2
	k.Ident.Listen = ":113"
	k.ProxyProtocol.Version, k.ProxyProtocol.ClientHeader = 2, "reset"
	c, err := k.Validate(method.Env{})
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range List {
		n, ok := c.Needs(m.Name)
		// Payload and lookup methods carry a HOST_ID of any width (0).
		if ok && n.IDBits != 0 && n.IDBits != 16 {
			t.Errorf("%s: 2-byte HOST_ID gives IDBits %d", m.Name, n.IDBits)
		}
		// Every method whose HOST_ID rides in packets declares its width.
		if m.Decoder.Packet != nil && (!ok || n.IDBits != 16) {
			t.Errorf("%s: in-packet carrier with no 2-byte width (declared %v, IDBits %d)", m.Name, ok, n.IDBits)
		}
	}
}

// TestOrders keeps the method lists that messages and defaults show.
func TestOrders(t *testing.T) {
	for _, c := range []struct {
		got, want []string
	}{
		{Router(), []string{"tcp-option", "ip-id", "ip-option", "dest-opt", "http-header", "proxy-protocol", "port-set", "ident"}},
		{Reveal(), []string{"tcp-option", "ip-option", "dest-opt", "hip", "ip-id"}},
		{RevealDefault(), []string{"tcp-option", "ip-option", "dest-opt", "hip"}},
	} {
		if !reflect.DeepEqual(c.got, c.want) {
			t.Errorf("got %v, want %v", c.got, c.want)
		}
	}
}
