package test

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/natreveal/natreveal/lab"
)

// routerTags are the build tags of the OpenWrt package's router binary
// (openwrt/natreveal/Makefile, GO_PKG_TAGS): no HTTP server (metrics go to
// metrics.textfile), no HTTP/2 in net/http, no go_*/process_* metrics.
const routerTags = "natreveal_router,nethttpomithttp2"

var routerBin struct {
	once sync.Once
	path string
	out  []byte
	err  error
}

// routerBinary builds natreveal with routerTags for this machine.
func routerBinary(t *testing.T) string {
	t.Helper()
	routerBin.once.Do(func() {
		routerBin.path = filepath.Join(filepath.Dir(binary), "natreveal-router")
		routerBin.out, routerBin.err = exec.Command("go", "build", "-tags", routerTags, "-o", routerBin.path, "../cmd/natreveal").CombinedOutput()
	})
	if routerBin.err != nil {
		t.Fatalf("build natreveal -tags %s: %v\n%s", routerTags, routerBin.err, routerBin.out)
	}
	return routerBin.path
}

// The router build refuses metrics.listen (it has no HTTP server) with a
// usage error naming the key, takes the default as "no endpoint", and
// writes metrics.textfile with the counters a scrape would show; the file
// goes when the daemon stops.
func TestRouterBuildTextfile(t *testing.T) {
	bin := routerBinary(t)
	out, err := exec.Command(bin, "check", "--inside", lab.InsidePrefix, "--methods", "ip-id",
		"--metrics-listen", "127.0.0.1:9851").CombinedOutput()
	if code := exitCode(err); code != 2 || strings.Count(strings.TrimSpace(string(out)), "\n") != 0 ||
		!strings.Contains(string(out), "metrics.listen") || !strings.Contains(string(out), "metrics.textfile") {
		t.Errorf("check --metrics-listen: exit %d, %q; want exit 2 and one line naming metrics.listen and metrics.textfile", code, out)
	}
	if out, err := exec.Command(bin, "check", "--inside", lab.InsidePrefix, "--methods", "ip-id", "--metrics-textfile", "prom").CombinedOutput(); exitCode(err) != 2 {
		t.Errorf("check --metrics-textfile prom (relative): exit %d, %q; want 2", exitCode(err), out)
	}

	l := newLab(t)
	s := listen(t, l)
	file := filepath.Join(t.TempDir(), "natreveal.prom")
	d := startDaemonArgv(t, l, nil, []string{bin, "run", "--status-socket=", "--inside", lab.InsidePrefix,
		"--methods", "tcp-option,ip-id", "--metrics-textfile", file, "--metrics-interval", "1"})
	const n = 3
	for i := 0; i < n; i++ {
		connect(t, s, l.C1, fmt.Sprintf("r%d", i), 0)
	}
	const written = `natreveal_packets_total{method="ip-id",result="written"}`
	var m map[string]float64
	for deadline := time.Now().Add(10 * time.Second); ; {
		b, err := os.ReadFile(file)
		if err != nil {
			t.Fatalf("metrics.textfile: %v", err)
		}
		if m = samples(t, string(b)); retx(m[written], n) || time.Now().After(deadline) {
			break
		}
		time.Sleep(200 * time.Millisecond)
	}
	if !retx(m[written], n) {
		t.Errorf("%s = %v in the textfile, want %d (up to %d with retransmissions)", written, m[written], n, 2*n)
	}
	for k := range m {
		if strings.HasPrefix(k, "go_") || strings.HasPrefix(k, "process_") {
			t.Errorf("the router build wrote %s", k)
			break
		}
	}
	// No endpoint on the default address.
	if err := lab.Do(l.NAT, func() error {
		c, err := net.DialTimeout("tcp", "127.0.0.1:9850", time.Second)
		if err == nil {
			c.Close()
			return fmt.Errorf("something listens on 127.0.0.1:9850")
		}
		return nil
	}); err != nil {
		t.Error(err)
	}
	d.stop(t)
	if _, err := os.Stat(file); !os.IsNotExist(err) {
		t.Errorf("metrics.textfile outlived the daemon: %v", err)
	}
}
