package table

import (
	"fmt"
	"strings"
	"unicode/utf8"

	"github.com/natreveal/natreveal/lab"
)

// Marks of the compact table.
const (
	markYes     = "✓" // carried
	markNo      = "✗" // not carried
	markDiffers = "≠" // the measurement contradicts the analysis's claim
	markNA      = "–" // does not apply, not measured
)

// Width is the most columns Compact uses.
const Width = 100

// Compact renders the result for a terminal, within Width columns:
// methods as rows, measured values in short cells, ≠ after a value that
// contradicts the analysis's claim (Markdown and HTML show the claim
// beside it).
func (r *Result) Compact() string {
	head := []string{"method", "UDP", "TCP", "HTTP", "TLS"}
	for _, p := range r.Paths {
		head = append(head, string(p))
	}
	head = append(head, "conn/s", "OS", "deploy")
	rows := [][]string{head}
	for _, m := range r.Methods {
		row := []string{m.Name}
		for _, tr := range Transports {
			row = append(row, compactCarried(m, tr))
		}
		for _, p := range r.Paths {
			row = append(row, compactSuccess(m, p))
		}
		perf := markNA
		if m.Perf != nil {
			perf = fmt.Sprintf("%.2f %s", m.Perf.Ratio, m.Perf.Level) + mark(perfDiffers(m))
		}
		deploy, _, _ := strings.Cut(m.Deployable, ":")
		row = append(row, perf, yesNo(m.KernelChange)+mark(osDiffers(m)), deploy+mark(deployDiffers(m)))
		rows = append(rows, row)
	}
	var b strings.Builder
	b.WriteString(aligned(rows))
	if r.hasBlock() {
		brows := [][]string{{"blacklisting c1", "c1 refused", "c2 completed", "where"}}
		for _, m := range r.Methods {
			if bl := m.Block; bl != nil {
				mk := markNo
				if bl.Holds() {
					mk = markYes
				}
				brows = append(brows, []string{m.Name, fmt.Sprintf("%d/%d", bl.Blocked.Refused, bl.Blocked.Attempted),
					fmt.Sprintf("%d/%d", bl.Neighbour.Completed, bl.Neighbour.Attempted), mk + " " + bl.Where})
			}
		}
		b.WriteString("\n" + aligned(brows))
	}
	legend := fmt.Sprintf("%s carried the right HOST_ID of every host, %s did not, %s does not apply; paths: "+
		"share of %d probes whose right HOST_ID reached the server (done: share completed, where different); conn/s: new connections/s "+
		"against natreveal off; OS: the server needs a TCP/IP stack change; %s: the measurement contradicts the "+
		"claim of RFC 6967's analysis (draft-boucadair-intarea-nat-reveal-analysis, Table 1). Linux %s, %.0f s%s. "+
		"--markdown, --html: claim beside measurement.",
		markYes, markNo, markNA, r.N, markDiffers, r.Kernel, r.Seconds, quick(r.Quick))
	b.WriteString("\n" + wrap(legend, Width) + "\n")
	if r.hasBlock() {
		b.WriteString("\n" + wrap(fmt.Sprintf("Blacklisting one host (RFC 6269 §13.1): the server blocks c1 by its HOST_ID; "+
			"%s every c1 connection refused and every c2 connection (same public address) completed.", markYes), Width) + "\n")
	}
	return b.String()
}

// aligned renders rows in columns, a rule under the first.
func aligned(rows [][]string) string {
	widths := make([]int, len(rows[0]))
	for _, row := range rows {
		for i, c := range row {
			widths[i] = max(widths[i], utf8.RuneCountInString(c))
		}
	}
	var b strings.Builder
	for k, row := range rows {
		var ln strings.Builder
		for i, c := range row {
			if i > 0 {
				ln.WriteString("  ")
			}
			ln.WriteString(c + strings.Repeat(" ", widths[i]-utf8.RuneCountInString(c)))
		}
		b.WriteString(strings.TrimRight(ln.String(), " ") + "\n")
		if k == 0 {
			n := 0
			for _, w := range widths {
				n += w + 2
			}
			b.WriteString(strings.Repeat("─", min(n-2, Width)) + "\n")
		}
	}
	return b.String()
}

func mark(d bool) string {
	if d {
		return markDiffers
	}
	return ""
}

func compactCarried(m MethodResult, tr Transport) string {
	c, ok := m.Carried[tr]
	switch {
	case !ok:
		return markNA
	case c.OK:
		return markYes + mark(carriedDiffers(m, tr))
	}
	return markNo + mark(carriedDiffers(m, tr))
}

func compactSuccess(m MethodResult, p lab.Path) string {
	s := m.Success[p]
	if s == nil || s.Attempted == 0 {
		return markNA
	}
	c := fmt.Sprintf("%.0f%%", 100*s.RevealedRatio) + mark(successDiffers(m, s))
	if s.Completed != s.Revealed {
		c += fmt.Sprintf(" done %.0f%%", 100*s.Ratio)
	}
	return c
}

// wrap breaks text into lines of at most width runes at spaces.
func wrap(text string, width int) string {
	var b strings.Builder
	n := 0
	for i, w := range strings.Fields(text) {
		l := utf8.RuneCountInString(w)
		if i > 0 && n+1+l > width {
			b.WriteString("\n")
			n = 0
		} else if i > 0 {
			b.WriteString(" ")
			n++
		}
		b.WriteString(w)
		n += l
	}
	return b.String()
}
