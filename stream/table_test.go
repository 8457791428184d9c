package stream

import (
	"net/netip"
	"testing"

	"github.com/natreveal/natreveal/packet"
	"github.com/natreveal/natreveal/queue"
)

// One inside host filling the selected-flow table with idle connections
// (every source port, so every shard) takes at most its share: another
// host's flows are still selected; past any bound a SYN to select is
// dropped (fail closed), never passed to leave unrewritten (issue 17 item 9).
func TestSelectedFlowsPerHost(t *testing.T) {
	tab := NewStreams(128, 0)
	attacker := netip.MustParseAddr("100.64.0.66")
	held := 0
	for port := 1000; port < 3000; port++ {
		k := FlowKey{Proto: 6, Inside: attacker, InsidePort: uint16(port), Server: selServer, ServerPort: 80}
		if tab.start(k, newStream(1, nil, newHTTPParser(&queue.Counters{}))) == started {
			held++
		}
	}
	if held != 16 {
		t.Fatalf("one host holds %d selected flows, want 128/8 = 16", held)
	}
	for h := byte(1); h <= 7; h++ {
		other := netip.AddrFrom4([4]byte{100, 64, 1, h})
		for port := 1000; port < 1016; port++ {
			k := FlowKey{Proto: 6, Inside: other, InsidePort: uint16(port), Server: selServer, ServerPort: 80}
			if r := tab.start(k, newStream(1, nil, newHTTPParser(&queue.Counters{}))); r != started {
				t.Fatalf("host %v's flow %d not selected: %d", other, port, r)
			}
		}
	}
	// The table is full now (128): the next flow is refused, whoever's.
	k := FlowKey{Proto: 6, Inside: netip.MustParseAddr("100.64.0.9"), InsidePort: 1, Server: selServer, ServerPort: 80}
	if r := tab.start(k, newStream(1, nil, nil)); r != fullAll {
		t.Fatalf("full table: %d", r)
	}
	// A flow that ends gives its place back; a retransmitted SYN takes none.
	gone := FlowKey{Proto: 6, Inside: attacker, InsidePort: 1000, Server: selServer, ServerPort: 80}
	if !tab.Delete(gone) {
		t.Fatal("flow not held")
	}
	if r := tab.start(k, newStream(1, nil, nil)); r != started {
		t.Fatalf("after a delete: %d", r)
	}
	if r := tab.start(k, newStream(2, nil, nil)); r != started || tab.Len() != 128 || tab.total.Load() != 128 {
		t.Fatalf("retransmitted SYN: %d, held %d, counted %d", r, tab.Len(), tab.total.Load())
	}
	if n := tab.DeleteIf(func(*stream) bool { return true }); n != 128 || tab.total.Load() != 0 || len(tab.hosts[hostShard(attacker)].m) != 0 {
		t.Fatalf("DeleteIf %d, counted %d", n, tab.total.Load())
	}
}

// The engine drops the SYN of a flow it should select but cannot hold.
func TestSelectFailsClosed(t *testing.T) {
	var st queue.Counters
	e := New(Config{HTTPHeader: true, HTTPSel: []Selector{{Port: 80}}, HTTPFields: HTTPFields{XFF: true},
		IDBits: 16, SelectBit: 0x10, MaxSelected: 8, MaxSelectedPerHost: 2}, &st)
	for port := 1; port <= 3; port++ {
		b, _, _ := seg(-1, 0, packet.FlagSYN, nil)
		pv, _ := packet.Parse(b, len(b))
		k := FlowKey{Proto: 6, Inside: selClient, InsidePort: uint16(port), Server: selServer, ServerPort: 80}
		v := e.Original(k, 7, true, &pv, b, queue.Meta{}, 1500, queue.Verdict{})
		if want := port > 2; v.Drop != want {
			t.Errorf("SYN %d: drop %v, want %v", port, v.Drop, want)
		}
	}
	if st.Load(queue.SelHostFull) != 1 || st.Load(queue.SelFlows) != 2 {
		t.Errorf("select-host-full %d, select-flows %d", st.Load(queue.SelHostFull), st.Load(queue.SelFlows))
	}
}
