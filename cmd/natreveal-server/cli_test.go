package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/natreveal/natreveal/internal/cli"
)

// runCLI runs natreveal-server with args as main does and returns the exit
// code, stdout and stderr.
func runCLI(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	root := rootCmd()
	cli.Prepare(root, "test")
	var stdout, stderr bytes.Buffer
	root.SetOut(&stdout)
	root.SetErr(&stderr)
	code := cli.Run(root, args, &stderr)
	return code, stdout.String(), stderr.String()
}

// wantUsage runs args and wants exit 2 with one stderr line holding each
// of want.
func wantUsage(t *testing.T, args []string, want ...string) {
	t.Helper()
	code, _, stderr := runCLI(t, args...)
	lines := strings.Split(strings.TrimSuffix(stderr, "\n"), "\n")
	if code != cli.ExitUsage || len(lines) != 1 {
		t.Errorf("%s: exit %d, stderr %q; want exit 2, one line", strings.Join(args, " "), code, stderr)
		return
	}
	for _, w := range want {
		if !strings.Contains(lines[0], w) {
			t.Errorf("%s: stderr %q, want %q in it", strings.Join(args, " "), lines[0], w)
		}
	}
}

// observe --control never removes a file that is not a socket: it is
// refused, exit 2, and stays.
func TestListenControlLeavesOtherFiles(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "notes.txt")
	if err := os.WriteFile(file, []byte("keep"), 0o644); err != nil {
		t.Fatal(err)
	}
	sub := filepath.Join(dir, "sub")
	if err := os.Mkdir(sub, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, path := range []string{file, sub} {
		ln, err := listenControl(path)
		if err == nil {
			ln.Close()
		}
		if cli.Code(err) != cli.ExitUsage || !strings.Contains(err.Error(), "not a socket") {
			t.Errorf("listenControl(%s): %v, want a usage error saying it is not a socket", path, err)
		}
		if _, err := os.Lstat(path); err != nil {
			t.Errorf("%s: %v", path, err)
		}
	}
	if b, _ := os.ReadFile(file); string(b) != "keep" {
		t.Errorf("%s holds %q", file, b)
	}
	sock := filepath.Join(dir, "run", "observe.sock")
	ln, err := listenControl(sock)
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	if _, err := listenControl(sock); cli.Code(err) != cli.ExitUsage || !strings.Contains(err.Error(), "another observe") {
		t.Errorf("second listenControl: %v", err)
	}
}

// A --control path too long for sun_path is bad input, said before
// anything is installed.
func TestObserveControlPathTooLong(t *testing.T) {
	long := filepath.Join(t.TempDir(), strings.Repeat("x", 120))
	wantUsage(t, []string{"observe", "--control", long}, "--control:", "at most 107")
	wantUsage(t, []string{"who", "--control", long, "192.0.2.1:4000"}, "--control:", "at most 107")
}

