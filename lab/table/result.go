package table

import (
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/natreveal/natreveal/lab"
)

// Result is one lab run: the analysis's Table 1 as measured.
type Result struct {
	Date        string             `json:"date"`
	Kernel      string             `json:"kernel"`
	Quick       bool               `json:"quick"`
	N           int                `json:"n"`            // probes per method, path and transport
	PerfSeconds float64            `json:"perf_seconds"` // length of each rate measurement
	Paths       []lab.Path         `json:"paths"`
	Baseline    map[string]float64 `json:"baseline_rate"` // new connections/s with natreveal off, by family ("ipv4")
	Methods     []MethodResult     `json:"methods"`
	Seconds     float64            `json:"seconds"` // the run's duration
}

// MethodResult is one column of the table.
type MethodResult struct {
	Name         string                 `json:"name"`
	Column       string                 `json:"column,omitempty"`
	Family       int                    `json:"family"`
	Carried      map[Transport]*Carried `json:"carried"` // the transports that apply
	Success      map[lab.Path]*Success  `json:"success"`
	Perf         *Perf                  `json:"perf,omitempty"`
	ServerReads  string                 `json:"server_reads"`
	KernelChange bool                   `json:"kernel_change"`
	Configured   string                 `json:"configured"`
	Deployable   string                 `json:"deployable"` // yes, partly: ..., no
	Claim        Claims                 `json:"claim"`
	Notes        []string               `json:"notes,omitempty"`
	Block        *Block                 `json:"block,omitempty"` // the blacklisting row; nil: not measured
}

// Carried says whether the right HOST_ID of every host reached the server.
type Carried struct {
	OK    bool         `json:"ok"`
	Hosts []HostResult `json:"hosts"`
}

// HostResult is one host's probe.
type HostResult struct {
	Host      string `json:"host"`
	Want      string `json:"want"`
	Got       string `json:"got,omitempty"`
	Completed bool   `json:"completed"`
	OK        bool   `json:"ok"`
	Err       string `json:"error,omitempty"`
}

func (h HostResult) String() string {
	if h.OK {
		return h.Host + "=" + h.Got
	}
	return fmt.Sprintf("%s: want %s got %q (%s)", h.Host, h.Want, h.Got, h.Err)
}

// Count is the probes of one transport on one path.
type Count struct {
	Attempted int    `json:"attempted"`
	Completed int    `json:"completed"`       // connections completed, datagrams delivered
	Revealed  int    `json:"revealed"`        // ... with the host's right HOST_ID at the server
	Error     string `json:"error,omitempty"` // the first failure, e.g. a connect timeout
}

// Success is the success ratio on one path: TCP and UDP together.
type Success struct {
	Count
	Ratio         float64 `json:"ratio"`          // Completed / Attempted
	RevealedRatio float64 `json:"revealed_ratio"` // Revealed / Attempted
	TCP           *Count  `json:"tcp,omitempty"`
	UDP           *Count  `json:"udp,omitempty"`
}

func (s *Success) finish() {
	if s.Attempted > 0 {
		s.Ratio = float64(s.Completed) / float64(s.Attempted)
		s.RevealedRatio = float64(s.Revealed) / float64(s.Attempted)
	}
}

// Perf is the new-connection rate with the method on, against natreveal
// off on the same path.
type Perf struct {
	Conns        int64   `json:"conns"`
	Rate         float64 `json:"rate"`          // connections/s, method on
	BaselineRate float64 `json:"baseline_rate"` // connections/s, natreveal off
	Ratio        float64 `json:"ratio"`         // Rate / BaselineRate
	Level        string  `json:"level"`         // No, Low, Med, High: the slowdown in the analysis's words
}

// perfLevel puts a rate ratio in the analysis's words: the slowdown 1-ratio
// below 5 % is No, below 15 % Low, below 40 % Med, else High.
func perfLevel(ratio float64) string {
	switch s := 1 - ratio; {
	case s < 0.05:
		return "No"
	case s < 0.15:
		return "Low"
	case s < 0.40:
		return "Med"
	}
	return "High"
}

// JSON renders the result, indented.
func (r *Result) JSON() ([]byte, error) {
	b, err := json.MarshalIndent(r, "", "  ")
	return append(b, '\n'), err
}

// differs is the mark of a measurement that contradicts the analysis's claim.
const differs = " **≠**"

