package test

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
)

const owrt = "../openwrt/natreveal"

// The OpenWrt package's Makefile and scripts: syntax, and what a feed
// package with golang-package.mk and procd needs.
func TestOpenWrtPackageLint(t *testing.T) {
	mk, err := os.ReadFile(filepath.Join(owrt, "Makefile"))
	if err != nil {
		t.Fatal(err)
	}
	for _, re := range []string{
		`(?m)^include \$\(TOPDIR\)/rules\.mk$`,
		`(?m)^PKG_NAME:=natreveal$`, `(?m)^PKG_VERSION:=\S+$`, `(?m)^PKG_RELEASE:=\d+$`,
		`(?m)^PKG_BUILD_DEPENDS:=.*golang/host`,
		`(?m)^GO_PKG:=github\.com/natreveal/natreveal$`,
		`(?m)^GO_PKG_TAGS:=` + regexp.QuoteMeta(routerTags) + `$`, // what TestRouterBinarySize weighs
		`(?m)^GO_PKG_BUILD_PKG:=github\.com/natreveal/natreveal/cmd/natreveal \\\n\tgithub\.com/natreveal/natreveal/cmd/natreveal-server$`,
		`(?m)^include \$\(INCLUDE_DIR\)/package\.mk$`,
		`(?m)^include \.\./\.\./lang/golang/golang-package\.mk$`,
		`(?m)^\s+DEPENDS:=\$\(GO_ARCH_DEPENDS\)`,
		`\+kmod-nfnetlink-queue`, `@\(PACKAGE_kmod-nft-queue\|\|PACKAGE_kmod-nft-compat\)`, `\+kmod-nf-conntrack-netlink`,
		`(?m)^define Package/natreveal/conffiles\n/etc/config/natreveal\nendef`,
		`(?m)^\$\(eval \$\(call GoBinPackage,natreveal\)\)$`,
		`(?m)^\$\(eval \$\(call BuildPackage,natreveal\)\)$`,
	} {
		if !regexp.MustCompile(re).Match(mk) {
			t.Errorf("Makefile: nothing matches %s", re)
		}
	}
	// Recipe lines start with a tab (make); every file installed exists.
	inRecipe := false
	for i, ln := range strings.Split(string(mk), "\n") {
		if strings.HasPrefix(ln, "define Package/natreveal/install") {
			inRecipe = true
			continue
		}
		if ln == "endef" {
			inRecipe = false
		}
		if inRecipe {
			if !strings.HasPrefix(ln, "\t") {
				t.Errorf("Makefile:%d: recipe line without a tab: %q", i+1, ln)
			}
			for _, f := range regexp.MustCompile(`\./files/\S+`).FindAllString(ln, -1) {
				if _, err := os.Stat(filepath.Join(owrt, f)); err != nil {
					t.Errorf("Makefile:%d: %v", i+1, err)
				}
			}
		}
	}

	init, err := os.ReadFile(filepath.Join(owrt, "files/natreveal.init"))
	if err != nil {
		t.Fatal(err)
	}
	for _, re := range []string{`^#!/bin/sh /etc/rc.common\n`, `(?m)^USE_PROCD=1$`, `(?m)^START=\d+$`, `(?m)^STOP=\d+$`,
		`(?m)^start_service\(\)`, `(?m)^reload_service\(\)`, `(?m)^service_triggers\(\)`,
		`procd_set_param respawn`, `procd_add_reload_trigger natreveal firewall`, `uci2yaml`, `check --config`} {
		if !regexp.MustCompile(re).Match(init) {
			t.Errorf("natreveal.init: nothing matches %s", re)
		}
	}
	for _, f := range []string{"files/natreveal.init", "files/firewall.include", "files/natreveal.uci-defaults"} {
		if out, err := exec.Command("sh", "-n", filepath.Join(owrt, f)).CombinedOutput(); err != nil {
			t.Errorf("sh -n %s: %v\n%s", f, err, out)
		}
		if fi, err := os.Stat(filepath.Join(owrt, f)); err != nil || fi.Mode()&0o111 == 0 {
			t.Errorf("%s: not executable (%v)", f, err)
		}
	}
}

// The init script, with procd's and UCI's functions stubbed, converts the
// shipped UCI config, checks it and starts `natreveal run` with respawn;
// a reload sends SIGHUP.
func TestOpenWrtInitScript(t *testing.T) {
	l := newLab(t)
	dir := t.TempDir()
	uci, err := os.ReadFile(filepath.Join(owrt, "files/natreveal.config"))
	if err != nil {
		t.Fatal(err)
	}
	uciFile := filepath.Join(dir, "natreveal")
	if err := os.WriteFile(uciFile, []byte(strings.Replace(string(uci), "option enabled '0'", "option enabled '1'", 1)), 0o644); err != nil {
		t.Fatal(err)
	}
	initPath, _ := filepath.Abs(filepath.Join(owrt, "files/natreveal.init"))
	conf := filepath.Join(dir, "var/etc/natreveal.yaml")
	script := `
config_load() { :; }
config_get_bool() { eval "$1=1"; }
config_get() { eval "$1=\"$4\""; }
procd_open_instance() { echo "open $*"; }
procd_set_param() { echo "param $*"; }
procd_close_instance() { echo "close"; }
service_running() { return 0; }
procd_send_signal() { echo "signal $*"; }
. "$1"
PROG="$2"; UCI_FILE="$3"; CONF="$4"
start_service || exit 1
reload_service || exit 1
`
	bin := routerBinary(t) // the package's build
	out, err := l.Exec(l.NAT, "sh", "-c", script, "sh", initPath, bin, uciFile, conf)
	if err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	for _, want := range []string{
		"open main", "param command " + bin + " run --config " + conf,
		"param respawn 3600 5 5", "close", "signal natreveal main HUP",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("init script output lacks %q:\n%s", want, out)
		}
	}
	y, err := os.ReadFile(conf)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(y), `inside: ["100.64.0.0/10"]`) || !strings.Contains(string(y), `methods: ["tcp-option"]`) {
		t.Errorf("generated YAML:\n%s", y)
	}
}