// mapping lookup: --proto is a protocol the log can name (any case), a
// file that is not a mapping log is bad input naming its line.
func TestMappingInput(t *testing.T) {
	dir := t.TempDir()
	rec := `{"time":"2026-06-01T09:00:00Z","event":"new","proto":"tcp","inside":"100.64.0.2","inside_port":40000,"public":"192.0.2.1","public_port":3000}`
	good := filepath.Join(dir, "a.jsonl")
	bad := filepath.Join(dir, "b.jsonl")
	if err := os.WriteFile(good, []byte(rec+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(bad, []byte(rec+"\nnot a record\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	lookup := []string{"mapping", "lookup", "--log", good, "--at", "2026-06-01T09:00:01Z"}
	wantUsage(t, append(lookup, "--proto", "bogus", "192.0.2.1:3000"), "--proto:", `"bogus"`)
	wantUsage(t, append(lookup, "--proto", "256", "192.0.2.1:3000"), "--proto:")
	for _, p := range []string{"TCP", "tcp", "6"} {
		code, out, stderr := runCLI(t, append(lookup, "--proto", p, "192.0.2.1:3000")...)
		if code != 0 || !strings.Contains(out, `"inside":"100.64.0.2"`) {
			t.Errorf("--proto %s: exit %d, %s%s", p, code, out, stderr)
		}
	}
	wantUsage(t, []string{"mapping", "merge", "--log", good, "--log", bad}, "mapping log "+bad+" line 2:")
	wantUsage(t, []string{"mapping", "lookup", "--log", bad, "192.0.2.1:3000"}, "mapping log "+bad+" line 2:")
	wantUsage(t, []string{"mapping", "merge", "--log", filepath.Join(dir, "none")}, "--log:")
}

// portset lookup names the flag an error is about, with its dashes.
func TestPortsetLookupInput(t *testing.T) {
	dir := t.TempDir()
	key := filepath.Join(dir, "key")
	if err := os.WriteFile(key, []byte("short\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	policy := filepath.Join(dir, "policy")
	code, _, stderr := runCLI(t, "portset", "lookup", "--policy", policy, "192.0.2.1:1024")
	if code != 2 || !strings.Contains(stderr, "--policy: ") {
		t.Errorf("a missing policy: exit %d, %q", code, stderr)
	}
	// A policy that reads; every error after it names its flag.
	// RFC 7422 §2.3's example: a /28 on 192.0.2.1, 4032 ports each.
	if err := os.WriteFile(policy, []byte("198.51.100.0:28:192.0.2.1:32:2:4032:0:0-1023\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := readPolicy(policy); err != nil {
		t.Fatalf("policy line: %v", err)
	}
	look := []string{"portset", "lookup", "--policy", policy}
	wantUsage(t, append(look, "--hostid-bits", "8", "192.0.2.1:1024"), "--hostid-bits: ")
	wantUsage(t, append(look, "--hostid-source", "nope", "192.0.2.1:1024"), "--hostid-source: ")
	wantUsage(t, append(look, "--hostid-source", "hash", "--hostid-key-file", key, "192.0.2.1:1024"), "--hostid-key-file: ", "16 bytes")
	wantUsage(t, append(look, "--hostid-source", "hash", "192.0.2.1:1024"), "--hostid-key-file: required")
	wantUsage(t, append(look, "--hostid-source", "map", "192.0.2.1:1024"), "--hostid-map-file: required")
}

// --help names --policy's argument FILE, not a back-quoted word of its
// usage.
func TestPortsetLookupHelp(t *testing.T) {
	code, out, _ := runCLI(t, "portset", "lookup", "--help")
	if code != 0 || !strings.Contains(out, "--policy FILE") || strings.Contains(out, "--policy portset") {
		t.Errorf("help: exit %d\n%s", code, out)
	}
}

// guard install: --nat with host bits set and an option type of 0 are bad
// input, refused before any netlink.
func TestGuardInstallInput(t *testing.T) {
	wantUsage(t, []string{"guard", "install", "--table", "natreveal_test_unused", "--nat", "100.64.0.1/10"}, "--nat: 100.64.0.1/10 has host bits set", "100.64.0.0/10")
	wantUsage(t, []string{"guard", "install", "--table", "natreveal_test_unused", "--nat", "192.0.2.1", "--ip-option-type", "0"}, "--ip-option-type: 0 is not")
	wantUsage(t, []string{"guard", "install", "--table", "natreveal_test_unused", "--nat", "2001:db8::1", "--dest-opt-type", "0"}, "--dest-opt-type: 0x0 is not")
}

// A miss says why: a reserved port, another address, or a port past the
// last block; a hit names the HOST_ID source it used.
func TestPortsetLookupMissReason(t *testing.T) {
	policy := filepath.Join(t.TempDir(), "policy.json")
	if err := os.WriteFile(policy, []byte(`{"inside":["100.64.0.0/24"],"public":["192.0.2.1"],"block_size":252}`), 0o644); err != nil {
		t.Fatal(err)
	}
	code, out, _ := runCLI(t, "portset", "lookup", "--policy", policy, "192.0.2.1:1300", "192.0.2.1:80", "192.0.2.2:1300", "192.0.2.1:65535")
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if code != 1 || len(lines) != 4 {
		t.Fatalf("exit %d, want 1:\n%s", code, out)
	}
	for i, want := range []string{`"hostid_source":"lower16"`, "below the policy's first port 1024", "192.0.2.2 is not one of the policy's 1 public addresses", "past the last block"} {
		if !strings.Contains(lines[i], want) {
			t.Errorf("answer %d: %s, want %q", i, lines[i], want)
		}
	}
}

// mapping lookup marks an answer from a binding without an end in the log
// ("open") and a time after the log's last record ("after_log_end"), and
// keeps exit 0: the host is still the log's answer.
func TestMappingLookupOpenAfterLogEnd(t *testing.T) {
	dir := t.TempDir()
	log := filepath.Join(dir, "a.jsonl")
	recs := `{"time":"2026-06-01T09:00:00Z","event":"new","proto":"tcp","inside":"100.64.0.2","inside_port":40000,"public":"192.0.2.1","public_port":3000}
{"time":"2026-06-01T09:00:00Z","event":"new","proto":"tcp","inside":"100.64.0.3","inside_port":40000,"public":"192.0.2.1","public_port":3001}
{"time":"2026-06-01T09:00:05Z","event":"destroy","proto":"tcp","inside":"100.64.0.3","inside_port":40000,"public":"192.0.2.1","public_port":3001}
`
	if err := os.WriteFile(log, []byte(recs), 0o644); err != nil {
		t.Fatal(err)
	}
	look := func(at, ap string) (int, string) {
		code, out, stderr := runCLI(t, "mapping", "lookup", "--log", log, "--at", at, ap)
		return code, out + stderr
	}
	if code, out := look("2026-06-01T09:00:01Z", "192.0.2.1:3000"); code != 0 || !strings.Contains(out, `"open":true`) || strings.Contains(out, "after_log_end") {
		t.Errorf("open binding within the log: exit %d, %s", code, out)
	}
	if code, out := look("2026-06-01T09:00:01Z", "192.0.2.1:3001"); code != 0 || strings.Contains(out, `"open"`) {
		t.Errorf("ended binding: exit %d, %s", code, out)
	}
	code, out := look("2026-12-01T09:00:00Z", "192.0.2.1:3000")
	if code != 0 || !strings.Contains(out, `"open":true`) || !strings.Contains(out, `"after_log_end":true`) || !strings.Contains(out, `"log_end":"2026-06-01T09:00:05Z"`) {
		t.Errorf("six months after the log: exit %d, %s", code, out)
	}
}
