package bench

import (
	"fmt"
	"io"
	"slices"
)

// goal is one of issue 15's targets beside this run's measurement.
type goal struct {
	Mode   string  `json:"mode"`
	What   string  `json:"what"`
	Target string  `json:"target"`
	Value  float64 `json:"value"`
	Met    bool    `json:"met"`
}

// The goals (docs/performance.md, Goals):
//   - added CPU per new connection ≤ 2 µs for tcp-option and ip-id;
//   - saturation SYN/s ≥ 0.9× kernel alone (at 2 CPUs and at the largest
//     CPU count available: here, at this run's CPU count);
//   - added p99 connect latency ≤ 50 µs below saturation;
//   - http-header ≥ 0.9× down and ≥ 0.8× up; proxy-protocol ≥ 0.95× both.
const (
	goalAddedCPU  = 2.0
	goalSatSYN    = 0.9
	goalAddedP99  = 50.0
	goalHTTPDown  = 0.9
	goalHTTPUp    = 0.8
	goalProxyBulk = 0.95
)

// productModes are natreveal's own SYN-path modes; kernel, queue and
// go-nfqueue are the baselines the goals do not apply to.
var productModes = []string{"tcp-option", "ip-id", "ip-id-kernel", "ip-option"}

func evalGoals(rep *report) []goal {
	var gs []goal
	le := func(mode, what string, v, t float64) {
		gs = append(gs, goal{mode, what, fmt.Sprintf("≤ %g", t), v, v <= t})
	}
	ge := func(mode, what string, v, t float64) {
		gs = append(gs, goal{mode, what, fmt.Sprintf("≥ %g", t), v, v >= t})
	}
	for _, r := range rep.Results {
		if !slices.Contains(productModes, r.Mode) {
			continue
		}
		if r.Mode == "tcp-option" || r.Mode == "ip-id" {
			le(r.Mode, "added CPU µs/conn", r.AddedCPU, goalAddedCPU)
		}
		ge(r.Mode, fmt.Sprintf("sat SYN/s x kernel (%d CPUs)", len(rep.CPUList)), r.SYNRatio, goalSatSYN)
		le(r.Mode, "added p99 µs", r.AddedP99, goalAddedP99)
	}
	for _, b := range rep.Bulk {
		switch b.Mode {
		case "http-header":
			ge(b.Mode, "bulk down x kernel", b.DownRatio, goalHTTPDown)
			ge(b.Mode, "bulk up x kernel", b.UpRatio, goalHTTPUp)
		case "proxy-protocol":
			ge(b.Mode, "bulk down x kernel", b.DownRatio, goalProxyBulk)
			ge(b.Mode, "bulk up x kernel", b.UpRatio, goalProxyBulk)
		}
	}
	return gs
}

func printGoals(w io.Writer, gs []goal) {
	if len(gs) == 0 {
		return
	}
	fmt.Fprintln(w, "\ngoals (issue 15) beside this run:")
	for _, g := range gs {
		met := "not met"
		if g.Met {
			met = "met"
		}
		fmt.Fprintf(w, "  %-14s %-30s %8.2f  goal %-7s %s\n", g.Mode, g.What, g.Value, g.Target, met)
	}
}
