package table

import (
	"encoding/json"
	"strings"
	"testing"
	"unicode/utf8"
)

// withBlocks is sample() with the blacklisting row measured: every method
// the lab can block for holds, but ident, where c1 got one through.
func withBlocks() *Result {
	r := sample()
	for i := range r.Methods {
		m := &r.Methods[i]
		bl, ok := blockerFor(m.Name)
		if !ok {
			continue
		}
		b := &Block{Where: bl.where, How: "how " + m.Name,
			Blocked:   BlockCount{Host: "c1", HostID: "0x0002", Attempted: 20, Refused: 20},
			Neighbour: BlockCount{Host: "c2", HostID: "0x0003", Attempted: 20, Completed: 20}}
		if m.Name == "ident" {
			b.Blocked.Completed, b.Blocked.Refused = 1, 19
		}
		m.Block = b
	}
	return r
}

func TestBlockRow(t *testing.T) {
	r := withBlocks()
	md := r.Markdown()
	row := ""
	for ln := range strings.Lines(md) {
		if strings.HasPrefix(ln, "| "+BlockRow+" |") {
			row = ln
		}
	}
	for _, want := range []string{
		"| " + BlockRow + " | – → c1 refused 20/20, c2 completed 20/20 (server kernel) |",
		"| – → c1 refused 20/20, c2 completed 20/20 (application) |",
		"| – → n/a |", // hip
		"| – → c1 refused 19/20, c2 completed 20/20 (application) |",
	} {
		if !strings.Contains(row, want) {
			t.Errorf("blacklisting row lacks %q: %q", want, row)
		}
	}
	if !strings.Contains(md, "\nBlacklisting one host: ") {
		t.Errorf("no legend of the row:\n%s", md)
	}

	b, err := r.JSON()
	if err != nil {
		t.Fatal(err)
	}
	var back Result
	if err := json.Unmarshal(b, &back); err != nil {
		t.Fatal(err)
	}
	for i, m := range back.Methods {
		want := r.Methods[i].Block
		if (m.Block == nil) != (want == nil) || (want != nil && *m.Block != *want) {
			t.Errorf("%s: JSON round trip of the block: %+v, want %+v", m.Name, m.Block, want)
		}
	}
	if !strings.Contains(string(b), `"block": {`) || !strings.Contains(string(b), `"where": "server kernel"`) {
		t.Errorf("JSON lacks the block:\n%s", b)
	}

	out := r.Compact()
	for ln := range strings.Lines(out) {
		if n := utf8.RuneCountInString(strings.TrimSuffix(ln, "\n")); n > Width {
			t.Errorf("line of %d columns: %q", n, ln)
		}
	}
	for _, want := range []string{"blacklisting c1  c1 refused  c2 completed  where", "\nip-id            20/20       20/20         ✓ server kernel\n",
		"\nident            19/20       20/20         ✗ application\n", "Blacklisting one host (RFC 6269 §13.1)"} {
		if !strings.Contains(out, want) {
			t.Errorf("compact table lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, "\nhip   ") && strings.Count(out, "\nhip ") != 1 {
		t.Errorf("hip has a blacklisting row:\n%s", out)
	}

	page := r.HTML()
	for _, want := range []string{"<th>" + esc(BlockRow) + "</th><th>notes</th>", `title="how ip-id"><span class="claim">–</span><span class="meas">c1 refused 20/20, c2 completed 20/20 (server kernel)</span>`,
		`<td class="na"><span class="claim">–</span><span class="meas">n/a</span></td>`} {
		if !strings.Contains(page, want) {
			t.Errorf("page lacks %q", want)
		}
	}
}

// A result without the row (an older lab's) renders no trace of it.
func TestNoBlockRow(t *testing.T) {
	r := sample()
	for name, out := range map[string]string{"markdown": r.Markdown(), "compact": r.Compact(), "html": r.HTML()} {
		if strings.Contains(out, "lacklisting") {
			t.Errorf("%s shows the blacklisting row of a result without it", name)
		}
	}
}

func TestBlockHolds(t *testing.T) {
	ok := &Block{Blocked: BlockCount{Attempted: 5, Refused: 5}, Neighbour: BlockCount{Attempted: 5, Completed: 5}}
	if !ok.Holds() {
		t.Error("a full block does not hold")
	}
	for _, b := range []*Block{nil, {}, {Blocked: BlockCount{Attempted: 5, Refused: 4, Completed: 1}, Neighbour: ok.Neighbour},
		{Blocked: ok.Blocked, Neighbour: BlockCount{Attempted: 5, Completed: 4}}} {
		if b.Holds() {
			t.Errorf("%+v holds", b)
		}
	}
}

// The lab blocks every method but hip, in the server's kernel where a
// firewall can match the HOST_ID and in the application where it reads it.
func TestBlockersKnown(t *testing.T) {
	want := map[string]string{
		"tcp-option": WhereKernel, "ip-id": WhereKernel, "ip-option": WhereKernel, "dest-opt": WhereKernel,
		"port-set": WhereKernel, "http-header": WhereApp, "ident": WhereApp, "proxy-protocol": WhereApp,
	}
	for _, m := range Methods {
		b, ok := blockerFor(m.Name)
		if w, blocks := want[m.Name]; ok != blocks || ok && b.where != w {
			t.Errorf("blocker %s: %v where %q, want %v where %q", m.Name, ok, b.where, blocks, w)
		}
	}
}
