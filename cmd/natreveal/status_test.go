package main

import (
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/natreveal/natreveal/internal/control"
)

// status refuses a timeout that leaves no time to answer and a relative
// socket (run refuses a relative status.socket too): exit 2, one line
// naming the flag, rather than a verdict about a daemon it never asked.
func TestStatusBadFlags(t *testing.T) {
	for _, c := range []struct {
		args []string
		flag string
	}{
		{[]string{"--timeout", "0"}, "--timeout"},
		{[]string{"--timeout=-1s"}, "--timeout"},
		{[]string{"--socket", "control.sock"}, "--socket"},
	} {
		code, _, errOut := natreveal(t, append([]string{"status"}, c.args...)...)
		if code != 2 || strings.Count(errOut, "\n") != 1 || !strings.HasPrefix(errOut, "natreveal: "+c.flag+": ") {
			t.Errorf("status %v: exit %d, stderr %q, want 2 and one line naming %s", c.args, code, errOut, c.flag)
		}
	}
}

// The screen: tables-restored beside the tables it counts (not among the
// flows), the kernel's columns named for what they hold, the rules said to
// be a rendering whose counters are the lines above, and a port-set table
// looked for and listed.
func TestPrintStatus(t *testing.T) {
	snap := control.Snapshot{Methods: []string{"tcp-option", "port-set"}, Table: "natreveal", Families: []string{"ip"}, QueueCount: 1,
		Installed: true, PacketMethods: true, PortSetTable: "ip natreveal_portset", PortSetInstalled: true, Rules: "table ip natreveal {\n}\n",
		Counters: map[string]uint64{"packets": 4, "tables-restored": 1, "flows-tracked": 2}}
	dir := t.TempDir()
	s, err := control.Listen(filepath.Join(dir, "c.sock"), func() control.Snapshot { return snap })
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	var asked []string
	rep := status(filepath.Join(dir, "c.sock"), "other", time.Second, func(table string, fams, others []string) control.Facts {
		asked = append(append(asked, table), others...)
		return control.Facts{Tables: map[string]bool{"ip natreveal": true, "ip natreveal_portset": true}, Queues: []control.Queue{{PeerPortID: 77}}}
	})
	if !rep.Marking || !slices.Equal(asked, []string{"natreveal", "ip natreveal_portset"}) {
		t.Fatalf("verdict %q, tables asked %v", rep.Verdict, asked)
	}
	var b strings.Builder
	printStatus(&b, rep)
	screen := b.String()
	for _, want := range []string{"tables     ip natreveal, ip natreveal_portset (put back once after a deletion)\n",
		"flows      flows-tracked 2\n", "queue portid     waiting", "rules (as installed, in natreveal's rendering: their counters are in the lines above"} {
		if !strings.Contains(screen, want) {
			t.Errorf("screen lacks %q:\n%s", want, screen)
		}
	}
	if strings.Count(screen, "tables-restored") != 0 {
		t.Errorf("tables-restored listed as a counter:\n%s", screen)
	}
}
