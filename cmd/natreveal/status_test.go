package main

import (
	"strings"
	"testing"
)

// status refuses a timeout that leaves no time to answer and a relative
// socket (run refuses a relative status.socket too): exit 2, one line
// naming the flag, rather than a verdict about a daemon it never asked.
func TestStatusBadFlags(t *testing.T) {
	for _, c := range []struct {
		args []string
		flag string
	}{
		{[]string{"--timeout", "0"}, "--timeout"},
		{[]string{"--timeout=-1s"}, "--timeout"},
		{[]string{"--socket", "control.sock"}, "--socket"},
	} {
		code, _, errOut := natreveal(t, append([]string{"status"}, c.args...)...)
		if code != 2 || strings.Count(errOut, "\n") != 1 || !strings.HasPrefix(errOut, "natreveal: "+c.flag+": ") {
			t.Errorf("status %v: exit %d, stderr %q, want 2 and one line naming %s", c.args, code, errOut, c.flag)
		}
	}
}