// Markdown renders the analysis's Table 1 with claim → measurement in each
// cell, then the legend.
func (r *Result) Markdown() string {
	var b strings.Builder
	row := func(cells ...string) {
		b.WriteString("| " + strings.Join(cells, " | ") + " |\n")
	}
	head := []string{"Table 1: RFC 6967 → lab"}
	sep := []string{"---"}
	for _, m := range r.Methods {
		col := m.Column
		if col == "" {
			col = "(not in Table 1)"
		}
		head = append(head, fmt.Sprintf("%s `%s`", col, m.Name))
		sep = append(sep, "---")
	}
	row(head...)
	row(sep...)
	names := map[Transport]string{UDP: "UDP", TCP: "TCP", HTTP: "HTTP", TLS: "Encrypted Traffic (TLS)"}
	for _, tr := range Transports {
		cells := []string{names[tr]}
		for _, m := range r.Methods {
			cells = append(cells, carriedCell(m, tr))
		}
		row(cells...)
	}
	pathNames := map[lab.Path]string{lab.PathClean: "clean path", lab.PathOptDrop: "router drops IP options", lab.PathNAT2: "through a second NAT"}
	for _, p := range r.Paths {
		cells := []string{"Success Ratio, " + pathNames[p]}
		for _, m := range r.Methods {
			cells = append(cells, successCell(m, p))
		}
		row(cells...)
	}
	cells := []string{"Possible Perf Impact (new connections/s vs natreveal off)"}
	for _, m := range r.Methods {
		cells = append(cells, perfCell(m))
	}
	row(cells...)
	cells = []string{"OS TCP/IP Modif (how the server read it)"}
	for _, m := range r.Methods {
		c := claimOr(m.Claim.OSModif) + " → " + yesNo(m.KernelChange)
		if osDiffers(m) {
			c += differs
		}
		cells = append(cells, c+": "+strings.TrimPrefix(strings.TrimPrefix(m.ServerReads, "no: "), "yes: "))
	}
	row(cells...)
	cells = []string{"Deployable Today (what was configured where)"}
	for _, m := range r.Methods {
		c := claimOr(m.Claim.Deployable) + " → " + m.Deployable
		if deployDiffers(m) {
			c += differs
		}
		cells = append(cells, c+"; "+m.Configured)
	}
	row(cells...)
	if r.hasBlock() {
		cells = []string{BlockRow}
		for _, m := range r.Methods {
			cells = append(cells, "– → "+blockText(m.Block))
		}
		row(cells...)
	}
	cells = []string{"Notes"}
	for _, m := range r.Methods {
		n := m.Claim.Notes
		if len(m.Notes) > 0 {
			n = strings.TrimSpace(n + " " + strings.Join(m.Notes, "; "))
		}
		cells = append(cells, n)
	}
	row(cells...)
	fmt.Fprintf(&b, "\nEach cell: the analysis's claim → what the lab measured; %s marks a measurement that contradicts the claim. "+
		"%d probes per method, path and transport (TCP connections and UDP flows, two inside hosts alternating); "+
		"Success Ratio: the share of probes whose host's right HOST_ID reached the server, which the claim is judged on; "+
		"in brackets how many probes completed and how many carried the right HOST_ID, each out of all probes. "+
		"Perf: new connections/s over %.1f s against natreveal off (IPv4 %.0f/s, IPv6 %.0f/s), slowdown <5 %% No, <15 %% Low, <40 %% Med, else High. "+
		"Linux %s, %s, %.0f s%s.\n",
		strings.TrimSpace(differs), r.N, r.PerfSeconds, r.Baseline["ipv4"], r.Baseline["ipv6"], r.Kernel, r.Date, r.Seconds, quick(r.Quick))
	b.WriteString("\nTable 1's notes: (1) requires a way to advertise that the NAT takes part (e.g. a DNS PTR record); " +
		"(2) the solution is widely deployed; (3) without the port set advertised, less efficient for third-party services; " +
		"(4) client and server must be HIP-compliant, with HIP infrastructure; (5) a HIP host needs no host-hint from the NAT.\n")
	if r.hasBlock() {
		b.WriteString("\n" + blockLegend(r.N) + "\n")
	}
	return b.String()
}

func quick(q bool) string {
	if q {
		return ", --quick"
	}
	return ""
}

func claimOr(c string) string {
	if c == "" {
		return "–"
	}
	return c
}

// yn is a Yes/No claim in lower case, "" for anything else.
func yn(c string) string {
	switch strings.ToLower(c) {
	case "yes":
		return "yes"
	case "no":
		return "no"
	}
	return ""
}

func carriedCell(m MethodResult, tr Transport) string {
	claim := m.Claim.For(string(tr))
	c, ok := m.Carried[tr]
	if !ok {
		return claimOr(claim) + " → n/a"
	}
	got := yesNo(c.OK)
	if !c.OK {
		var ids []string
		for _, h := range c.Hosts {
			g := h.Got
			if g == "" {
				g = "none"
			}
			ids = append(ids, h.Host+" "+g)
		}
		got += " (" + strings.Join(ids, ", ") + ")"
	}
	cell := claimOr(claim) + " → " + got
	if carriedDiffers(m, tr) {
		cell += differs
	}
	return cell
}

func successCell(m MethodResult, p lab.Path) string {
	s := m.Success[p]
	if s == nil {
		return claimOr(m.Claim.Success) + " → n/a"
	}
	cell := fmt.Sprintf("%s → %.0f%%", claimOr(m.Claim.Success), 100*s.RevealedRatio)
	if successDiffers(m, s) {
		cell += differs
	}
	return cell + " (" + successCounts(s) + ")"
}

