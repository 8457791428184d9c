package cli

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
)

// CheckOutput says, before a long run, whether the run's results can be
// written to path later, so that a mistyped path loses no results: a file
// there must be a regular one that opens for writing; a new one's
// directory must exist and take a file. Nothing is left at path. The
// error names flag (with its dashes) and is a usage error (exit 2).
func CheckOutput(flag, path string) error {
	bad := func(format string, a ...any) error {
		return UsageErr(fmt.Errorf("%s: %s: %s", flag, path, fmt.Sprintf(format, a...)))
	}
	fi, err := os.Stat(path)
	switch {
	case err == nil && fi.IsDir():
		return bad("is a directory")
	case err == nil && !fi.Mode().IsRegular():
		return nil // a device or a pipe (/dev/stdout): written as it is
	case err == nil:
		f, err := os.OpenFile(path, os.O_WRONLY, 0) // no O_TRUNC: kept as it is
		if err != nil {
			return bad("%v", unwrapPath(err))
		}
		return f.Close()
	case !errors.Is(err, fs.ErrNotExist):
		return bad("%v", unwrapPath(err))
	}
	dir := filepath.Dir(path)
	if di, err := os.Stat(dir); err != nil {
		return bad("directory %s: %v", dir, unwrapPath(err))
	} else if !di.IsDir() {
		return bad("%s is not a directory", dir)
	}
	f, err := os.CreateTemp(dir, ".natreveal-check-*")
	if err != nil {
		return bad("cannot create a file in %s: %v", dir, unwrapPath(err))
	}
	f.Close()
	return os.Remove(f.Name())
}

// unwrapPath is a *fs.PathError's cause: the message names the path once.
func unwrapPath(err error) error {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}
