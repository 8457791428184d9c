package lab

import "testing"

func TestLeftoverPattern(t *testing.T) {
	for _, n := range NSNames(1234) {
		if m := nsPattern.FindStringSubmatch(n); m == nil || m[1] != "1234" {
			t.Errorf("%s does not match the leftover pattern", n)
		}
	}
	for _, n := range []string{"nr1234c1", "nrlab12x-c1", "nrlab1234-c3", "xnrlab1234-c1"} {
		if nsPattern.MatchString(n) {
			t.Errorf("%s matches the leftover pattern", n)
		}
	}
}
