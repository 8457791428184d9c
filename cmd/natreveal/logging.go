package main

import (
	"encoding/json"
	"log/slog"

	"github.com/natreveal/natreveal/handler"
)

// counters renders Stats as a JSON object: nested in JSON logs, a quoted
// JSON string in text logs.
type counters struct{ st *handler.Stats }

func (c counters) MarshalJSON() ([]byte, error) { return json.Marshal(c.st) }
func (c counters) MarshalText() ([]byte, error) { return json.Marshal(c.st) }

// logStats logs the counters: msg "stats", attribute "counters".
func logStats(l *slog.Logger, st *handler.Stats) {
	l.Info("stats", "counters", counters{st})
}
