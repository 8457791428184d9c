package test

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// routerGoal is the stripped size the router binary must fit for
// GOARCH=mips GOMIPS=softfloat: most OpenWrt routers have 8 or 16 MB of NOR
// flash for everything.
const routerGoal = 8 << 20

// The router binary's stripped size, printed for mips (softfloat) and
// arm64 as the OpenWrt package builds it (routerTags) and, for comparison,
// as a default build; the mips router build must fit routerGoal.
//
// What it weighs, measured on 2026-12-04 (mips, stripped): 13.2 MB before
// cobra's --version template went (executing any text/template makes the
// linker keep every exported method of every reachable type: 2.7 MB);
// the default build's net/http server for metrics.listen costs about
// 2.0 MB and the Go runtime and process metrics about 90 KB, both left out
// of the router build. What remains above the packet path is mostly the
// configuration: viper (a required library) and its afero, whose import of
// net/http links that package's init (crypto/tls, x509, the ECDH curves:
// about 1 MB). viper's own file reading (ReadInConfig) would link its codec
// registry, TOML and dotenv with YAML: config reads the file itself (320 KB,
// 2026-12-05).
func TestRouterBinarySize(t *testing.T) {
	dir := t.TempDir()
	for _, c := range []struct {
		arch, tags string
		env        []string
	}{
		{"mips", routerTags, []string{"GOARCH=mips", "GOMIPS=softfloat"}},
		{"arm64", routerTags, []string{"GOARCH=arm64"}},
		{"mips", "", []string{"GOARCH=mips", "GOMIPS=softfloat"}},
	} {
		out := filepath.Join(dir, "natreveal-"+c.arch+"-"+c.tags)
		cmd := exec.Command("go", "build", "-tags", c.tags, "-trimpath", "-ldflags", "-s -w", "-o", out, "../cmd/natreveal")
		cmd.Env = append(append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux"), c.env...)
		if b, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("build for %s -tags %q: %v\n%s", c.arch, c.tags, err, b)
		}
		fi, err := os.Stat(out)
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("natreveal stripped, %s -tags %q: %d bytes (%s)", strings.Join(c.env, " "), c.tags, fi.Size(), mib(fi.Size()))
		if c.arch == "mips" && c.tags == routerTags && fi.Size() > routerGoal {
			t.Errorf("mips router build: %s, more than %s", mib(fi.Size()), mib(routerGoal))
		}
	}
}

func mib(n int64) string { return fmt.Sprintf("%.2f MiB", float64(n)/(1<<20)) }

// The router binary links none of what only servers, the lab or the
// bench need.
func TestRouterBinaryDeps(t *testing.T) {
	out, err := exec.Command("go", "list", "-deps", "../cmd/natreveal").CombinedOutput()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, out)
	}
	const mod = "github.com/natreveal/natreveal/"
	banned := []string{
		mod + "labrun", mod + "lab", mod + "test/", // the namespace lab, the bench, the demo
		mod + "reveal", mod + "observe", mod + "cmd/natreveal-server", // the server-side readers
		"github.com/gopacket/gopacket", // the capture decoder
		"github.com/florianl/go-nflog", // observe's NFLOG
		"github.com/prometheus/",       // the Prometheus client: metrics/ writes the text format itself
		"google.golang.org/protobuf",   // (what the Prometheus client linked)
	}
	for _, p := range strings.Fields(string(out)) {
		for _, b := range banned {
			if p == b || strings.HasPrefix(p, strings.TrimSuffix(b, "/")+"/") {
				t.Errorf("the router binary links %s", p)
			}
		}
	}
}
