package main

import (
	"bytes"
	"strings"
	"testing"
)

// portset plan refuses a configuration whose methods lack port-set: run
// installs no table, so the plan would name hosts the NAT does not map.
func TestPortSetPlanNeedsMethod(t *testing.T) {
	ps := []string{"--inside=100.64.0.0/24", "--port-set-public=192.0.2.1", "--port-set-block-size=252"}
	code, out, errOut := natreveal(t, append([]string{"portset", "plan", "--methods=tcp-option"}, ps...)...)
	if code != 2 || out != "" || strings.Count(errOut, "\n") != 1 || !strings.Contains(errOut, "methods: port-set is not enabled") {
		t.Errorf("without port-set: exit %d, stdout %q, stderr %q; want exit 2, one line naming methods", code, out, errOut)
	}
	code, out, errOut = natreveal(t, append([]string{"portset", "plan", "--methods=tcp-option,port-set"}, ps...)...)
	if code != 0 || !strings.Contains(out, `"policy"`) {
		t.Errorf("with port-set: exit %d, stderr %q:\n%s", code, errOut, out)
	}
}

// check warns, without failing, of a block size that leaves inside hosts
// without a block.
func TestCheckPortSetWarning(t *testing.T) {
	c := load(t, "--inside=100.64.0.0/24", "--methods=tcp-option,port-set", "--port-set-public=192.0.2.1", "--port-set-block-size=256")
	w := portSetWarning(c)
	if !strings.Contains(w, "252 of 254 inside hosts") || !strings.Contains(w, "not deterministic") {
		t.Errorf("block size 256: warning %q", w)
	}
	var b bytes.Buffer
	checkMark(&b, "warn", "port-set", w)
	if !strings.HasPrefix(b.String(), "warn port-set   block_size: 256") {
		t.Errorf("line %q", b.String())
	}
	if w := portSetWarning(load(t, "--inside=100.64.0.0/24", "--methods=tcp-option,port-set", "--port-set-public=192.0.2.1", "--port-set-block-size=252")); w != "" {
		t.Errorf("block size 252 gives every host a block: warning %q", w)
	}
	if w := portSetWarning(load(t, "--inside=100.64.0.0/24", "--methods=tcp-option", "--port-set-public=192.0.2.1", "--port-set-block-size=256")); w != "" {
		t.Errorf("port-set not enabled: warning %q", w)
	}
}
