package lab

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
)

// RouterPackage is the import path of the router binary, `natreveal`.
const RouterPackage = "github.com/natreveal/natreveal/cmd/natreveal"

// Natreveal finds the router binary the lab runs on its NAT: path if not
// empty; else a `natreveal` next to this executable (an installed or
// test-built natreveal-lab); else one built from source into dir with
// `go build` (`go run ./cmd/natreveal-lab` inside the module), saying so on
// log; else `natreveal` from PATH.
func Natreveal(ctx context.Context, path, dir string, log io.Writer) (string, error) {
	if path != "" {
		return path, nil
	}
	if self, err := os.Executable(); err == nil {
		sib := filepath.Join(filepath.Dir(self), "natreveal")
		if st, err := os.Stat(sib); err == nil && st.Mode().IsRegular() && st.Mode()&0o111 != 0 {
			return sib, nil
		}
	}
	var buildErr error
	if _, err := exec.LookPath("go"); err == nil {
		bin := filepath.Join(dir, "natreveal")
		if log != nil {
			fmt.Fprintln(log, "building natreveal ...")
		}
		// As `make install` and the OpenWrt package build it: a cgo binary
		// cannot drop capabilities from its threads' bounding sets.
		cmd := exec.CommandContext(ctx, "go", "build", "-o", bin, RouterPackage)
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
		out, err := cmd.CombinedOutput()
		if err == nil {
			return bin, nil
		}
		buildErr = fmt.Errorf("build natreveal: %v\n%s", err, out)
	}
	if p, err := exec.LookPath("natreveal"); err == nil {
		return p, nil
	}
	if buildErr != nil {
		return "", buildErr
	}
	return "", fmt.Errorf("lab: no natreveal binary next to this one, no go toolchain to build it, none in PATH")
}
