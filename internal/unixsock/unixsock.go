// Package unixsock binds the unix sockets natreveal's commands answer on
// (the router's status socket, observe's --control): the path is checked
// before anything is bound, a socket a killed process left is replaced, a
// live one or any other kind of file is left alone.
package unixsock

import (
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"syscall"
	"time"
)

// MaxPath is the longest path a unix socket can be bound on: sun_path of
// struct sockaddr_un (unix(7)), 108 bytes on Linux, less the terminating
// NUL Go's net package always writes.
const MaxPath = len(syscall.RawSockaddrUnix{}.Path) - 1

// ErrInUse: a process answers on the socket.
var ErrInUse = errors.New("another process answers on the socket")

// ErrNotSocket: the path names a file that is not a socket.
var ErrNotSocket = errors.New("not a socket")

// CheckPath says whether a socket can be bound on path at all: not empty,
// at most MaxPath bytes.
func CheckPath(path string) error {
	switch {
	case path == "":
		return errors.New("empty path")
	case len(path) > MaxPath:
		return fmt.Errorf("%s: %d bytes, a unix socket path has at most %d (sun_path)", path, len(path), MaxPath)
	}
	return nil
}

// Listen binds a unix socket on path (mode 0600, its directory made with
// mode 0755). A socket nobody answers on (a killed process's) is replaced;
// one a process answers on within wait is ErrInUse; any other file there
// (a regular file, a directory) is ErrNotSocket and stays.
func Listen(path string, wait time.Duration) (net.Listener, error) {
	if err := CheckPath(path); err != nil {
		return nil, err
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return nil, err
	}
	if err := removeStale(path, wait); err != nil {
		return nil, err
	}
	ln, err := net.Listen("unix", path)
	if err != nil {
		return nil, err
	}
	if err := os.Chmod(path, 0o600); err != nil {
		ln.Close()
		return nil, err
	}
	return ln, nil
}

// removeStale removes a stale socket at path; nothing else.
func removeStale(path string, wait time.Duration) error {
	fi, err := os.Lstat(path)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return nil
	case err != nil:
		return err
	case fi.Mode()&fs.ModeSocket == 0:
		return fmt.Errorf("%s: %w (%s)", path, ErrNotSocket, kind(fi.Mode()))
	}
	if c, err := net.DialTimeout("unix", path, wait); err == nil {
		c.Close()
		return fmt.Errorf("%s: %w", path, ErrInUse)
	}
	if err := os.Remove(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	return nil
}

// kind names a file mode's type for an error.
func kind(m fs.FileMode) string {
	switch {
	case m.IsDir():
		return "a directory"
	case m.IsRegular():
		return "a regular file"
	case m&fs.ModeSymlink != 0:
		return "a symbolic link"
	case m&fs.ModeNamedPipe != 0:
		return "a named pipe"
	case m&fs.ModeDevice != 0:
		return "a device"
	}
	return "another kind of file"
}
