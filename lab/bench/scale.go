package bench

import (
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"text/tabwriter"
)

// scaleRow is one line of the scaling table: a mode at one CPU count,
// queue count and lanes setting.
type scaleRow struct {
	CPUs        int     `json:"cpus"`
	Queues      int     `json:"queues"`
	Lanes       bool    `json:"lanes"`
	Mode        string  `json:"mode"`
	SYNRate     float64 `json:"syn_per_s"`
	SatSYN      float64 `json:"sat_syn_ratio"`
	ConnRate    float64 `json:"conn_per_s"`
	SatConn     float64 `json:"sat_conn_ratio"`
	AddedCPU    float64 `json:"added_cpu_us_per_conn"`
	AddedP99    float64 `json:"added_p99_us"`
	Unaccounted int64   `json:"unaccounted_syns"`
}

// scaling runs the bench once per CPU count of cpusList and queue count
// (1 and N unless queueCounts says otherwise; counts > 1 with the
// queue-only mode's pinned lanes on and off), each in a child of this
// binary under `taskset -c` on the first N CPUs of this process's
// affinity: generators, daemons and the softirq work they cause all stay
// there. The children get every other flag of fs as given.
func scaling(fs *flag.FlagSet, cpus, queueCounts []int, jsonOut string) int {
	avail := cpuList()
	var pass []string
	fs.Visit(func(f *flag.Flag) {
		switch f.Name {
		case "cpus", "queue-counts", "json", "queues", "lanes", "established":
		default:
			pass = append(pass, "-"+f.Name+"="+f.Value.String())
		}
	})
	// The scaling table is the SYN path's; established flows are not in it.
	pass = append(pass, "-established=false")
	self, err := os.Executable()
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		return 1
	}
	dir, err := os.MkdirTemp("", "natreveal-scaling")
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		return 1
	}
	defer os.RemoveAll(dir)
	rep := &report{CPUs: len(avail), CPUList: avail}
	for _, n := range cpus {
		if n > len(avail) {
			note("scaling: %d CPUs asked, this machine lets the bench use %d: skipped", n, len(avail))
			continue
		}
		set := make([]string, n)
		for i := range n {
			set[i] = strconv.Itoa(avail[i])
		}
		qs := []int{1, n}
		if queueCounts != nil {
			qs = queueCounts
		}
		seen := map[int]bool{}
		for _, q := range qs {
			if seen[q] {
				continue
			}
			seen[q] = true
			for _, lanes := range []bool{true, false} {
				if !lanes && q == 1 {
					continue // one queue: no lanes either way
				}
				out := filepath.Join(dir, fmt.Sprintf("%d-%d-%t.json", n, q, lanes))
				args := append([]string{"-c", strings.Join(set, ","), self, "bench", "-queues", strconv.Itoa(q),
					"-lanes=" + strconv.FormatBool(lanes), "-json", out}, pass...)
				note("scaling: %d CPU(s) (%s), %d queue(s), lanes %t", n, strings.Join(set, ","), q, lanes)
				cmd := exec.Command("taskset", args...)
				cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
				if err := cmd.Run(); err != nil {
					fmt.Fprintf(os.Stderr, "bench: scaling run at %d CPUs, %d queues: %v\n", n, q, err)
					return 1
				}
				b, err := os.ReadFile(out)
				var child report
				if err == nil {
					err = json.Unmarshal(b, &child)
				}
				if err != nil {
					fmt.Fprintln(os.Stderr, "bench: scaling result:", err)
					return 1
				}
				rep.Date, rep.Kernel, rep.Model = child.Date, child.Kernel, child.Model
				rep.Unaccounted = rep.Unaccounted || child.Unaccounted
				for _, r := range child.Results {
					rep.Scaling = append(rep.Scaling, scaleRow{CPUs: n, Queues: q, Lanes: lanes, Mode: r.Mode,
						SYNRate: r.SYNRate, SatSYN: r.SYNRatio, ConnRate: r.ConnRate, SatConn: r.ConnRatio,
						AddedCPU: r.AddedCPU, AddedP99: r.AddedP99, Unaccounted: r.Unaccounted})
				}
			}
		}
	}
	printScaling(os.Stdout, rep)
	if jsonOut != "" {
		b, _ := json.MarshalIndent(rep, "", "  ")
		if err := os.WriteFile(jsonOut, append(b, '\n'), 0o644); err != nil {
			fmt.Fprintln(os.Stderr, "bench:", err)
			return 1
		}
	}
	return 0
}

func printScaling(f *os.File, rep *report) {
	model := ""
	if rep.Model != "" {
		model = " (" + rep.Model + ")"
	}
	fmt.Fprintf(f, "natreveal bench %s, Linux %s, %d CPUs%s: scaling (lanes: the queue-only mode's pinned lanes; natreveal run pins whenever queues > 1)\n\n",
		rep.Date, rep.Kernel, rep.CPUs, model)
	w := tabwriter.NewWriter(f, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(w, "CPUs\tqueues\tlanes\tmode\tSYN/s\tsat SYN x\tconn/s\tsat conn x\t+CPU µs/conn\t+p99 µs\tunaccounted\t")
	for _, r := range rep.Scaling {
		fmt.Fprintf(w, "%d\t%d\t%t\t%s\t%.0f\t%.2f\t%.0f\t%.2f\t%+.2f\t%+.0f\t%d\t\n", r.CPUs, r.Queues, r.Lanes, r.Mode,
			r.SYNRate, r.SatSYN, r.ConnRate, r.SatConn, r.AddedCPU, r.AddedP99, r.Unaccounted)
	}
	w.Flush()
	if rep.Unaccounted {
		fmt.Fprintln(f, "\nWARNING: some floods left SYNs unaccounted (see the runs' syn_account in the JSON)")
	}
}
