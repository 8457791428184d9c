package test

import (
	"os"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/natreveal/natreveal/lab"
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

// A stop with selected flows open leaves the closing table; a next run with
// another `table` removes it once its own table is in, so that its chain
// does not clear the new run's select bit and the new run's flows carry
// their HOST_ID. (Left there, a new connection's request reached the server
// with the client's own X-Forwarded-For.)
func TestRunRemovesClosingTableOfOtherName(t *testing.T) {
	l := payloadLab(t)
	startHTTP(t, l)
	cfg := writeConfig(t, keptYAML)
	d := startDaemon(t, l, "--config", cfg)
	dialKeptHTTP(t, l, 1, 2) // open at the stop: the closing table stays
	d.stopLog(t)
	if !strings.Contains(listTables(t, l), "table ip natreveal\n") {
		t.Fatalf("no closing table after the stop:\n%s", listTables(t, l))
	}
	d = startDaemon(t, l, "--config", cfg, "--table", "other")
	d.waitLog(t, "removed table ip natreveal: the closing table an earlier run left", 1)
	if got := listTables(t, l); strings.Contains(got, "table ip natreveal\n") || !strings.Contains(got, "table ip other\n") {
		t.Errorf("tables after the second start:\n%s", got)
	}
	dialKeptHTTP(t, l, 1, 2) // each request answered with the HOST_ID
	d.stopLog(t)
}

func listTables(t *testing.T, l *lab.Lab) string {
	t.Helper()
	out, err := l.Exec(l.NAT, "nft", "list", "tables")
	if err != nil {
		t.Fatal(err)
	}
	return out
}
