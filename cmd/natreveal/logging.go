package main

import (
	"log/slog"
	"sort"

	"github.com/natreveal/natreveal/handler"
)

// logStats logs the non-zero counters: msg "stats", group "counters" with
// one attribute per counter, by name (text: counters.accepted=41; JSON: a
// nested object). Nothing counted leaves the group, and so the attribute,
// out.
func logStats(l *slog.Logger, st *handler.Stats) {
	snap := st.Snapshot()
	names := make([]string, 0, len(snap))
	for name := range snap {
		names = append(names, name)
	}
	sort.Strings(names)
	attrs := make([]any, 0, len(names))
	for _, name := range names {
		attrs = append(attrs, slog.Uint64(name, snap[name]))
	}
	l.Info("stats", slog.Group("counters", attrs...))
}
