package config

import (
	"strings"
	"testing"
	"time"
)

func TestIPIDKernel(t *testing.T) {
	c, err := load(t, "ip_id:\n  kernel_size: 100\n  kernel_timeout: 90m\n", nil,
		"--inside", "100.64.0.0/10", "--methods", "ip-id", "--ip-id-kernel")
	if err != nil {
		t.Fatal(err)
	}
	if k := c.IPIDKernel; !k.Enabled || k.Size != 100 || k.Timeout != 90*time.Minute {
		t.Fatalf("ip_id.kernel keys: %+v", k)
	}
	c, err = load(t, "", nil, "--inside", "100.64.0.0/10", "--methods", "ip-id")
	if err != nil || c.IPIDKernel.Enabled || c.IPIDKernel.Size != 65536 || c.IPIDKernel.Timeout != time.Hour {
		t.Fatalf("defaults: %+v, %v", c.IPIDKernel, err)
	}
	for _, bad := range []struct {
		file string
		args []string
		key  string
	}{
		{"", []string{"--methods", "tcp-option", "--ip-id-kernel"}, "ip_id.kernel"},
		{"", []string{"--methods", "ip-id", "--placement", "post-nat", "--ip-id-kernel"}, "ip_id.kernel"},
		{"", []string{"--methods", "ip-id", "--ip-id-scope", "new", "--ip-id-kernel"}, "ip_id.kernel"},
		{"ip_id:\n  kernel_timeout: soon\n", []string{"--methods", "ip-id"}, "ip_id.kernel_timeout"},
		{"ip_id:\n  kernel_size: 0\n", []string{"--methods", "ip-id"}, "ip_id.kernel_size"},
	} {
		_, err := load(t, bad.file, nil, append([]string{"--inside", "100.64.0.0/10"}, bad.args...)...)
		if err == nil || !strings.HasPrefix(err.Error(), bad.key+":") {
			t.Errorf("%q %v: error %v, want one about %s", bad.file, bad.args, err, bad.key)
		}
	}
}
