package control

import (
	"errors"
	"net"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestQueryServe(t *testing.T) {
	path := filepath.Join(t.TempDir(), "run", "c.sock")
	if _, err := Query(path, time.Second); !errors.Is(err, ErrNoDaemon) {
		t.Fatalf("no socket: %v, want ErrNoDaemon", err)
	}
	s, err := Listen(path, func() Snapshot { return Snapshot{Version: "v1", Counters: map[string]uint64{"packets": 3}} })
	if err != nil {
		t.Fatal(err)
	}
	got, err := Query(path, time.Second)
	if err != nil || got.Version != "v1" || got.Counters["packets"] != 3 {
		t.Fatalf("Query = %+v, %v", got, err)
	}
	if _, err := Listen(path, nil); err == nil {
		t.Fatal("a second daemon took over a live socket")
	}
	s.Close()
	if _, err := Query(path, time.Second); !errors.Is(err, ErrNoDaemon) {
		t.Fatalf("after Close: %v, want ErrNoDaemon", err)
	}
	// A listener that never answers (a stopped daemon).
	ln, err := net.Listen("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	if _, err := Query(path, 200*time.Millisecond); !errors.Is(err, ErrNoAnswer) {
		t.Fatalf("silent listener: %v, want ErrNoAnswer", err)
	}
}

func TestParseQueues(t *testing.T) {
	in := "    0 123456     0 2 65531     0     0       42  1\n    1      0     3 2 65531     7     1        9  1\n"
	qs, err := ParseQueues(strings.NewReader(in))
	if err != nil {
		t.Fatal(err)
	}
	if len(qs) != 2 || qs[0] != (Queue{Num: 0, PeerPortID: 123456, CopyMode: 2, CopyRange: 65531, IDSequence: 42}) ||
		qs[1].Queued != 3 || qs[1].Dropped != 7 || qs[1].UserDropped != 1 {
		t.Fatalf("ParseQueues = %+v", qs)
	}
	if _, err := ParseQueues(strings.NewReader("0 1 2\n")); err == nil {
		t.Fatal("a short line parsed")
	}
}

func TestVerdict(t *testing.T) {
	snap := &Snapshot{Methods: []string{"tcp-option"}, Table: "natreveal", Families: []string{"ip"}, QueueNum: 4, QueueCount: 2, Installed: true, PacketMethods: true}
	all := Facts{Tables: map[string]bool{"ip natreveal": true}, Queues: []Queue{{Num: 4, PeerPortID: 9}, {Num: 5, PeerPortID: 9}}}
	sel := &Snapshot{Methods: []string{"http-header"}, Table: "natreveal", Families: []string{"ip"}, QueueNum: 4, QueueCount: 2, SelectQueues: 2, Installed: true, PacketMethods: true}
	// Started, the packet path not yet: QueueCount and Families are 0.
	starting := &Snapshot{Methods: []string{"tcp-option"}, Table: "natreveal", PacketMethods: true}
	portSet := &Snapshot{Methods: []string{"port-set"}, Table: "natreveal", PortSetTable: "ip natreveal_portset", PortSetInstalled: true}
	portSetUp := Facts{Tables: map[string]bool{"ip natreveal_portset": true}}
	both := &Snapshot{Methods: []string{"tcp-option", "port-set"}, Table: "natreveal", Families: []string{"ip"}, QueueNum: 4, QueueCount: 2,
		Installed: true, PacketMethods: true, PortSetTable: "ip natreveal_portset", PortSetInstalled: true}
	selAll := append(all.Queues, Queue{Num: 6, PeerPortID: 9}, Queue{Num: 7, PeerPortID: 9})
	for _, c := range []struct {
		name string
		snap *Snapshot
		err  error
		f    Facts
		ok   bool
		want string
	}{
		{"marking", snap, nil, all, true, "marking"},
		{"no daemon", nil, ErrNoDaemon, Facts{}, false, "no daemon"},
		{"stopped", nil, ErrNoAnswer, Facts{}, false, "does not answer"},
		{"killed", nil, ErrNoDaemon, Facts{Tables: map[string]bool{"ip natreveal": true}}, false, "queue unbound"},
		{"closing", nil, ErrNoDaemon, Facts{Tables: map[string]bool{"ip natreveal": true}, Closing: true}, false, "stopped: " + ErrNoDaemon.Error() + "; table ip natreveal is the closing table"},
		{"table gone", snap, nil, Facts{Queues: all.Queues}, false, "table missing: table ip natreveal"},
		{"queue gone", snap, nil, Facts{Tables: all.Tables, Queues: all.Queues[:1]}, false, "queue unbound: no listener on queue 5"},
		{"selected flows' queue gone", sel, nil, Facts{Tables: all.Tables, Queues: all.Queues[:2]}, false, "queue unbound: no listener on queue 6, 7"},
		{"selected flows' queues bound", sel, nil, Facts{Tables: all.Tables, Queues: selAll}, true, "marking"},
		{"port-set only", portSet, nil, portSetUp, true, "running: port-set (no queue; table ip natreveal_portset installed)"},
		{"ident only", &Snapshot{Methods: []string{"ident"}}, nil, Facts{}, true, "running: ident (no queue, no ruleset)"},
		{"starting", starting, nil, Facts{}, false, "not marking: the daemon has not installed its ruleset (starting or stopping)"},
		{"starting, queues known", &Snapshot{Methods: []string{"tcp-option"}, Table: "natreveal", Families: []string{"ip"}, QueueNum: 4, QueueCount: 2, PacketMethods: true},
			nil, all, false, "not marking: the daemon has not installed its ruleset"},
		{"port-set starting", &Snapshot{Methods: []string{"port-set"}, Table: "natreveal", PortSetTable: "ip natreveal_portset"}, nil, Facts{}, false,
			"not marking: the daemon has not installed its ruleset"},
		{"port-set table gone", portSet, nil, Facts{}, false, "table missing: table ip natreveal_portset"},
		{"both, port-set table gone", both, nil, all, false, "table missing: table ip natreveal_portset gone"},
		{"both", both, nil, Facts{Tables: map[string]bool{"ip natreveal": true, "ip natreveal_portset": true}, Queues: all.Queues}, true, "marking"},
	} {
		ok, line := Verdict(c.snap, c.err, c.f, "natreveal", []string{"ip", "ip6"})
		if ok != c.ok || !strings.Contains(line, c.want) {
			t.Errorf("%s: %v %q, want %v %q", c.name, ok, line, c.ok, c.want)
		}
	}
}
