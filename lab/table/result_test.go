package table

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/natreveal/natreveal/lab"
)

func TestPerfLevelAndClaims(t *testing.T) {
	for _, c := range []struct {
		ratio float64
		want  string
	}{{1.2, "No"}, {0.96, "No"}, {0.90, "Low"}, {0.70, "Med"}, {0.42, "High"}} {
		if got := perfLevel(c.ratio); got != c.want {
			t.Errorf("perfLevel(%v) = %s, want %s", c.ratio, got, c.want)
		}
	}
	for claim, want := range map[string]string{"High": "High", "Med to High": "Med High", "Low to Med": "Low Med", "No": "No", "N/A": ""} {
		if got := strings.Join(perfClaim(claim), " "); got != want {
			t.Errorf("perfClaim(%q) = %q, want %q", claim, got, want)
		}
	}
	for claim, want := range map[string]float64{"30%": 0.3, "99%": 0.99, "100%": 1, "Low": 0.25} {
		if got, ok := claimRatio(claim); !ok || got != want {
			t.Errorf("claimRatio(%q) = %v %v, want %v", claim, got, ok, want)
		}
	}
}

// The table puts claim and measurement side by side and marks what
// contradicts the analysis.
func TestMarkdown(t *testing.T) {
	ok := &Carried{OK: true, Hosts: []HostResult{{Host: "c1", Want: "0x0002", Got: "0x0002", OK: true}}}
	bad := &Carried{OK: false, Hosts: []HostResult{{Host: "c1", Want: "0x0002"}}}
	succ := func(done, revealed int) *Success {
		s := &Success{Count: Count{Attempted: 10, Completed: done, Revealed: revealed}}
		s.finish()
		return s
	}
	r := &Result{N: 10, Paths: lab.Paths, Baseline: map[string]float64{"ipv4": 1000}, Methods: []MethodResult{
		{Name: "ip-option", Column: "IP Option", Claim: Methods[0].Claim, ServerReads: Methods[0].ServerReads, Deployable: "partly: not on opt-drop",
			Carried: map[Transport]*Carried{UDP: ok, TCP: ok, HTTP: ok, TLS: ok},
			Success: map[lab.Path]*Success{lab.PathClean: succ(10, 10), lab.PathOptDrop: succ(0, 0), lab.PathNAT2: succ(10, 10)},
			Perf:    &Perf{Ratio: 0.8, Level: "Med"}},
		{Name: "ident", Carried: map[Transport]*Carried{TCP: bad}, Deployable: "no",
			Success: map[lab.Path]*Success{lab.PathClean: succ(10, 0)}},
	}}
	md := r.Markdown()
	for _, want := range []string{
		"| Table 1: RFC 6967 → lab | IP Option `ip-option` | (not in Table 1) `ident` |",
		"| UDP | Yes → yes | – → n/a |",
		"| TCP | Yes → yes | – → no (c1 none) |",
		"| Success Ratio, clean path | 30% → 100% **≠** (completed 10/10, right HOST_ID 10/10) | – → 0% (completed 10/10, right HOST_ID 0/10) |",
		"| Success Ratio, router drops IP options | 30% → 0% **≠** (completed 0/10, right HOST_ID 0/10) | – → n/a |",
		"High → 0.80× (Med) **≠**",
		"Yes → no **≠**: socket options",
		"Yes → partly: not on opt-drop **≠**",
	} {
		if !strings.Contains(md, want) {
			t.Errorf("table lacks %q:\n%s", want, md)
		}
	}
	// The legend's own ≠ is no contradiction.
	if got, want := r.Contradictions(), strings.Count(md, "**≠**")-1; got != want {
		t.Errorf("Contradictions() = %d, the table marks %d", got, want)
	}
	b, err := r.JSON()
	if err != nil {
		t.Fatal(err)
	}
	var back Result
	if err := json.Unmarshal(b, &back); err != nil || back.Methods[0].Success[lab.PathOptDrop].Ratio != 0 || !back.Methods[0].Carried[UDP].OK {
		t.Errorf("JSON round trip: %v %+v", err, back)
	}
}

