package progress

import (
	"bytes"
	"strings"
	"testing"
	"time"
)

// Piped: one plain line per step, no carriage returns.
func TestPlain(t *testing.T) {
	var b bytes.Buffer
	l := New(&b, false, 0)
	l.Update("step %d", 1)
	l.Printf("result")
	l.Update("step %d", 2)
	l.Done()
	if got, want := b.String(), "step 1\nresult\nstep 2\n"; got != want {
		t.Fatalf("got %q, want %q", got, want)
	}
}

// Terminal: the line is redrawn in place, padded over a longer one, cut to
// the width, cleared before a line that stays.
func TestTerminal(t *testing.T) {
	var b bytes.Buffer
	l := New(&b, true, 10)
	l.Update("abcdef")
	l.Update("xy")
	l.Update("0123456789abc")
	l.Printf("kept")
	want := "\rabcdef" + "\rxy    " + "\r01234567…" + "\r         \r" + "kept\n"
	if got := b.String(); got != want {
		t.Fatalf("got %q, want %q", got, want)
	}
	if strings.Contains(b.String(), "\n\r") {
		t.Fatal("stray newline")
	}
}

func TestLeft(t *testing.T) {
	now := time.Unix(100, 0)
	l := New(nil, false, 0)
	l.start, l.now = now, func() time.Time { return now.Add(10 * time.Second) }
	if got := l.Left(1, 4); got != "~30s left" {
		t.Fatalf("Left = %q", got)
	}
	if got := l.Left(0, 4); got != "" {
		t.Fatalf("Left before a step = %q", got)
	}
	var nl *Line
	nl.Update("x") // a nil Line discards
}
