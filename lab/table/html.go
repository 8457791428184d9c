package table

import (
	"fmt"
	"html"
	"strings"

	"github.com/natreveal/natreveal/lab"
)

// HTML renders the result as one self-contained page (inline CSS and SVG,
// nothing fetched): Table 1 with the analysis's claim beside each
// measurement, contradictions highlighted, and bar charts of each method's
// connection rate against natreveal off and of its success per path.
func (r *Result) HTML() string {
	var b strings.Builder
	w := func(format string, args ...any) { fmt.Fprintf(&b, format, args...) }
	w(`<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>natreveal lab: Table 1 measured</title>
<style>%s</style></head><body>
<h1>natreveal lab: Table 1 measured</h1>
<p class="meta">Linux %s · %s · %d probes per method, path and transport · rate runs of %.1f s · natreveal off: IPv4 %.0f, IPv6 %.0f new connections/s · %.0f s%s</p>
`, css, esc(r.Kernel), esc(r.Date), r.N, r.PerfSeconds, r.Baseline["ipv4"], r.Baseline["ipv6"], r.Seconds, quick(r.Quick))
	b.WriteString(r.htmlTable())
	w(`<div class="charts">
<figure><figcaption>New connections/s relative to natreveal off (1.0 = no cost)</figcaption>
%s</figure>
<figure><figcaption>Success per path: connections completed (light), with the right HOST_ID (dark)</figcaption>
%s</figure>
</div>
`, r.rateChart(), r.successChart())
	w(`<p class="legend">Each cell: <span class="claim">the analysis's claim</span> <span class="meas">the lab's measurement</span>; ` +
		`a <span class="differs-key">highlighted</span> cell contradicts the claim (≠). The claims are Table 1 of ` +
		`draft-boucadair-intarea-nat-reveal-analysis (RFC 6967). Success Ratio: the share of probes whose host's ` +
		`right HOST_ID reached the server, which the claim is judged on; in brackets how many probes completed and how ` +
		`many carried the right HOST_ID, each out of all probes. Perf: new connections/s with the method on against natreveal off; slowdown ` +
		`&lt;5 %% No, &lt;15 %% Low, &lt;40 %% Med, else High. Notes of the analysis: (1) requires a way to advertise that ` +
		`the NAT takes part (e.g. a DNS PTR record); (2) the solution is widely deployed; (3) without the port set advertised, less efficient for third-party services; (4) client and server must be HIP-compliant, with HIP infrastructure; ` +
		`(5) a HIP host needs no host-hint from the NAT.</p>
`)
	if r.hasBlock() {
		w("<p class=\"legend\">%s</p>\n", esc(blockLegend(r.N)))
	}
	b.WriteString("</body></html>\n")
	return b.String()
}

const css = `
body{font:14px/1.4 system-ui,sans-serif;margin:1.5em;color:#222;background:#fff}
h1{font-size:1.4em;margin:0 0 .2em}
.meta,.legend{color:#555;max-width:75em}
table{border-collapse:collapse;margin:1em 0}
th,td{border:1px solid #ccc;padding:.25em .45em;vertical-align:top;text-align:left}
thead th{background:#f0f0f0;font-weight:600}
tbody th{white-space:nowrap}
tbody th small{display:block;color:#777;font-weight:normal}
.claim{color:#888;margin-right:.4em}
.claim::after{content:" →";color:#bbb}
.meas{font-weight:600}
td.differs,.differs-key{background:#ffe1a8}
td.differs .meas::after{content:" ≠";color:#b00}
td.na .meas{color:#aaa;font-weight:normal}
td.notes{font-size:.85em;color:#555;max-width:22em}
.charts{display:flex;flex-wrap:wrap;gap:2em}
figure{margin:0}
figcaption{font-weight:600;margin-bottom:.3em}
svg text{font:12px system-ui,sans-serif;fill:#333}
.bar.rate{fill:#4a7fb5}.bar.slow{fill:#c0504d}
.bar.done{fill:#b7cde3}.bar.revealed{fill:#2f6497}
.ref{stroke:#222;stroke-dasharray:3 2}
.axis{stroke:#999}
`