// CGO-free cross builds for the usual router CPUs; sizes go to the log.
func TestCrossCompile(t *testing.T) {
	if testing.Short() {
		t.Skip("-short")
	}
	dir := t.TempDir()
	for _, target := range []struct{ name, goarch, env string }{
		{"mips-softfloat", "mips", "GOMIPS=softfloat"},
		{"arm-v7", "arm", "GOARM=7"},
		{"arm64", "arm64", ""},
	} {
		t.Run(target.name, func(t *testing.T) {
			t.Parallel()
			out := filepath.Join(dir, "natreveal-"+target.name)
			cmd := exec.Command("go", "build", "-trimpath", "-ldflags", "-s -w", "-o", out, "../cmd/natreveal")
			cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux", "GOARCH="+target.goarch)
			if target.env != "" {
				cmd.Env = append(cmd.Env, target.env)
			}
			if o, err := cmd.CombinedOutput(); err != nil {
				t.Fatalf("%v\n%s", err, o)
			}
			fi, err := os.Stat(out)
			if err != nil {
				t.Fatal(err)
			}
			t.Logf("linux/%s %s: %.1f MiB (stripped)", target.goarch, target.env, float64(fi.Size())/(1<<20))
		})
	}
}

// feedGoVersion is the Go of the OpenWrt packages feed: GO_VERSION_MAJOR_MINOR
// and GO_VERSION_PATCH of lang/golang/golang1.26/Makefile in
// github.com/openwrt/packages (1.26 is the feed's GO_DEFAULT_VERSION in
// lang/golang/golang-values.mk; read at commit 0521bb5, August 2026). The
// feed builds with GOTOOLCHAIN=local (golang-package.mk), so go.mod's go
// line may not be newer. Raise both together when the feed moves.
const feedGoVersion = "1.26.7"

// go.mod asks for no newer Go than the feed's.
func TestGoModFitsOpenWrtFeed(t *testing.T) {
	mod, err := os.ReadFile("../go.mod")
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`(?m)^go (\S+)$`).FindSubmatch(mod)
	if m == nil {
		t.Fatal("go.mod: no go line")
	}
	if cmpVersion(string(m[1]), feedGoVersion) > 0 {
		t.Errorf("go.mod: go %s is newer than the OpenWrt feed's Go %s (GOTOOLCHAIN=local)", m[1], feedGoVersion)
	}
	if regexp.MustCompile(`(?m)^toolchain `).Match(mod) {
		t.Error("go.mod: a toolchain line; the feed's GOTOOLCHAIN=local ignores it")
	}
}

// cmpVersion compares Go versions such as 1.26 and 1.26.7.
func cmpVersion(a, b string) int {
	as, bs := strings.Split(a, "."), strings.Split(b, ".")
	for i := 0; i < max(len(as), len(bs)); i++ {
		var x, y int
		if i < len(as) {
			x, _ = strconv.Atoi(as[i])
		}
		if i < len(bs) {
			y, _ = strconv.Atoi(bs[i])
		}
		if x != y {
			return x - y
		}
	}
	return 0
}

// The package fetches the release tarball of a tag with its sha256, as the
// feed's Go packages do; it installs only the router binary, the server
// tools go to a package of their own; the license it declares is there.
func TestOpenWrtPackageSource(t *testing.T) {
	mk, err := os.ReadFile(filepath.Join(owrt, "Makefile"))
	if err != nil {
		t.Fatal(err)
	}
	for _, re := range []string{
		`(?m)^PKG_SOURCE:=\$\(PKG_NAME\)-\$\(PKG_VERSION\)\.tar\.gz$`,
		`(?m)^PKG_SOURCE_URL:=https://codeload\.github\.com/natreveal/natreveal/tar\.gz/v\$\(PKG_VERSION\)\?$`,
		`(?m)^PKG_HASH:=[0-9a-f]{64}$`,
		`(?m)^PKG_LICENSE:=Apache-2\.0$`, `(?m)^PKG_LICENSE_FILES:=LICENSE$`,
		`(?m)^define Package/natreveal-server$`,
		`(?m)^\$\(eval \$\(call BuildPackage,natreveal-server\)\)$`,
	} {
		if !regexp.MustCompile(re).Match(mk) {
			t.Errorf("Makefile: nothing matches %s", re)
		}
	}
	for _, re := range []string{`PKG_MIRROR_HASH`, `PKG_SOURCE_PROTO`, `PKG_SOURCE_VERSION`, `(?m)^\s*DEPENDS:=.*\+kmod-nft-queue`} {
		if regexp.MustCompile(re).Match(mk) {
			t.Errorf("Makefile: %s is there", re)
		}
	}
	install := regexp.MustCompile(`(?s)define Package/natreveal/install\n(.*?)\nendef`).FindSubmatch(mk)
	if install == nil || !strings.Contains(string(install[1]), "$(GO_PKG_BUILD_BIN_DIR)/natreveal ") ||
		strings.Contains(string(install[1]), "natreveal-server") || strings.Contains(string(install[1]), "natreveal-lab") {
		t.Errorf("Package/natreveal/install must install the router binary alone: %q", install)
	}
	lic, err := os.ReadFile("../LICENSE")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(lic), "Apache License") || !strings.Contains(string(lic), "Version 2.0, January 2004") {
		t.Error("LICENSE is not the Apache License 2.0")
	}
}
