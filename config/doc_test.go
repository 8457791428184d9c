package config

import (
	"flag"
	"fmt"
	"os"
	"regexp"
	"strings"
	"testing"
)

// go test ./config -run TestConfigurationDoc -update rewrites the key tables
// of docs/configuration.md from Keys.
var update = flag.Bool("update", false, "rewrite the key tables of docs/configuration.md")

const (
	docPath  = "../docs/configuration.md"
	docBegin = "<!-- keys: generated from config.Keys by `go test ./config -run TestConfigurationDoc -update`; do not edit -->"
	docEnd   = "<!-- end of keys -->"
)

// sectionTitles heads each section's table; a new section needs a title.
var sectionTitles = map[string]string{
	"":               "General",
	"hostid":         "`hostid`: where the HOST_ID comes from",
	"tcp_option":     "`tcp_option`: the tcp-option method (RFC 7974)",
	"ip_id":          "`ip_id`: the ip-id method (IPv4 Identification)",
	"ip_option":      "`ip_option`: the ip-option method (IPv4 option, RFC 4727 type)",
	"dest_opt":       "`dest_opt`: the dest-opt method (IPv6 Destination Option, RFC 8200 §4.6)",
	"ident":          "`ident`: the ident method (RFC 1413)",
	"http_header":    "`http_header`: the http-header method (X-Forwarded-For, RFC 7239 Forwarded)",
	"proxy_protocol": "`proxy_protocol`: the proxy-protocol method (PROXY protocol v1/v2)",
	"port_set":       "`port_set`: the port-set method (deterministic NAT, RFC 7422)",
	"mapping_log":    "`mapping_log`: the mapping log (RFC 6888 §4)",
	"queue":          "`queue`: the NFQUEUE queues",
	"flows":          "`flows`: the packet path's flow table",
	"marks":          "`marks`: packet and conntrack mark bits",
	"metrics":        "`metrics`: the Prometheus endpoint",
	"log":            "`log`: logging",
	"status":         "`status`: the control socket of natreveal status",
}

func section(name string) string {
	if i := strings.IndexByte(name, '.'); i >= 0 {
		return name[:i]
	}
	return ""
}

// keyTables renders every key, a table per section in declaration order.
func keyTables(t *testing.T) string {
	var b strings.Builder
	cur := "-"
	for _, k := range KeyList() {
		if s := section(k.Name); s != cur {
			cur = s
			title, ok := sectionTitles[s]
			if !ok {
				t.Fatalf("section %q of key %s has no title in sectionTitles", s, k.Name)
			}
			fmt.Fprintf(&b, "\n### %s\n\n", title)
			b.WriteString("| Key | Type | Default | Flag | Environment | Meaning |\n")
			b.WriteString("|---|---|---|---|---|---|\n")
		}
		def := "`" + k.Default + "`"
		switch {
		case k.Name == "inside" || k.Name == "methods":
			def = "required"
		case k.Default == "":
			def = "empty"
		}
		cell := func(s string) string { return strings.ReplaceAll(s, "|", `\|`) }
		fmt.Fprintf(&b, "| `%s` | %s | %s | `--%s` | `%s` | %s |\n",
			k.Name, cell(k.Type), cell(def), k.Flag, k.Env, cell(k.Help))
	}
	return b.String()
}

// docs/configuration.md lists every key of Keys and no other: its tables
// are generated, and a key named in a table row must exist.
func TestConfigurationDoc(t *testing.T) {
	data, err := os.ReadFile(docPath)
	if err != nil {
		t.Fatal(err)
	}
	doc := string(data)
	i, j := strings.Index(doc, docBegin), strings.Index(doc, docEnd)
	if i < 0 || j < i {
		t.Fatalf("%s: no %q ... %q block", docPath, docBegin, docEnd)
	}
	want := docBegin + "\n" + keyTables(t) + "\n" + docEnd
	if got := doc[i : j+len(docEnd)]; got != want {
		if *update {
			doc = doc[:i] + want + doc[j+len(docEnd):]
			if err := os.WriteFile(docPath, []byte(doc), 0o644); err != nil {
				t.Fatal(err)
			}
		} else {
			t.Errorf("%s is out of date with config.Keys: run go test ./config -run TestConfigurationDoc -update", docPath)
		}
	}

	// Independently of the block: every key has a row, every row a key.
	known := map[string]bool{}
	for _, k := range KeyList() {
		known[k.Name] = true
	}
	rowKey := regexp.MustCompile("(?m)^\\| `([^`]+)` \\|")
	seen := map[string]bool{}
	for _, m := range rowKey.FindAllStringSubmatch(doc, -1) {
		if !known[m[1]] {
			t.Errorf("%s names key %s, which config.Keys does not have", docPath, m[1])
		}
		seen[m[1]] = true
	}
	for _, k := range KeyList() {
		if !seen[k.Name] {
			t.Errorf("%s has no row for key %s", docPath, k.Name)
		}
	}
	// Keys the prose names in back quotes as section.key must exist too.
	proseKey := regexp.MustCompile("`([a-z_]+\\.[a-z_]+)`")
	for _, m := range proseKey.FindAllStringSubmatch(doc, -1) {
		if !known[m[1]] {
			t.Errorf("%s names key %s, which config.Keys does not have", docPath, m[1])
		}
	}
}
