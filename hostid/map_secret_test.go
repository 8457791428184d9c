package hostid

import (
	"errors"
	"strings"
	"testing"
)

// Issue 17 item 13: a map_file that is not a map (pointed at a secret by
// mistake or on purpose) must not have its content echoed into the error,
// which reaches logs and terminals.
func TestParseMapErrorsDoNotEchoContent(t *testing.T) {
	ifs := func(string) (uint32, error) { return 0, errors.New("no such interface") }
	for _, file := range []string{
		"root:$y$j9T$SECRETHASH:19000:0:99999:7:::\n",
		"SECRETTOKEN\n",
		"SECRET1 SECRET2 SECRET3\n",
		"100.64.0.0/24 SECRET\n",
		"SECRET/24 1\n",
		"10.0.0.1/8 1\n",
		"iface SECRET 1\n",
		"iface SECRET SECRET2\n",
		"10.0.0.0/8 1\n10.0.0.0/8 2\n",
		"10.0.0.0/8 99999999999\n",
		"::ffff:10.0.0.0/104 1\n",
	} {
		_, err := ParseMap([]byte(file), 16, ifs)
		if err == nil {
			t.Errorf("ParseMap(%q) accepted", file)
			continue
		}
		first := strings.Fields(strings.SplitN(file, "\n", 2)[0])
		for _, f := range first {
			if len(f) > 2 && strings.Contains(err.Error(), f) {
				t.Errorf("ParseMap(%q) = %v: echoes %q", file, err, f)
			}
		}
		if strings.Contains(err.Error(), "SECRET") || strings.Contains(err.Error(), "10.0.0.") {
			t.Errorf("ParseMap(%q) = %v: echoes the file", file, err)
		}
		if !strings.HasPrefix(err.Error(), "map line ") {
			t.Errorf("ParseMap(%q) = %v: no line number", file, err)
		}
	}
}
