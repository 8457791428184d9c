package main

import (
	"bytes"
	"encoding/json"
	"log/slog"
	"strings"
	"testing"

	"github.com/natreveal/natreveal/handler"
)

// The stats line: one attribute per non-zero counter in text, a nested
// object in JSON, no counters attribute when nothing was counted.
func TestLogStats(t *testing.T) {
	st := new(handler.Stats)
	var buf bytes.Buffer
	logStats(slog.New(slog.NewTextHandler(&buf, nil)), st)
	if got := buf.String(); !strings.Contains(got, " msg=stats\n") || strings.Contains(got, "counters") {
		t.Errorf("nothing counted: %q", got)
	}

	for range 41 {
		st.Inc(handler.Accepted)
	}
	for range 5 {
		st.Inc(handler.FlowsTracked)
	}
	buf.Reset()
	logStats(slog.New(slog.NewTextHandler(&buf, nil)), st)
	if got := buf.String(); !strings.HasSuffix(got, " msg=stats counters.accepted=41 counters.flows-tracked=5\n") {
		t.Errorf("text: %q", got)
	}

	buf.Reset()
	logStats(slog.New(slog.NewJSONHandler(&buf, nil)), st)
	var rec struct {
		Msg      string            `json:"msg"`
		Counters map[string]uint64 `json:"counters"`
	}
	if err := json.Unmarshal(buf.Bytes(), &rec); err != nil {
		t.Fatalf("json %q: %v", buf.String(), err)
	}
	if rec.Msg != "stats" || len(rec.Counters) != 2 || rec.Counters["accepted"] != 41 || rec.Counters["flows-tracked"] != 5 {
		t.Errorf("json: %q", buf.String())
	}
}
