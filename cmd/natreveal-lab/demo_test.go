package main

import (
	"testing"

	"github.com/natreveal/natreveal/lab"
)

// The demo's last line: the inside hosts behind one public address with
// their HOST_IDs, or that the server could not tell them apart.
func TestDemoSummary(t *testing.T) {
	sender := map[string]string{"hello-0": lab.Client1, "hello-1": lab.Client2, "hello-2": lab.Client1}
	seen := []lab.Seen{
		{Src: "192.0.2.1:46890", HasOption: true, OptionID: 2, Head: "hello-0         "},
		{Src: "192.0.2.1:46891", HasOption: true, OptionID: 3, Head: "hello-1         "},
		{Src: "192.0.2.1:46892", HasOption: true, OptionID: 2, Head: "hello-2         "},
	}
	want := "2 inside hosts behind one public address (192.0.2.1), each recognized by its HOST_ID: 100.64.0.2 as 0x0002, 100.64.0.3 as 0x0003"
	if got := demoSummary(seen, sender); got != want {
		t.Errorf("summary = %q, want %q", got, want)
	}
	const cannot = "the server could not tell every inside host by a HOST_ID of its own (see the table)"
	for name, mod := range map[string]func([]lab.Seen){
		"no option":   func(s []lab.Seen) { s[1].HasOption = false },
		"same id":     func(s []lab.Seen) { s[1].OptionID = 2 },
		"two ids":     func(s []lab.Seen) { s[2].OptionID = 4 },
		"two publics": func(s []lab.Seen) { s[1].Src = "192.0.2.9:46891" },
		"unknown":     func(s []lab.Seen) { s[1].Head = "other" },
	} {
		s := append([]lab.Seen(nil), seen...)
		mod(s)
		if got := demoSummary(s, sender); got != cannot {
			t.Errorf("%s: summary = %q, want %q", name, got, cannot)
		}
	}
}