// RFC 6967's success ratio is the HOST_ID reaching the server: connections
// that complete without it contradict a 100 % claim, in every rendering.
func TestSuccessJudgedOnHostID(t *testing.T) {
	s := &Success{Count: Count{Attempted: 40, Completed: 40, Revealed: 0}}
	s.finish()
	m := MethodResult{Name: "port-set", Claim: Claims{Success: "100%"}, Success: map[lab.Path]*Success{lab.PathNAT2: s}}
	if want, got := "100% → 0% **≠** (completed 40/40, right HOST_ID 0/40)", successCell(m, lab.PathNAT2); got != want {
		t.Errorf("cell %q, want %q", got, want)
	}
	if want, got := "0%≠ done 100%", compactSuccess(m, lab.PathNAT2); got != want {
		t.Errorf("compact cell %q, want %q", got, want)
	}
	s = &Success{Count: Count{Attempted: 40, Completed: 40, Revealed: 40}}
	s.finish()
	m.Success[lab.PathNAT2] = s
	if want, got := "100% → 100% (completed 40/40, right HOST_ID 40/40)", successCell(m, lab.PathNAT2); got != want {
		t.Errorf("cell %q, want %q", got, want)
	}
	if want, got := "100%", compactSuccess(m, lab.PathNAT2); got != want {
		t.Errorf("compact cell %q, want %q", got, want)
	}
}

// Every method descriptor is complete enough for the runner.
func TestMethodsTable(t *testing.T) {
	seen := map[string]bool{}
	for _, m := range Methods {
		if seen[m.Name] {
			t.Errorf("%s listed twice", m.Name)
		}
		seen[m.Name] = true
		if m.Family != 4 && m.Family != 6 {
			t.Errorf("%s: family %d", m.Name, m.Family)
		}
		if m.Custom == nil && m.ReadConn == nil {
			t.Errorf("%s: no way to read it", m.Name)
		}
		for _, tr := range m.Transports {
			if tr == UDP && m.ReadUDP == nil {
				t.Errorf("%s: UDP without ReadUDP", m.Name)
			}
		}
		if m.ServerReads == "" || m.Configured == "" {
			t.Errorf("%s: the table's text cells are empty", m.Name)
		}
	}
}

// A transport the claim marks as not supported does not count against
// deployability; one that fails where the claim says yes is named.
func TestDeployable(t *testing.T) {
	full := func() map[lab.Path]*Success {
		m := map[lab.Path]*Success{}
		for _, p := range lab.Paths {
			s := &Success{Count: Count{Attempted: 10, Completed: 10, Revealed: 10}}
			s.finish()
			m[p] = s
		}
		return m
	}
	ok, bad := &Carried{OK: true}, &Carried{OK: false}
	http := &Method{Name: "http-header", Claim: Claims{UDP: "No", TCP: "No", HTTP: "Yes", Encrypted: "No"}}
	mr := &MethodResult{Carried: map[Transport]*Carried{HTTP: ok, TLS: bad}, Success: full()}
	if got := deployable(http, mr); got != "yes" {
		t.Errorf("http-header, TLS claimed No and not carried: %q, want yes", got)
	}
	tcpopt := &Method{Name: "tcp-option", Claim: Claims{UDP: "No", TCP: "Yes", HTTP: "Yes", Encrypted: "Yes"}}
	mr = &MethodResult{Carried: map[Transport]*Carried{TCP: ok, HTTP: ok, TLS: bad}, Success: full()}
	if got := deployable(tcpopt, mr); got != "partly: not over TLS" {
		t.Errorf("tcp-option not over TLS: %q, want partly: not over TLS", got)
	}
	mr.Success[lab.PathNAT2].Revealed = 0
	if got := deployable(tcpopt, mr); got != "partly: not on "+string(lab.PathNAT2)+", not over TLS" {
		t.Errorf("tcp-option, second NAT and TLS: %q", got)
	}
	mr = &MethodResult{Carried: map[Transport]*Carried{TCP: bad, HTTP: bad, TLS: bad}, Success: full()}
	if got := deployable(tcpopt, mr); got != "no" {
		t.Errorf("tcp-option carried nowhere: %q, want no", got)
	}
}
