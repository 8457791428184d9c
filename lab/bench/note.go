package bench

import (
	"fmt"
	"os"
	"time"
)

// benchStart is when the process started measuring, for progress lines.
var benchStart = time.Now()

// note prints one progress line on stderr, prefixed with the seconds
// since the bench started. Every progress line of the bench goes through
// here (the summary and the JSON go to stdout and the -json file).
func note(format string, a ...any) {
	fmt.Fprintf(os.Stderr, "[%5.1fs] %s\n", time.Since(benchStart).Seconds(), fmt.Sprintf(format, a...))
}
