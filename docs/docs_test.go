// Package docs holds natreveal's documents; its tests keep them in shape:
// README.md stays a front door, methods.md has a section per method, no
// document reads like a work diary, and no text file refers to a document
// outside the repository.
package docs

import (
	"bytes"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/natreveal/natreveal/method"
	"github.com/natreveal/natreveal/method/all"
)

// readmeMax is the README's size limit: a front door, not a manual.
const readmeMax = 10 * 1024

// readmeStart is how README.md begins: the main job and every test.
const readmeStart = "```sh\n" +
	"go run ./cmd/natreveal-lab lab   # the main job: every method measured in network namespaces, Table 1 of RFC 6967, claim beside measurement\n" +
	"go test -count=1 -timeout 30m ./...   # every test (.ci/run installs what they need)\n" +
	"```\n"

// methods are the methods docs/methods.md describes, one "## <name>"
// section each: every registered method.
var methods = all.Names(func(method.Method) bool { return true })

func TestReadme(t *testing.T) {
	b, err := os.ReadFile("../README.md")
	if err != nil {
		t.Fatal(err)
	}
	if len(b) > readmeMax {
		t.Errorf("README.md is %d bytes, more than %d: move detail to docs/", len(b), readmeMax)
	}
	if !bytes.HasPrefix(b, []byte(readmeStart)) {
		t.Errorf("README.md does not start with the two commands:\n%s", readmeStart)
	}
}

func TestMethodSections(t *testing.T) {
	b, err := os.ReadFile("methods.md")
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range methods {
		if !regexp.MustCompile(`(?m)^## ` + regexp.QuoteMeta(m) + `$`).Match(b) {
			t.Errorf("docs/methods.md has no section %q", "## "+m)
		}
	}
}

// outside matches references to documents that are not in the repository;
// outsideGo is the same for Go files, where "seed" is also fuzzing's word.
var (
	outside   = regexp.MustCompile(`\.\./shared|DESIGN\.md|(?i:\bseed\b)`)
	outsideGo = regexp.MustCompile(`\.\./shared|DESIGN\.md|(?i:\bseed (§|note)|\bthe seed\b|\bseed's)`)
)

// diary matches what belongs to the project's history, not to its
// documents: issue numbers, and where or when a change was made.
var diary = regexp.MustCompile(`(?i)\bissues? #?\d+|(^|[\s(])#\d+\b|\bthis (session|branch)\b|\bthe branch\b|\b(on|of) main\b|\bmain before\b|\bdevelopment machine\b`)

// README.md and docs/*.md are written for their readers: no issue numbers,
// no account of the work that produced them.
func TestNoDiary(t *testing.T) {
	files, err := filepath.Glob("*.md")
	if err != nil {
		t.Fatal(err)
	}
	for _, path := range append(files, "../README.md") {
		b, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		for i, line := range strings.Split(string(b), "\n") {
			if m := diary.FindString(line); m != "" {
				t.Errorf("%s:%d: %q is history, not documentation (say what holds and how it was measured): %s", path, i+1, m, line)
			}
		}
	}
}

// Text and Go files refer to RFCs and to RFC 6967 /
// draft-boucadair-intarea-nat-reveal-analysis, never to documents a reader
// does not get.
func TestNoOutsideReferences(t *testing.T) {
	err := filepath.WalkDir("..", func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			if d.Name() == ".git" {
				return filepath.SkipDir
			}
			return nil
		}
		if !d.Type().IsRegular() {
			return nil
		}
		re := outside
		if strings.HasSuffix(path, ".go") {
			re = outsideGo
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		if bytes.IndexByte(b, 0) >= 0 {
			return nil // binary
		}
		for i, line := range strings.Split(string(b), "\n") {
			if re.MatchString(line) && !strings.Contains(line, "regexp.MustCompile") {
				t.Errorf("%s:%d refers to a document outside the repository: %s", path, i+1, line)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}
