package metrics

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"
)

// Exposer writes one scrape in the text exposition format (*Registry).
type Exposer interface{ Expose(w io.Writer) error }

// Textfile writes e to path now and then every interval until ctx ends,
// then removes the file: stale counters would read as a live daemon's. It
// is what node exporter's textfile collector reads (and the OpenWrt
// package prometheus-node-exporter-lua-textfile, from /var/prometheus/*.prom),
// so a router serves metrics without an HTTP server of its own. Each write
// is a new file renamed over the old one, so a collector never reads half a
// scrape. The first write's error is returned; later ones go to report,
// once per change of error.
func Textfile(ctx context.Context, path string, interval time.Duration, e Exposer, report func(error)) (done <-chan struct{}, err error) {
	var b bytes.Buffer
	if err := writeTextfile(path, e, &b); err != nil {
		return nil, err
	}
	ch := make(chan struct{})
	go func() {
		defer close(ch)
		t := time.NewTicker(interval)
		defer t.Stop()
		var last string
		for {
			select {
			case <-ctx.Done():
				if err := os.Remove(path); err != nil && !os.IsNotExist(err) {
					report(fmt.Errorf("metrics: remove %s: %w", path, err))
				}
				return
			case <-t.C:
			}
			msg := ""
			if err := writeTextfile(path, e, &b); err != nil {
				if msg = err.Error(); msg != last {
					report(err)
				}
			}
			last = msg
		}
	}()
	return ch, nil
}

// writeTextfile writes one scrape to path through a temporary file in the
// same directory (rename(2) is atomic within a file system).
func writeTextfile(path string, e Exposer, b *bytes.Buffer) error {
	b.Reset()
	if err := e.Expose(b); err != nil {
		return fmt.Errorf("metrics: %w", err)
	}
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*")
	if err != nil {
		return fmt.Errorf("metrics: textfile: %w", err)
	}
	_, err = f.Write(b.Bytes())
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Chmod(f.Name(), 0o644)
	}
	if err == nil {
		err = os.Rename(f.Name(), path)
	}
	if err != nil {
		os.Remove(f.Name())
		return fmt.Errorf("metrics: textfile %s: %w", path, err)
	}
	return nil
}