func esc(s string) string { return html.EscapeString(s) }

// htmlTable is Table 1, a method per row.
func (r *Result) htmlTable() string {
	var b strings.Builder
	b.WriteString(`<table id="table1"><thead><tr><th>method</th>`)
	for _, tr := range Transports {
		b.WriteString("<th>" + map[Transport]string{UDP: "UDP", TCP: "TCP", HTTP: "HTTP", TLS: "Encrypted (TLS)"}[tr] + "</th>")
	}
	for _, p := range r.Paths {
		b.WriteString("<th>success, " + esc(pathName(p)) + "</th>")
	}
	b.WriteString("<th>perf impact</th><th>OS TCP/IP change</th><th>deployable today</th>")
	if r.hasBlock() {
		b.WriteString("<th>" + esc(BlockRow) + "</th>")
	}
	b.WriteString("<th>notes</th></tr></thead>\n<tbody>\n")
	for _, m := range r.Methods {
		col := m.Column
		if col == "" {
			col = "not in Table 1"
		}
		fmt.Fprintf(&b, `<tr id="m-%s" class="method"><th>%s<small>%s</small></th>`, esc(m.Name), esc(m.Name), esc(col))
		for _, tr := range Transports {
			c, ok := m.Carried[tr]
			meas := "n/a"
			if ok {
				meas = yesNo(c.OK)
			}
			b.WriteString(cell(m.Claim.For(string(tr)), meas, carriedDiffers(m, tr), !ok, hostsTitle(c)))
		}
		for _, p := range r.Paths {
			s := m.Success[p]
			meas := "n/a"
			if s != nil {
				meas = fmt.Sprintf("%.0f%% (%s)", 100*s.RevealedRatio, successCounts(s))
			}
			b.WriteString(cell(m.Claim.Success, meas, successDiffers(m, s), s == nil, ""))
		}
		perf := "n/a"
		if m.Perf != nil {
			perf = fmt.Sprintf("%.2f× (%s)", m.Perf.Ratio, m.Perf.Level)
		}
		b.WriteString(cell(m.Claim.Perf, perf, perfDiffers(m), m.Perf == nil, ""))
		b.WriteString(cell(m.Claim.OSModif, yesNo(m.KernelChange), osDiffers(m), false, m.ServerReads))
		b.WriteString(cell(m.Claim.Deployable, m.Deployable, deployDiffers(m), false, m.Configured))
		if r.hasBlock() {
			title := ""
			if m.Block != nil {
				title = m.Block.How
			}
			b.WriteString(cell("", blockText(m.Block), false, m.Block == nil, title))
		}
		notes := strings.TrimSpace(m.Claim.Notes + " " + strings.Join(m.Notes, "; "))
		b.WriteString(`<td class="notes">` + esc(notes) + "</td></tr>\n")
	}
	b.WriteString("</tbody></table>\n")
	return b.String()
}

func cell(claim, meas string, differs, na bool, title string) string {
	class := ""
	switch {
	case differs:
		class = ` class="differs"`
	case na:
		class = ` class="na"`
	}
	if title != "" {
		class += ` title="` + esc(title) + `"`
	}
	return fmt.Sprintf(`<td%s><span class="claim">%s</span><span class="meas">%s</span></td>`, class, esc(claimOr(claim)), esc(meas))
}

func hostsTitle(c *Carried) string {
	if c == nil {
		return ""
	}
	var hs []string
	for _, h := range c.Hosts {
		hs = append(hs, h.String())
	}
	return strings.Join(hs, "; ")
}

func pathName(p lab.Path) string {
	switch p {
	case lab.PathClean:
		return "clean path"
	case lab.PathOptDrop:
		return "router drops IP options"
	case lab.PathNAT2:
		return "second NAT"
	}
	return string(p)
}

// Chart geometry: a label column, then bars.
const (
	chartLabel = 120
	chartBar   = 260
	chartRow   = 22
)

