package cli

import (
	"io"
	"log"
	"log/slog"
	"os"
	"path/filepath"
)

// NewLogger is a daemon's structured logger: slog text (key=value) or, for
// format "json", JSON lines.
func NewLogger(format string, w io.Writer) *slog.Logger {
	if format == "json" {
		return slog.New(slog.NewJSONHandler(w, nil))
	}
	return slog.New(slog.NewTextHandler(w, nil))
}

// Logger is a tool's plain logger: a timestamp, the binary's name
// ("natreveal-server: "), the message.
func Logger(w io.Writer) *log.Logger {
	return log.New(w, filepath.Base(os.Args[0])+": ", log.LstdFlags|log.Lmsgprefix)
}