// successCounts is the bracket of a success cell: "completed 40/40, right
// HOST_ID 0/40".
func successCounts(s *Success) string {
	return fmt.Sprintf("completed %d/%d, right HOST_ID %d/%d", s.Completed, s.Attempted, s.Revealed, s.Attempted)
}

// The measurements that contradict the analysis's claim, cell by cell.

func carriedDiffers(m MethodResult, tr Transport) bool {
	c, ok := m.Carried[tr]
	s := yn(m.Claim.For(string(tr)))
	return ok && s != "" && s != yesNo(c.OK)
}

func successDiffers(m MethodResult, s *Success) bool {
	want, ok := claimRatio(m.Claim.Success)
	if !ok || s == nil {
		return false
	}
	// RFC 6967's success ratio is the HOST_ID reaching the server, not the
	// connection completing.
	r := s.RevealedRatio
	return (m.Claim.Success == "Low" && r > 0.5) || (m.Claim.Success != "Low" && abs(r-want) > 0.25)
}

func perfDiffers(m MethodResult) bool {
	levels := perfClaim(m.Claim.Perf)
	return m.Perf != nil && levels != nil && !slices.Contains(levels, m.Perf.Level)
}

func osDiffers(m MethodResult) bool {
	s := yn(m.Claim.OSModif)
	return s != "" && s != yesNo(m.KernelChange)
}

func deployDiffers(m MethodResult) bool {
	s := yn(m.Claim.Deployable)
	return s != "" && s != m.Deployable
}

// Contradictions counts the cells whose measurement contradicts the
// analysis's claim: the ≠ marks of the table.
func (r *Result) Contradictions() int {
	n := 0
	count := func(d bool) {
		if d {
			n++
		}
	}
	for _, m := range r.Methods {
		for _, tr := range Transports {
			count(carriedDiffers(m, tr))
		}
		for _, p := range r.Paths {
			count(successDiffers(m, m.Success[p]))
		}
		count(perfDiffers(m))
		count(osDiffers(m))
		count(deployDiffers(m))
	}
	return n
}

// claimRatio reads "30%" or "Low" (taken as below one half).
func claimRatio(c string) (float64, bool) {
	if c == "Low" {
		return 0.25, true
	}
	v, err := strconv.ParseFloat(strings.TrimSuffix(c, "%"), 64)
	if err != nil {
		return 0, false
	}
	return v / 100, true
}

func abs(x float64) float64 {
	if x < 0 {
		return -x
	}
	return x
}

func perfCell(m MethodResult) string {
	if m.Perf == nil {
		return claimOr(m.Claim.Perf) + " → n/a"
	}
	cell := fmt.Sprintf("%s → %.2f× (%s)", claimOr(m.Claim.Perf), m.Perf.Ratio, m.Perf.Level)
	if perfDiffers(m) {
		cell += differs
	}
	return cell
}

// perfClaim reads "Low to Med", "High", "No" into levels; nil for "N/A".
func perfClaim(c string) []string {
	order := []string{"No", "Low", "Med", "High"}
	lo, hi, ok := strings.Cut(c, " to ")
	if !ok {
		hi = lo
	}
	i, j := -1, -1
	for k, l := range order {
		if l == lo {
			i = k
		}
		if l == hi {
			j = k
		}
	}
	if i < 0 || j < i {
		return nil
	}
	return order[i : j+1]
}

// BlockRow names the blacklisting row; Table 1 has no such row, so its claim
// is "–".
const BlockRow = "Blacklisting one host (RFC 6269 §13.1)"

// hasBlock: the blacklisting row was measured (a result of an older lab has
// none, and its table stays as it was).
func (r *Result) hasBlock() bool {
	return slices.ContainsFunc(r.Methods, func(m MethodResult) bool { return m.Block != nil })
}

// blockText is the row's measurement: "c1 refused 50/50, c2 completed 50/50
// (server kernel)".
func blockText(b *Block) string {
	if b == nil {
		return "n/a"
	}
	return fmt.Sprintf("%s refused %d/%d, %s completed %d/%d (%s)", b.Blocked.Host, b.Blocked.Refused, b.Blocked.Attempted,
		b.Neighbour.Host, b.Neighbour.Completed, b.Neighbour.Attempted, b.Where)
}

func blockLegend(n int) string {
	return fmt.Sprintf("Blacklisting one host: the server blocks c1 by its HOST_ID, c2 shares c1's public address; "+
		"%d new connections from each (HTTP requests for http-header), refused or completed. "+
		"Server kernel: natreveal-server guard (package guard, rejecting the SYNs of the pair), or for port-set an nft rule "+
		"on c1's source port block; application: the lab's server refuses after reading the HOST_ID (X-Forwarded-For, "+
		"the ident reply, the PROXY header's source), trusted only from the NAT's address (RFC 6967 §5).", n)
}
