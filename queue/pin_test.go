package queue

import (
	"fmt"
	"testing"
)

func TestLaneCPUs(t *testing.T) {
	for _, c := range []struct {
		allowed []int
		i, n    int
		want    string
	}{
		{[]int{0, 1}, 0, 2, "[0]"},
		{[]int{0, 1}, 1, 2, "[1]"},
		{[]int{0, 1, 2, 3}, 1, 2, "[1 3]"}, // two CPUs fan out to queue 1
		{[]int{2, 3}, 0, 2, "[2]"},         // a taskset: CPU ids, not indexes
		{[]int{0, 1, 2, 3, 4, 5, 6, 7}, 0, 1, "[0 1 2 3 4 5 6 7]"},
		{[]int{0, 2}, 1, 2, "[]"}, // no allowed CPU queues to it
	} {
		if got := fmt.Sprint(laneCPUs(c.allowed, c.i, c.n)); got != c.want {
			t.Errorf("laneCPUs(%v, %d, %d) = %s, want %s", c.allowed, c.i, c.n, got, c.want)
		}
	}
	if len(allowedCPUs()) == 0 {
		t.Error("allowedCPUs found none")
	}
}
