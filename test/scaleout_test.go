package test

// Several active NATs (issue 14, scale-out): two NAT boxes both forwarding
// at once, the inside prefix split between them (100.64.0.0/25 through n1,
// 100.64.0.128/25 through n2: each host's gateway), each box its own public
// address, natreveal on both with one configuration but port_set.public.
// One published port-set policy (RFC 7422) covers both public addresses;
// each box installs the blocks on its own address only.
//
//	c1 100.64.0.2   ─┐                 ┌─ n1 .251 ── 192.0.2.12 ─┐
//	c3 100.64.0.3   ─┼─ [lan] br0 ─────┤                         ├── [wan] br0 ── 192.0.2.2 [srv] 198.51.100.1
//	c2 100.64.0.130 ─┘                 └─ n2 .252 ── 192.0.2.13 ─┘
//
// c3 then moves from n1 to n2 (its route changes, as when a split is
// redrawn or an ECMP path fails).

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/netip"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/natreveal/natreveal/lab"
	"github.com/natreveal/natreveal/method/ipoption"
	"github.com/natreveal/natreveal/portset"
)

func TestSeveralActiveNATs(t *testing.T) {
	start := time.Now()
	needRoot(t)
	srvBin := serverBinary(t)
	n1 := &natBox{name: "n1", lanAddr: "100.64.0.251", pubAddr: "192.0.2.12"}
	n2 := &natBox{name: "n2", lanAddr: "100.64.0.252", pubAddr: "192.0.2.13"}
	hosts := []struct {
		addr string
		id   uint32  // lower16
		box  *natBox // its gateway now
		// block is the box whose public address holds its port-set block.
		block *natBox
	}{{"100.64.0.2", 0x0002, n1, n1}, {"100.64.0.130", 0x0082, n2, n2}, {"100.64.0.3", 0x0003, n1, n1}}
	var cl []natClient
	for _, h := range hosts {
		cl = append(cl, natClient{h.addr, h.box.lanAddr})
	}
	l := newNATLab(t, "nrsc", []*natBox{n1, n2}, cl, "")

	// One policy over both public addresses: sequential assignment gives the
	// lower half of the /24 (hosts 0-126) n1's address, the upper half n2's.
	pol, err := portset.Policy{Inside: []netip.Prefix{netip.MustParsePrefix(lab.InsidePrefix)},
		Public: []netip.Addr{netip.MustParseAddr(n1.pubAddr), netip.MustParseAddr(n2.pubAddr)}, BlockSize: 256}.Normalize()
	if err != nil {
		t.Fatal(err)
	}
	b, _ := json.Marshal(pol)
	policyFile := l.write(t, "policy.json", string(b))
	// The blocks end at 1024 + 127*256 - 1 = 33535: the operator's own SNAT
	// of each box, for a host without a block there, takes the ports past
	// them (RFC 7422 §2's overflow pool), so no lookup in the policy can
	// name a wrong host for it.
	firstFree := 1024 + pol.Ratio*pol.BlockSize
	cfgs := map[*natBox]string{}
	for _, bx := range []*natBox{n1, n2} {
		if err := (&lab.Lab{}).Nft(bx.ns, fmt.Sprintf(`table ip nat {
	chain postrouting {
		type nat hook postrouting priority srcnat; policy accept;
		oifname "pub" meta l4proto { tcp, udp } snat to %[1]s:%[2]d-65535
		oifname "pub" snat to %[1]s
	}
}
`, bx.pubAddr, firstFree)); err != nil {
			t.Fatal(err)
		}
		// One configuration; only port_set.public differs.
		cfgs[bx] = l.write(t, bx.name+".yaml", `inside: [100.64.0.0/24]
methods: [tcp-option, ip-id, ip-option, port-set]
port_set:
  policy_file: `+policyFile+`
  public: [`+bx.pubAddr+"]\n")
	}

	// The published plan is the same from either box; each box's table
	// holds its own hosts' blocks.
	plan := func(bx *natBox, format string) []byte {
		out, err := exec.Command(binary, "portset", "plan", "--config", cfgs[bx], "--format", format).CombinedOutput()
		if err != nil {
			t.Fatalf("%s: portset plan --format %s: %v: %s", bx.name, format, err, out)
		}
		return out
	}
	published := plan(n1, "json")
	if p2 := plan(n2, "json"); !bytes.Equal(published, p2) {
		t.Errorf("the boxes publish different plans:\n%s\n%s", published, p2)
	}
	var doc portset.PlanDoc
	if err := json.Unmarshal(published, &doc); err != nil || len(doc.Policy.Public) != 2 || doc.Deterministic != 254 {
		t.Fatalf("published plan: %v: %.300s", err, published)
	}
	publishedFile := l.write(t, "published.json", string(published))
	// RFC 7422 §3: each record is "[timestamp]:" then the policy's fields.
	// The fields must be the same from either box, byte for byte; the
	// timestamp is the moment each plan command ran (two processes, two
	// moments), whole seconds in time.ANSIC, so the two may straddle a
	// second boundary: each must lie within the window both commands ran
	// in, not equal the other's.
	before := time.Now().UTC().Truncate(time.Second)
	r1, r2 := plan(n1, "rfc7422"), plan(n2, "rfc7422")
	after := time.Now().UTC()
	ts1, rec1, err1 := splitRecord(r1)
	ts2, rec2, err2 := splitRecord(r2)
	switch {
	case err1 != nil || err2 != nil:
		t.Errorf("the boxes' RFC 7422 records: %v, %v:\n%s%s", err1, err2, r1, r2)
	case !bytes.Equal(rec1, rec2):
		t.Errorf("the boxes' RFC 7422 records differ:\n%s%s", r1, r2)
	default:
		for _, ts := range []time.Time{ts1, ts2} {
			if ts.Before(before) || ts.After(after) {
				t.Errorf("RFC 7422 record timestamp %v, want within the plan commands' window %v to %v:\n%s%s", ts, before, after, r1, r2)
			}
		}
	}
	for _, c := range []struct {
		bx        *natBox
		has, lack string
	}{{n1, "100.64.0.127 :", "100.64.0.128 :"}, {n2, "100.64.0.128 :", "100.64.0.127 :"}} {
		if nft := string(plan(c.bx, "nft")); !strings.Contains(nft, c.has) || strings.Contains(nft, c.lack) {
			t.Errorf("%s's table: want %q, not %q:\n%.600s", c.bx.name, c.has, c.lack, nft)
		}
	}

	for _, bx := range []*natBox{n1, n2} {
		l.startNatreveal(t, bx, cfgs[bx])
	}
	s, err := lab.Listen(l.srv, haSrv+":9001")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)

	type conn struct {
		host  int
		label string
		via   *natBox
	}
	var conns []conn
	round := func(name string, hs ...int) {
		for k := range 3 {
			for _, i := range hs {
				c := conn{i, fmt.Sprintf("%s-c%d-%d", name, i+1, k), hosts[i].box}
				if err := lab.Connect(l.clients[i], haSrv+":9001", []byte(fmt.Sprintf("%-16s", c.label)), 10*time.Second); err != nil {
					t.Fatalf("%s from %s: %v", c.label, hosts[i].addr, err)
				}
				conns = append(conns, c)
			}
		}
	}
	round("a", 0, 1, 2)
	// c3 moves to n2, which has no block for it: its HOST_ID methods are
	// stateless and give the same HOST_ID there; its port-set answer
	// comes from n2's mapping log.
	ipOrFatal(t, "-n", l.clients[2], "route", "replace", "default", "via", n2.lanAddr)
	hosts[2].box = n2
	round("b", 0, 1, 2)
	time.Sleep(300 * time.Millisecond)

	seen := map[string]lab.Seen{}
	for _, x := range s.Seen() {
		seen[strings.TrimSpace(x.Head)] = x
	}
	type tally struct{ conns, rightID, viaBox, portSet, mapping int }
	tallies := map[string]*tally{}
	var srcs []string
	var srcConn []conn
	for _, c := range conns {
		h := hosts[c.host]
		key := fmt.Sprintf("%s via %s", h.addr, c.via.name)
		if tallies[key] == nil {
			tallies[key] = &tally{}
		}
		ty := tallies[key]
		ty.conns++
		x, ok := seen[c.label]
		if !ok {
			t.Errorf("%s: not seen by the server", c.label)
			continue
		}
		optID, _, optOK := ipoption.IPOptionHostID(x.SYN, 30)
		if x.HasOption && x.OptionID == h.id && uint32(x.IPID) == h.id && optOK && optID == h.id {
			ty.rightID++
		} else {
			t.Errorf("%s from %s via %s: tcp-option %v %#x, ip-id %#x, ip-option %v %#x, want %#x",
				c.label, h.addr, c.via.name, x.HasOption, x.OptionID, x.IPID, optOK, optID, h.id)
		}
		src := netip.MustParseAddrPort(x.Src)
		if src.Addr().String() == c.via.pubAddr {
			ty.viaBox++
		} else {
			t.Errorf("%s via %s: the server saw %s", c.label, c.via.name, src)
		}
		srcs = append(srcs, x.Src)
		srcConn = append(srcConn, c)
	}

	// The server's side: the published plan names the host behind every
	// port of a block, whichever box translated it; a host that crossed a
	// box without its block is in that box's mapping log (RFC 6888 §4).
	out, _ := exec.Command(srvBin, append([]string{"portset", "lookup", "--policy", publishedFile}, srcs...)...).Output()
	answers := strings.Split(strings.TrimSpace(string(out)), "\n")
	if len(answers) != len(srcs) {
		t.Fatalf("portset lookup: %d answers for %d addresses:\n%s", len(answers), len(srcs), out)
	}
	at := time.Now().UTC().Add(-100 * time.Millisecond).Format(time.RFC3339Nano)
	for i, c := range srcConn {
		h := hosts[c.host]
		ty := tallies[fmt.Sprintf("%s via %s", h.addr, c.via.name)]
		var a struct{ Public, Inside, HostID, Error string }
		json.Unmarshal([]byte(answers[i]), &a)
		switch {
		case c.via == h.block && a.Inside == h.addr:
			ty.portSet++
		case c.via != h.block && a.Inside == "" && a.Error != "":
			// Not in a block: the mapping log answers.
			mo, err := exec.Command(srvBin, "mapping", "lookup", "--log", n1.mappingLog, "--log", n2.mappingLog, "--at", at, srcs[i]).CombinedOutput()
			var m struct{ Inside, HostID string }
			json.Unmarshal(mo, &m)
			if err == nil && m.Inside == h.addr {
				ty.mapping++
			} else {
				t.Errorf("%s via %s (%s): mapping lookup: %v: %s", c.label, c.via.name, srcs[i], err, mo)
			}
		default:
			t.Errorf("%s via %s (%s): portset lookup %s", c.label, c.via.name, srcs[i], answers[i])
		}
	}

	var tbl strings.Builder
	fmt.Fprintf(&tbl, "\n| host via box | connections | right HOST_ID (tcp-option, ip-id, ip-option) | from the box's own address | named by the published plan (portset lookup) | named by the mapping logs (mapping lookup) |\n|---|---|---|---|---|---|\n")
	for _, key := range []string{"100.64.0.2 via n1", "100.64.0.130 via n2", "100.64.0.3 via n1", "100.64.0.3 via n2"} {
		ty := tallies[key]
		if ty == nil {
			t.Fatalf("no connections %s", key)
		}
		fmt.Fprintf(&tbl, "| %s | %d | %d | %d | %d | %d |\n", key, ty.conns, ty.rightID, ty.viaBox, ty.portSet, ty.mapping)
		if ty.rightID != ty.conns || ty.viaBox != ty.conns || ty.portSet+ty.mapping != ty.conns {
			t.Errorf("%s: %+v", key, *ty)
		}
	}
	t.Logf("several active NATs:%s", tbl.String())
	for _, bx := range []*natBox{n1, n2} {
		if err := bx.natreveal.Stop(); err != nil {
			t.Errorf("%s: natreveal: %v\n%s", bx.name, err, bx.natreveal.Output())
		}
	}
	if d := time.Since(start); d > 90*time.Second {
		t.Errorf("the test took %v, want under 90 s", d)
	}
}

// splitRecord splits an RFC 7422 §3 record, "[timestamp]:fields\n", into
// its timestamp (time.ANSIC, UTC as natreveal portset plan writes it) and
// the fields after "]:".
func splitRecord(rec []byte) (time.Time, []byte, error) {
	rest, bracket := bytes.CutPrefix(rec, []byte("["))
	ts, fields, ok := bytes.Cut(rest, []byte("]:"))
	if !bracket || !ok {
		return time.Time{}, nil, fmt.Errorf("record %q: no \"[timestamp]:\"", rec)
	}
	t, err := time.Parse(time.ANSIC, string(ts))
	if err != nil {
		return time.Time{}, nil, fmt.Errorf("record %q: timestamp: %w", rec, err)
	}
	return t, fields, nil
}
