package test

import (
	"os"
	"strings"
	"syscall"
	"testing"
	"time"
)

const keptYAML = "inside: [100.64.0.0/24]\nmethods: [tcp-option, http-header]\nhttp_header:\n  ports: [80]\n  fields: [x-forwarded-for, forwarded]\n"

// A reload that changes marks.select while http-header flows are open is
// refused: those flows carry the old bit in their ct marks, and a ruleset
// following the new one would pass their segments untranslated (the
// server answered them 400 Bad Request).
func TestReloadRefusesMarks(t *testing.T) {
	l := payloadLab(t)
	startHTTP(t, l)
	cfg := writeConfig(t, keptYAML)
	d := startDaemon(t, l, "--config", cfg)
	ks := dialKeptHTTP(t, l, 2, 2)
	if err := os.WriteFile(cfg, []byte(keptYAML+"marks:\n  select: 0x00400000\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	d.Signal(syscall.SIGHUP)
	d.waitLog(t, "reload failed, keeping the running configuration", 1)
	if !strings.Contains(d.Output(), "marks") {
		t.Errorf("the refusal does not name marks:\n%s", d.Output())
	}
	for j, k := range ks {
		if got, err := k.request(5 * time.Second); err != nil || !strings.HasPrefix(got, keptWant) {
			t.Errorf("after the refused reload, kept connection %d: %q %v; want %q", j, got, err, keptWant)
		}
	}
	d.stopLog(t)
}
