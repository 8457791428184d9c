package metrics

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// counting exposes one counter that grows with every scrape, or fails.
type counting struct {
	n    atomic.Int64
	fail atomic.Bool
}

func (c *counting) Expose(w io.Writer) error {
	if c.fail.Load() {
		return errors.New("no scrape")
	}
	_, err := fmt.Fprintf(w, "# TYPE natreveal_test_scrapes_total counter\nnatreveal_test_scrapes_total %d\n", c.n.Add(1))
	return err
}

// readScrapes parses path as a collector would and returns the counter.
func readScrapes(t *testing.T, path string) float64 {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	p := expfmt.NewTextParser(model.UTF8Validation)
	mfs, err := p.TextToMetricFamilies(f)
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	mf := mfs["natreveal_test_scrapes_total"]
	if mf == nil || len(mf.Metric) != 1 {
		t.Fatalf("%s: no counter in %v", path, mfs)
	}
	return mf.Metric[0].GetCounter().GetValue()
}

func TestTextfile(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "natreveal.prom")
	var e counting
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	errs := make(chan error, 8)
	done, err := Textfile(ctx, path, 10*time.Millisecond, &e, func(err error) { errs <- err })
	if err != nil {
		t.Fatal(err)
	}
	if v := readScrapes(t, path); v != 1 {
		t.Fatalf("first write: %v scrapes, want 1", v)
	}
	if fi, err := os.Stat(path); err != nil || fi.Mode().Perm() != 0o644 {
		t.Fatalf("mode: %v %v", fi, err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for readScrapes(t, path) < 3 {
		if time.Now().After(deadline) {
			t.Fatal("the file was not rewritten")
		}
		time.Sleep(5 * time.Millisecond)
	}

	// A failing scrape is reported once and leaves the last good file.
	e.fail.Store(true)
	select {
	case err := <-errs:
		if !strings.Contains(err.Error(), "no scrape") {
			t.Fatalf("reported %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("a failing scrape was not reported")
	}
	time.Sleep(50 * time.Millisecond)
	if len(errs) != 0 {
		t.Errorf("the same error reported %d more times", len(errs))
	}
	if v := readScrapes(t, path); v < 3 {
		t.Errorf("after a failed scrape: %v", v)
	}

	cancel()
	<-done
	if _, err := os.Stat(path); !os.IsNotExist(err) {
		t.Errorf("the file outlived the daemon: %v", err)
	}
	if left, _ := filepath.Glob(filepath.Join(dir, ".*")); len(left) != 0 {
		t.Errorf("temporary files left: %v", left)
	}
}

func TestTextfileNoDirectory(t *testing.T) {
	_, err := Textfile(context.Background(), filepath.Join(t.TempDir(), "none", "natreveal.prom"), time.Second, &counting{}, func(error) {})
	if err == nil || !strings.Contains(err.Error(), "natreveal.prom") {
		t.Fatalf("a missing directory: %v", err)
	}
}
