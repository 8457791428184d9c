package table

import (
	"fmt"
	"slices"
	"sync"

	"github.com/natreveal/natreveal/internal/progress"
	"github.com/natreveal/natreveal/lab"
)

// tracker shows where a run is: which method (of how many), path and
// transport, probes done, time left. A step is one carried-over check, one
// path's probes or one rate measurement.
type tracker struct {
	line *progress.Line

	mu           sync.Mutex
	steps, done  int
	method       string
	nth, methods int
	what         string // "clean path, tcp", "rate"
	probes, of   int
}

func newTracker(l *progress.Line, methods []*Method, families int) *tracker {
	t := &tracker{line: l, methods: len(methods)}
	for _, m := range methods {
		t.steps += stepsOf(m)
	}
	t.steps += 2 * families // natreveal off, before and after
	return t
}

// stepsOf counts a method's steps as runner.method takes them.
func stepsOf(m *Method) int {
	n := len(m.Transports) + len(lab.Paths)
	if m.ReadConn != nil && slices.Contains(m.Transports, TCP) {
		n++
	}
	if _, ok := blockerFor(m.Name); ok {
		n++ // the blacklisting row
	}
	return n
}

// begin starts a step of method (nth of the run; "" and 0: natreveal off).
func (t *tracker) begin(method string, nth int, what string, probes int) {
	if t == nil {
		return
	}
	t.mu.Lock()
	t.method, t.nth, t.what, t.probes, t.of = method, nth, what, 0, probes
	s := t.render()
	t.mu.Unlock()
	t.line.Update("%s", s)
}

// probe counts one probe done; only a terminal shows each.
func (t *tracker) probe() {
	if t == nil {
		return
	}
	t.mu.Lock()
	t.probes++
	s := t.render()
	t.mu.Unlock()
	if t.line.Terminal() {
		t.line.Update("%s", s)
	}
}

// end finishes the step.
func (t *tracker) end() {
	if t == nil {
		return
	}
	t.mu.Lock()
	t.done++
	t.mu.Unlock()
}

func (t *tracker) render() string {
	who := "natreveal off"
	if t.method != "" {
		who = fmt.Sprintf("%d/%d %s", t.nth, t.methods, t.method)
	}
	s := fmt.Sprintf("lab %3d%% %s: %s", 100*t.done/max(t.steps, 1), who, t.what)
	if t.of > 0 {
		s += fmt.Sprintf(", %d/%d probes", t.probes, t.of)
	}
	s += fmt.Sprintf(" (%s", t.line.Elapsed().Round(1e9))
	if left := t.line.Left(t.done, t.steps); left != "" {
		s += ", " + left
	}
	return s + ")"
}