// rateChart: a bar per method measured, its rate over natreveal off's.
func (r *Result) rateChart() string {
	var rows []MethodResult
	top := 1.2
	for _, m := range r.Methods {
		if m.Perf != nil {
			rows = append(rows, m)
			top = max(top, m.Perf.Ratio*1.05)
		}
	}
	h := chartRow*len(rows) + 24
	var b strings.Builder
	fmt.Fprintf(&b, `<svg id="rate-chart" xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" role="img" aria-label="connection rate relative to natreveal off">`,
		chartLabel+chartBar+60, h)
	x := func(v float64) float64 { return chartLabel + v/top*chartBar }
	for i, m := range rows {
		y := i*chartRow + 4
		class := "bar rate"
		if m.Perf.Ratio < 0.85 {
			class = "bar slow"
		}
		fmt.Fprintf(&b, `<text x="%d" y="%d" text-anchor="end">%s</text>`, chartLabel-6, y+13, esc(m.Name))
		fmt.Fprintf(&b, `<rect class="%s" data-method="%s" x="%d" y="%d" width="%.1f" height="%d"><title>%s: %.0f vs %.0f connections/s</title></rect>`,
			class, esc(m.Name), chartLabel, y, x(m.Perf.Ratio)-chartLabel, chartRow-6, esc(m.Name), m.Perf.Rate, m.Perf.BaselineRate)
		fmt.Fprintf(&b, `<text x="%.1f" y="%d">%.2f×</text>`, x(m.Perf.Ratio)+4, y+13, m.Perf.Ratio)
	}
	axisY := chartRow*len(rows) + 4
	fmt.Fprintf(&b, `<line class="ref" x1="%.1f" y1="0" x2="%.1f" y2="%d"/>`, x(1), x(1), axisY)
	fmt.Fprintf(&b, `<text x="%.1f" y="%d" text-anchor="middle">1.0 = natreveal off</text>`, x(1), axisY+16)
	b.WriteString("</svg>\n")
	return b.String()
}

// successChart: per method a bar per path, completed and revealed.
func (r *Result) successChart() string {
	colors := []string{"#2f6497", "#c0504d", "#7a9a3a"}
	per := len(r.Paths)*8 + 8
	h := per*len(r.Methods) + 40
	var b strings.Builder
	fmt.Fprintf(&b, `<svg id="success-chart" xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" role="img" aria-label="success per path">`,
		chartLabel+chartBar+60, h)
	for i, m := range r.Methods {
		y0 := i * per
		fmt.Fprintf(&b, `<text x="%d" y="%d" text-anchor="end">%s</text>`, chartLabel-6, y0+per/2+4, esc(m.Name))
		for j, p := range r.Paths {
			s := m.Success[p]
			if s == nil {
				continue
			}
			y := y0 + 4 + j*8
			fmt.Fprintf(&b, `<rect class="bar done" data-method="%s" data-path="%s" x="%d" y="%d" width="%.1f" height="7"><title>%s, %s: %d/%d completed, %d with the right HOST_ID</title></rect>`,
				esc(m.Name), p, chartLabel, y, s.Ratio*chartBar, esc(m.Name), esc(pathName(p)), s.Completed, s.Attempted, s.Revealed)
			fmt.Fprintf(&b, `<rect class="bar revealed" style="fill:%s" x="%d" y="%d" width="%.1f" height="7"/>`,
				colors[j%len(colors)], chartLabel, y, s.RevealedRatio*chartBar)
		}
	}
	axisY := per * len(r.Methods)
	fmt.Fprintf(&b, `<line class="axis" x1="%d" y1="0" x2="%d" y2="%d"/><line class="axis" x1="%d" y1="0" x2="%d" y2="%d"/>`,
		chartLabel, chartLabel, axisY, chartLabel+chartBar, chartLabel+chartBar, axisY)
	fmt.Fprintf(&b, `<text x="%d" y="%d" text-anchor="end">100%%</text>`, chartLabel+chartBar, axisY+14)
	for j, p := range r.Paths {
		x := chartLabel + j*95 - 60
		fmt.Fprintf(&b, `<rect x="%d" y="%d" width="10" height="10" style="fill:%s"/><text x="%d" y="%d">%s</text>`,
			x, axisY+22, colors[j%len(colors)], x+14, axisY+31, esc(string(p)))
	}
	b.WriteString("</svg>\n")
	return b.String()
}
