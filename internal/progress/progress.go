// Package progress shows how far a long command is: on a terminal one line
// redrawn in place, elsewhere (a pipe, a file, CI logs) a plain line per step.
package progress

import (
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
	"time"

	"golang.org/x/sys/unix"
)

// IsTerminal reports whether f is a terminal (TCGETS answers).
func IsTerminal(f *os.File) bool {
	_, err := unix.IoctlGetTermios(int(f.Fd()), unix.TCGETS)
	return err == nil
}

// Line writes progress to w. The zero value and a nil *Line discard it.
type Line struct {
	w     io.Writer
	term  bool
	width int
	start time.Time
	now   func() time.Time

	mu    sync.Mutex
	shown int // characters of the line on screen (terminal only)
}

// New returns a Line writing to w; term redraws one line in place (a
// terminal of width columns, 0: 100).
func New(w io.Writer, term bool, width int) *Line {
	if width <= 0 {
		width = 100
	}
	return &Line{w: w, term: term, width: width, start: time.Now(), now: time.Now}
}

// Stderr is New for os.Stderr, redrawing when it is a terminal.
func Stderr() *Line {
	w := 0
	if ws, err := unix.IoctlGetWinsize(int(os.Stderr.Fd()), unix.TIOCGWINSZ); err == nil {
		w = int(ws.Col)
	}
	return New(os.Stderr, IsTerminal(os.Stderr), w)
}

// Terminal reports whether the line is redrawn in place.
func (l *Line) Terminal() bool { return l != nil && l.term }

// Update shows the step: redrawn in place on a terminal (cut to its width),
// a line of its own elsewhere.
func (l *Line) Update(format string, args ...any) {
	if l == nil || l.w == nil {
		return
	}
	s := fmt.Sprintf(format, args...)
	l.mu.Lock()
	defer l.mu.Unlock()
	if !l.term {
		fmt.Fprintln(l.w, s)
		return
	}
	if r := []rune(s); len(r) > l.width-1 {
		s = string(r[:l.width-2]) + "…"
	}
	pad := l.shown - len([]rune(s))
	if pad < 0 {
		pad = 0
	}
	fmt.Fprint(l.w, "\r"+s+strings.Repeat(" ", pad))
	l.shown = len([]rune(s))
}

// Printf writes a line that stays (a result, a warning): on a terminal it
// replaces the progress line, which the next Update draws again below.
func (l *Line) Printf(format string, args ...any) {
	if l == nil || l.w == nil {
		return
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	l.clear()
	fmt.Fprintf(l.w, strings.TrimSuffix(format, "\n")+"\n", args...)
}

// Done clears the progress line (terminal only) so what follows starts on
// a clean line.
func (l *Line) Done() {
	if l == nil || l.w == nil {
		return
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	l.clear()
}

func (l *Line) clear() {
	if l.term && l.shown > 0 {
		fmt.Fprint(l.w, "\r"+strings.Repeat(" ", l.shown)+"\r")
		l.shown = 0
	}
}

// Elapsed is the time since New.
func (l *Line) Elapsed() time.Duration {
	if l == nil {
		return 0
	}
	return l.now().Sub(l.start)
}

// Left estimates the time left after done of total steps at the pace so
// far; "" before the first step.
func (l *Line) Left(done, total int) string {
	if l == nil || done <= 0 || total <= done {
		return ""
	}
	el := l.Elapsed()
	left := time.Duration(float64(el) / float64(done) * float64(total-done))
	return "~" + left.Round(time.Second).String() + " left"
}
