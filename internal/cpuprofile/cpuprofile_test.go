package cpuprofile

import (
	"os"
	"path/filepath"
	"testing"
	"time"
)

func TestFromEnv(t *testing.T) {
	t.Setenv(File, "")
	if err := FromEnv(); err != nil {
		t.Fatalf("no profile asked: %v", err)
	}
	path := filepath.Join(t.TempDir(), "cpu.pprof")
	t.Setenv(File, path)
	t.Setenv(Seconds, "x")
	if err := FromEnv(); err == nil {
		t.Fatal("a bad duration was taken")
	}
	t.Setenv(Seconds, "1")
	if err := FromEnv(); err != nil {
		t.Fatal(err)
	}
	for end := time.Now().Add(5 * time.Second); time.Now().Before(end); time.Sleep(50 * time.Millisecond) {
		if st, err := os.Stat(path); err == nil && st.Size() > 0 {
			return
		}
	}
	t.Fatal("no profile written")
}
