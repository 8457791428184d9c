package bench

import (
	"fmt"
	"os"
)

// note prints one plain progress line on stderr (the summary and the JSON
// go to stdout and the -json file); the per-round lines go through
// internal/progress, which redraws on a terminal.
func note(format string, a ...any) {
	fmt.Fprintf(os.Stderr, format+"\n", a...)
}
