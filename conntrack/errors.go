package conntrack

import (
	"errors"

	"golang.org/x/sys/unix"
)

func isNotFound(err error) bool {
	return errors.Is(err, unix.ENOENT)
}
