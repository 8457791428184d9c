package table

import (
	"reflect"
	"slices"
	"testing"

	"github.com/spf13/pflag"

	"github.com/natreveal/natreveal/config"
	"github.com/natreveal/natreveal/lab"
	"github.com/natreveal/natreveal/method"
	"github.com/natreveal/natreveal/method/all"
)

// The policy the NAT builds from the lab's flags is the one the lab's
// server looks source ports up in, and it has an RFC 7422 record (every
// host of the /24 gets a block).
func TestPortSetPolicyMatchesNAT(t *testing.T) {
	fs := pflag.NewFlagSet("run", pflag.ContinueOnError)
	config.AddFlags(fs)
	i := slices.IndexFunc(all.List, func(m method.Method) bool { return m.Lab.Reading == method.PortSetLookup })
	if err := fs.Parse(append([]string{"--inside", lab.InsidePrefix}, portSetArgs(all.List[i])...)); err != nil {
		t.Fatal(err)
	}
	c, err := config.Load(fs, func(string) string { return "" })
	if err != nil {
		t.Fatal(err)
	}
	pub, err := published()
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(c.PortSet.Policy, pub) {
		t.Fatalf("NAT policy %+v\nserver's %+v", c.PortSet.Policy, pub)
	}
	if line, err := pub.LogLine(); err != nil || line != "100.64.0.0:24:192.0.2.1:32:2:252:0:0-1023" {
		t.Errorf("record %q, %v", line, err)
	}
	for _, c := range []struct {
		src  string
		id   uint32
		want bool
	}{
		{"192.0.2.1:1276", 2, true}, {"[::ffff:192.0.2.1]:1600", 3, true},
		{lab.RouterServer + ":1276", 0, false}, {"192.0.2.1:80", 0, false},
	} {
		id, ok, err := portSetLookup(c.src)
		if err != nil || ok != c.want || id != c.id {
			t.Errorf("lookup %s = %#x, %v, %v", c.src, id, ok, err)
		}
	}
}
