package test

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"time"
)

// The scaling bench's bundle for a bigger machine that has nothing of its
// own (lab/bench/device, docs/performance.md "Scaling table"): prepare.sh
// gathers it, and run.sh runs the bench from it in a root that holds only
// /bin/sh, the bundle and the kernel's file systems, as such a machine
// would. The table comes back with a row per mode at the CPU count the
// machine has, and a note for the count it lacks.
func TestDeviceBundle(t *testing.T) {
	needRoot(t)
	needTools(t, "ldd", "taskset", "sysctl", "unshare", "chroot", "git")
	root := t.TempDir()
	work := filepath.Join(root, "work")
	if out, err := exec.Command("sh", "../lab/bench/device/prepare.sh", filepath.Join(work, ".device")).CombinedOutput(); err != nil {
		t.Fatalf("prepare.sh: %v\n%s", err, out)
	}
	// The machine's own: /bin/sh and what it links, nothing else.
	sh, err := filepath.EvalSymlinks("/bin/sh")
	if err != nil {
		t.Fatal(err)
	}
	installExec(t, sh, filepath.Join(root, "bin/sh"))
	ldd, err := exec.Command("ldd", sh).Output()
	if err != nil {
		t.Fatalf("ldd %s: %v", sh, err)
	}
	for _, f := range strings.Fields(string(ldd)) {
		if strings.HasPrefix(f, "/") {
			installExec(t, f, filepath.Join(root, f))
		}
	}
	installExec(t, "../lab/bench/device/run.sh", filepath.Join(work, "lab/bench/device/run.sh"))
	for _, d := range []string{"proc", "sys", "dev", "run", "tmp", "var", "out"} {
		if err := os.MkdirAll(filepath.Join(root, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Symlink("/run", filepath.Join(root, "var/run")); err != nil {
		t.Fatal(err)
	}

	// One CPU, and one more than the machine has: that count is skipped.
	more := runtime.NumCPU() + 1
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	// A mount namespace of its own: the mounts go with its last process.
	cmd := exec.CommandContext(ctx, "unshare", "-m", "--propagation", "private", "sh", "-ec", fmt.Sprintf(`
R=%s
mount --bind "$R" "$R"
mount -t proc proc "$R/proc"
mount --rbind /sys "$R/sys"
mount --rbind /dev "$R/dev"
mount -t tmpfs tmpfs "$R/run"
exec chroot "$R" /bin/sh -c 'cd /work && OUT=/out lab/bench/device/run.sh -cpus 1,%d -modes queue -quick'
`, root, more))
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	if out, err := cmd.CombinedOutput(); err != nil {
		progress, _ := os.ReadFile(filepath.Join(root, "out/progress.txt"))
		t.Fatalf("run.sh in the bare root: %v\n%s\n%s", err, out, progress)
	}

	progress, err := os.ReadFile(filepath.Join(root, "out/progress.txt"))
	if err != nil {
		t.Fatal(err)
	}
	skip := fmt.Sprintf("scaling: %d CPUs asked, this machine lets the bench use %d: skipped", more, runtime.NumCPU())
	if !strings.Contains(string(progress), skip) {
		t.Errorf("progress lacks %q:\n%s", skip, progress)
	}
	table, err := os.ReadFile(filepath.Join(root, "out/scaling.txt"))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(table), fmt.Sprintf("%d CPUs", runtime.NumCPU())) || !strings.Contains(string(table), "sat SYN x") {
		t.Errorf("scaling.txt is not the table:\n%s", table)
	}
	b, err := os.ReadFile(filepath.Join(root, "out/scaling.json"))
	if err != nil {
		t.Fatal(err)
	}
	var rep struct {
		Kernel  string `json:"kernel"`
		CPUs    int    `json:"cpus"`
		Scaling []struct {
			CPUs        int     `json:"cpus"`
			Queues      int     `json:"queues"`
			Mode        string  `json:"mode"`
			SYNRate     float64 `json:"syn_per_s"`
			SatSYN      float64 `json:"sat_syn_ratio"`
			ConnRate    float64 `json:"conn_per_s"`
			Unaccounted int64   `json:"unaccounted_syns"`
		} `json:"scaling"`
		Unaccounted bool `json:"unaccounted_syns"`
	}
	if err := json.Unmarshal(b, &rep); err != nil {
		t.Fatalf("scaling.json: %v\n%s", err, b)
	}
	if rep.CPUs != runtime.NumCPU() || rep.Kernel == "" {
		t.Errorf("scaling.json: cpus %d kernel %q, want %d and this kernel's release", rep.CPUs, rep.Kernel, runtime.NumCPU())
	}
	modes := map[string]bool{}
	for _, r := range rep.Scaling {
		if r.CPUs != 1 || r.Queues != 1 {
			t.Errorf("row %+v: only 1 CPU and 1 queue were asked", r)
		}
		modes[r.Mode] = true
		if r.SYNRate <= 0 || r.ConnRate <= 0 || r.SatSYN <= 0 {
			t.Errorf("row %+v: no SYNs or connections measured", r)
		}
	}
	if len(rep.Scaling) != 2 || !modes["kernel"] || !modes["queue"] {
		t.Errorf("scaling rows %+v, want kernel and queue at 1 CPU", rep.Scaling)
	}
	if rep.Unaccounted {
		t.Logf("some flooded SYNs unaccounted (a timing of this machine; the bench's warning): %s", table)
	}
}

// installExec copies an executable, making its directory.
func installExec(t *testing.T, from, to string) {
	t.Helper()
	b, err := os.ReadFile(from)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Dir(to), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(to, b, 0o755); err != nil {
		t.Fatal(err)
	}
}
